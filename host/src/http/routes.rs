//! The routes the host serves itself, in one table: method, path, who may
//! call it, and what answers. Everything else belongs to a plugin.

use crate::auth::access::RouteClass;
use crate::plugins::manifest::{AuthStyle, Manifest};

/// What answers a native route (see `super::core`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Status,
    Discover,
    Login,
    Logout,
    Profile,
    Notifications,
    Ping,
    Plugins,
    OpenApi,
}

#[derive(Debug, Clone, Copy)]
pub struct NativeRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub class: RouteClass,
    pub handler: Handler,
}

const fn route(
    method: &'static str,
    path: &'static str,
    class: RouteClass,
    handler: Handler,
) -> NativeRoute {
    NativeRoute {
        method,
        path,
        class,
        handler,
    }
}

pub const NATIVE: &[NativeRoute] = &[
    route("GET", "/status", RouteClass::Open, Handler::Status),
    route("GET", "/discover", RouteClass::Open, Handler::Discover),
    route("POST", "/login", RouteClass::Open, Handler::Login),
    route("GET", "/logout", RouteClass::Authenticated, Handler::Logout),
    route(
        "GET",
        "/profile",
        RouteClass::Authenticated,
        Handler::Profile,
    ),
    route(
        "GET",
        "/notifications",
        RouteClass::KeyReadable,
        Handler::Notifications,
    ),
    route("GET", "/ping", RouteClass::Authenticated, Handler::Ping),
    route(
        "GET",
        "/plugins",
        RouteClass::Authenticated,
        Handler::Plugins,
    ),
    // Like temBoard's /discover, open: it says what the agent serves and
    // how to authenticate, never anything about the database.
    route("GET", "/openapi.json", RouteClass::Open, Handler::OpenApi),
];

/// The native route for `method` and `path` (HEAD is looked up as GET).
pub fn find(method: &str, path: &str) -> Option<&'static NativeRoute> {
    NATIVE.iter().find(|r| r.method == method && r.path == path)
}

/// Whether the host serves `path` itself, whatever the method.
pub fn is_native_path(path: &str) -> bool {
    NATIVE.iter().any(|r| r.path == path)
}

/// Every path the host serves: no plugin may claim one.
pub fn native_paths() -> Vec<&'static str> {
    let mut paths: Vec<&'static str> = NATIVE.iter().map(|r| r.path).collect();
    paths.dedup();
    paths
}

