//! What a route needs (its [`RouteClass`], given by the native route table
//! or the plugin's manifest) and which credentials a request carries. Pure
//! functions, so the policy can be read and tested in one place.

use hyper::header::HeaderMap;

pub const SESSION_HEADER: &str = "x-session";
pub const KEY_HEADER: &str = "x-temboard-agent-key";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    Open,
    /// Needs a session or a bearer token; a GET may also use the agent key.
    KeyReadable,
    /// Needs a session or a bearer token.
    Authenticated,
    /// The database-service API's way: a session or a bearer token, and any
    /// missing or wrong credential is 401 (never temBoard's 406).
    Api,
}

/// Headers that carry credentials; plugins never see them.
pub fn is_credential_header(name: &str) -> bool {
    [
        SESSION_HEADER,
        KEY_HEADER,
        "authorization",
        "cookie",
        "proxy-authorization",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// What a request presents to prove who it is, in order of precedence.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    Session(String),
    Bearer(String),
    Key(String),
    Nothing,
}

pub fn presented(headers: &HeaderMap, query: &str) -> Presented {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    if let Some(session) = header(SESSION_HEADER) {
        return Presented::Session(session);
    }
    if let Some(token) = header("authorization").and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string())
    }) {
        return Presented::Bearer(token);
    }
    if let Some(key) = header(KEY_HEADER) {
        return Presented::Key(key);
    }
    if let Some(key) = query_key(query) {
        return Presented::Key(key);
    }
    Presented::Nothing
}

fn query_key(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let value = pair.strip_prefix("key=")?;
        crate::percent::decode(value, true)
    })
}

/// The query without its `key` parameter: plugins never see the agent key.
pub fn query_without_key(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && *pair != "key" && !pair.starts_with("key="))
        .collect::<Vec<_>>()
        .join("&")
}

/// Compares secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    // Hashing first makes the comparison length-independent too.
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn credentials() {
        let mut h = HeaderMap::new();
        assert_eq!(
            presented(&h, "a=1&key=s%20ecret"),
            Presented::Key("s ecret".into())
        );
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert_eq!(presented(&h, ""), Presented::Bearer("abc".into()));
        h.insert(SESSION_HEADER, HeaderValue::from_static("f00"));
        assert_eq!(presented(&h, ""), Presented::Session("f00".into()));
        assert_eq!(query_without_key("limit=3&key=x&key&b=2"), "limit=3&b=2");
        assert!(is_credential_header("X-Session") && is_credential_header("authorization"));
        assert!(!is_credential_header("content-type"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
