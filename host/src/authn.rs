//! Authentication at the door: sessions, bearer tokens and the agent key,
//! and the session life cycle (`/login`, `/logout`).
//!
//! Statuses and messages follow temBoard agent 7, whose clients must work
//! unchanged: a missing or malformed `X-Session` is 406, an unknown one 401,
//! wrong credentials at login 404.

use crate::access::{Presented, RouteClass};
use crate::auth::sessions::{is_well_formed_session, new_session_token, session_token_hash};
use crate::auth::throttle::Admission;
use crate::auth::users::{Users, VerifyOutcome, check_login_shape};
use crate::server::{App, HttpResponse, Refusal, error, internal_error, json_response};
use crate::store::SessionLimits;
use hyper::StatusCode;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// How long a login waits for a free password check before a 503.
const LOGIN_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// `response` with `Retry-After` in whole seconds (at least 1).
fn with_retry_after(mut response: HttpResponse, after: Duration) -> HttpResponse {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    if let Ok(value) = hyper::header::HeaderValue::from_str(&secs.max(1).to_string()) {
        response
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, value);
    }
    response
}

/// Who a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A logged-in user; the session token's digest identifies the session.
    User { name: String, session_hash: String },
    /// An API token from the configuration.
    Token,
    /// The agent key (read-only routes).
    Key,
}

/// The name plugins and notifications see for an identity.
pub const TOKEN_USER: &str = "api-token";

impl Identity {
    pub fn user_name(&self) -> Option<&str> {
        match self {
            Identity::User { name, .. } => Some(name),
            Identity::Token => Some(TOKEN_USER),
            Identity::Key => None,
        }
    }
}

fn session_malformed() -> Refusal {
    Refusal::new(
        StatusCode::NOT_ACCEPTABLE,
        "Parameter 'X-Session' is malformed.",
    )
}

/// Checks what the request presents against what the route needs.
pub async fn authenticate(
    app: &App,
    presented: Presented,
    class: RouteClass,
) -> Result<Identity, Refusal> {
    let live = app.live();
    match presented {
        Presented::Session(token) => {
            if !is_well_formed_session(&token) {
                return Err(session_malformed());
            }
            let hash = session_token_hash(&token);
            let store = app.store.clone();
            let limits = SessionLimits {
                idle: live.config.auth.session_timeout,
                lifetime: live.config.auth.session_lifetime,
            };
            let lookup = {
                let hash = hash.clone();
                tokio::task::spawn_blocking(move || {
                    store.touch_session(&hash, SystemTime::now(), limits)
                })
                .await
            };
            match lookup {
                Ok(Ok(Some(name))) => Ok(Identity::User {
                    name,
                    session_hash: hash,
                }),
                Ok(Ok(None)) => Err(Refusal::new(StatusCode::UNAUTHORIZED, "Invalid session.")),
                Ok(Err(e)) => Err(Refusal::internal(&format!("session lookup: {e:#}"))),
                Err(e) => Err(Refusal::internal(&format!("session lookup: {e}"))),
            }
        }
        Presented::Bearer(token) => {
            if !live.tokens.is_empty() && live.tokens.contains(&token) {
                Ok(Identity::Token)
            } else {
                Err(Refusal::new(StatusCode::UNAUTHORIZED, "Invalid token."))
            }
        }
        // A key never authorizes a change: such a request lacks its session.
        Presented::Key(_) if class != RouteClass::KeyReadable => Err(session_malformed()),
        Presented::Key(key) => match &live.config.auth.key {
            Some(expected)
                if crate::access::constant_time_eq(key.as_bytes(), expected.as_bytes()) =>
            {
                Ok(Identity::Key)
            }
            _ => Err(Refusal::new(StatusCode::UNAUTHORIZED, "Invalid key")),
        },
        Presented::Nothing => Err(session_malformed()),
    }
}

/// The string value of `field`, or temBoard's 406 for a missing or malformed one.
fn credential(body: &Value, field: &str) -> Result<String, Refusal> {
    match body.get(field) {
        None | Some(Value::Null) => Err(Refusal::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Parameter '{field}' not sent."),
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Refusal::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Parameter '{field}' is malformed."),
        )),
    }
}