/// What a request to `path` with `method` needs, when no native route
/// matches: the plugin's manifest says (a bearer-style API, or a GET the
/// agent key may read); anything else needs a session or a token.
pub fn class_of(
    method: &str,
    native: Option<&NativeRoute>,
    plugin: Option<&Manifest>,
) -> RouteClass {
    match (native, plugin) {
        (Some(route), _) => route.class,
        (None, Some(manifest)) if manifest.auth == AuthStyle::Bearer => RouteClass::Api,
        (None, Some(manifest)) if method == "GET" && manifest.key_read => RouteClass::KeyReadable,
        (None, _) => RouteClass::Authenticated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::access::Presented;

    /// Who may call each native route, checked by the real `Auth` over a
    /// throwaway state store (no PostgreSQL): every route × every kind of
    /// credential. Open routes are served without looking at credentials.
    #[tokio::test]
    async fn native_routes_by_access_class() {
        use crate::auth::{Auth, AuthSettings, Identity, tokens::TokenSet};
        use crate::capabilities::notifications::Notifier;
        use crate::store::{SessionLimits, Store};
        use hyper::StatusCode;
        use std::sync::Arc;
        use std::time::Duration;

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let auth = Auth::new(
            AuthSettings {
                users_file: dir.path().join("users"),
                key: Some("the-agent-key".into()),
                tokens: TokenSet::new(&["the-api-token-0123456789".into()]),
                sessions: SessionLimits {
                    idle: Duration::from_secs(60),
                    lifetime: Duration::from_secs(60),
                },
            },
            store.clone(),
            Arc::new(Notifier::new(store, 10)),
        );
        let unknown_session = "0".repeat(64);
        for route in NATIVE {
            let cases: [(Presented, Result<Identity, StatusCode>); 7] = [
                (Presented::Nothing, Err(StatusCode::NOT_ACCEPTABLE)),
                (
                    Presented::Bearer("the-api-token-0123456789".into()),
                    Ok(Identity::Token),
                ),
                (
                    Presented::Bearer("wrong".into()),
                    Err(StatusCode::UNAUTHORIZED),
                ),
                (
                    Presented::Key("the-agent-key".into()),
                    if route.class == RouteClass::KeyReadable {
                        Ok(Identity::Key)
                    } else {
                        Err(StatusCode::NOT_ACCEPTABLE)
                    },
                ),
                (
                    Presented::Key("wrong-key".into()),
                    Err(if route.class == RouteClass::KeyReadable {
                        StatusCode::UNAUTHORIZED
                    } else {
                        StatusCode::NOT_ACCEPTABLE
                    }),
                ),
                (
                    Presented::Session("not-hex".into()),
                    Err(StatusCode::NOT_ACCEPTABLE),
                ),
                (
                    Presented::Session(unknown_session.clone()),
                    Err(StatusCode::UNAUTHORIZED),
                ),
            ];
            for (presented, expected) in cases {
                let what = format!("{} {} with {presented:?}", route.method, route.path);
                let got = auth
                    .authenticate(presented, route.class)
                    .await
                    .map_err(|denied| denied.status);
                assert_eq!(got, expected, "{what}");
            }
        }
        let classes: Vec<(&str, RouteClass)> = NATIVE.iter().map(|r| (r.path, r.class)).collect();
        assert_eq!(
            classes,
            [
                ("/status", RouteClass::Open),
                ("/discover", RouteClass::Open),
                ("/login", RouteClass::Open),
                ("/logout", RouteClass::Authenticated),
                ("/profile", RouteClass::Authenticated),
                ("/notifications", RouteClass::KeyReadable),
                ("/ping", RouteClass::Authenticated),
                ("/plugins", RouteClass::Authenticated),
                ("/openapi.json", RouteClass::Open),
            ]
        );
        // Another method on a native path is not that route.
        assert!(find("POST", "/status").is_none() && is_native_path("/status"));
        assert!(find("GET", "/login").is_none());
        assert_eq!(
            class_of("POST", find("POST", "/status"), None),
            RouteClass::Authenticated
        );
    }

    #[test]
    fn plugin_routes_are_classed_by_their_manifest() {
        let manifest = |extra: &str| {
            Manifest::parse(
                &format!("name = \"p\"\nversion = \"1\"\nroutes = [\"/p\"]\n{extra}"),
                "t",
            )
            .unwrap()
        };
        let reader = manifest("key_read = true");
        let plain = manifest("");
        let api = manifest("auth = \"bearer\"\nkey_read = true");
        assert_eq!(
            class_of("GET", None, Some(&reader)),
            RouteClass::KeyReadable
        );
        assert_eq!(
            class_of("GET", None, Some(&plain)),
            RouteClass::Authenticated
        );
        assert_eq!(
            class_of("POST", None, Some(&reader)),
            RouteClass::Authenticated
        );
        assert_eq!(
            class_of("DELETE", None, Some(&reader)),
            RouteClass::Authenticated
        );
        assert_eq!(class_of("GET", None, Some(&api)), RouteClass::Api);
        assert_eq!(class_of("POST", None, Some(&api)), RouteClass::Api);
    }

    #[test]
    fn native_paths_are_unique_and_reserved() {
        let paths = native_paths();
        let mut sorted = paths.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), paths.len());
        assert!(paths.contains(&"/ping") && paths.contains(&"/notifications"));
    }
}