/// `POST /login`: `{"username", "password"}` → `{"session": "<64 hex>"}`.
pub async fn login(app: &App, body: &[u8], peer: SocketAddr) -> HttpResponse {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "Invalid json format");
    };
    if !body.is_object() {
        return error(StatusCode::BAD_REQUEST, "Invalid json format");
    }
    let username = match credential(&body, "username") {
        Ok(u) => u,
        Err(refusal) => return refusal.into_response(),
    };
    let password = match credential(&body, "password") {
        Ok(p) => p,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(malformed) = check_login_shape(&username, &password) {
        return error(StatusCode::NOT_ACCEPTABLE, &malformed.to_string());
    }

    // Pace repeated failures from one address before doing any work.
    match app.throttle.admit(peer.ip(), Instant::now()) {
        Admission::Wait(delay) if delay.is_zero() => {}
        Admission::Wait(delay) => tokio::time::sleep(delay).await,
        Admission::Refused(retry_after) => {
            tracing::warn!(%peer, username, "login refused: too many attempts queued from this address");
            return with_retry_after(
                error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many login attempts; try again later.",
                ),
                retry_after,
            );
        }
    }
    // Each check holds ~19 MiB for its duration: bound how many run at once.
    let Ok(Ok(_check)) = tokio::time::timeout(LOGIN_QUEUE_WAIT, app.login_checks.acquire()).await
    else {
        tracing::warn!(%peer, username, "login refused: too many logins at once");
        return with_retry_after(
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many logins at once; try again later.",
            ),
            Duration::from_secs(1),
        );
    };

    let users_file = app.live().config.auth.users_file.clone();
    let checked = {
        let (username, password) = (username.clone(), password.clone());
        // Re-read the file at each login so `dbagent user add` needs no restart.
        tokio::task::spawn_blocking(move || check_password(&users_file, &username, &password)).await
    };
    drop(_check);
    let credential = match checked {
        Ok(Ok(Some(credential))) => credential,
        Ok(Ok(None)) => {
            tracing::warn!(%peer, username, "failed login");
            return error(StatusCode::NOT_FOUND, "Invalid username/password.");
        }
        Ok(Err(e)) => return internal_error(&format!("users file: {e:#}")),
        Err(e) => return internal_error(&format!("login: {e}")),
    };
    app.throttle.record_success(peer.ip());

    let token = match new_session_token() {
        Ok(token) => token,
        Err(e) => return internal_error(&format!("{e:#}")),
    };
    let store = app.store.clone();
    let (hash, name) = (session_token_hash(&token), username.clone());
    match tokio::task::spawn_blocking(move || {
        store.create_session(&hash, &name, &credential, SystemTime::now())
    })
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return internal_error(&format!("create session: {e:#}")),
        Err(e) => return internal_error(&format!("create session: {e}")),
    }
    app.runtime
        .capabilities()
        .notifications
        .notify(&username, "Login")
        .await;
    tracing::info!(%peer, username, "login");
    json_response(StatusCode::OK, &json!({ "session": token }))
}

/// Checks `password` against the users file: the fingerprint of the
/// user's credential when it is right (after upgrading a temBoard hash to
/// Argon2id), `None` when it is not.
fn check_password(
    users_file: &std::path::Path,
    username: &str,
    password: &str,
) -> anyhow::Result<Option<String>> {
    let users = Users::load(users_file)?;
    match users.verify(username, password) {
        VerifyOutcome::Invalid => Ok(None),
        VerifyOutcome::Ok => Ok(users.fingerprint(username)),
        VerifyOutcome::OkNeedsUpgrade => {
            match Users::upgrade(users_file, username, password) {
                Ok(_) => tracing::info!(username, "upgraded the password hash to Argon2id"),
                Err(e) => tracing::warn!(username, "cannot upgrade the password hash: {e:#}"),
            }
            Ok(Users::load(users_file)?
                .fingerprint(username)
                .or_else(|| users.fingerprint(username)))
        }
    }
}

/// `GET /logout`: ends the session → `{"logout": true}`.
pub async fn logout(app: &App, identity: &Identity) -> HttpResponse {
    let Identity::User { name, session_hash } = identity else {
        return session_malformed().into_response();
    };
    let store = app.store.clone();
    let hash = session_hash.clone();
    match tokio::task::spawn_blocking(move || store.delete_session(&hash)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return internal_error(&format!("delete session: {e:#}")),
        Err(e) => return internal_error(&format!("delete session: {e}")),
    }
    app.runtime
        .capabilities()
        .notifications
        .notify(name, "Logout")
        .await;
    json_response(StatusCode::OK, &json!({ "logout": true }))
}
