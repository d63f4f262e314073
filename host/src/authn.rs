//! Authentication at the door: sessions, bearer tokens and the agent key,
//! and the session life cycle (`/login`, `/logout`).
//!
//! Statuses and messages follow temBoard agent 7, whose clients must work
//! unchanged: a missing or malformed `X-Session` is 406, an unknown one 401,
//! wrong credentials at login 404.

use crate::access::{Presented, RouteClass};
use crate::auth::sessions::{is_well_formed_session, new_session_token, session_token_hash};
use crate::auth::users::{Users, VerifyOutcome, validate_password, validate_username};
use crate::server::{App, HttpResponse, Refusal, error, internal_error, json_response};
use hyper::StatusCode;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

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
            let idle = live.config.auth.session_timeout;
            let lookup = {
                let hash = hash.clone();
                tokio::task::spawn_blocking(move || {
                    store.touch_session(&hash, SystemTime::now(), idle)
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
    if let Err(malformed) = validate_username(&username).and_then(|()| validate_password(&password))
    {
        return error(StatusCode::NOT_ACCEPTABLE, &malformed.to_string());
    }

    // Slow repeated failures from one address before doing any work.
    let delay = app.throttle.delay_for(peer.ip(), Instant::now());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let users_file = app.live().config.auth.users_file.clone();
    let checked = {
        let (username, password, users_file) =
            (username.clone(), password.clone(), users_file.clone());
        // Re-read the file at each login so `dbagent user add` needs no restart.
        tokio::task::spawn_blocking(move || {
            Users::load(&users_file).map(|users| users.verify(&username, &password))
        })
        .await
    };
    let outcome = match checked {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => return internal_error(&format!("users file: {e:#}")),
        Err(e) => return internal_error(&format!("login: {e}")),
    };
    match outcome {
        VerifyOutcome::Invalid => {
            app.throttle.record_failure(peer.ip(), Instant::now());
            tracing::warn!(%peer, username, "failed login");
            return error(StatusCode::NOT_FOUND, "Invalid username/password.");
        }
        VerifyOutcome::OkNeedsUpgrade => {
            let (name, password) = (username.clone(), password.clone());
            match tokio::task::spawn_blocking(move || Users::upgrade(&users_file, &name, &password))
                .await
            {
                Ok(Ok(_)) => tracing::info!(username, "upgraded the password hash to Argon2id"),
                Ok(Err(e)) => tracing::warn!(username, "cannot upgrade the password hash: {e:#}"),
                Err(e) => tracing::warn!(username, "cannot upgrade the password hash: {e}"),
            }
        }
        VerifyOutcome::Ok => {}
    }
    app.throttle.record_success(peer.ip());

    let token = match new_session_token() {
        Ok(token) => token,
        Err(e) => return internal_error(&format!("{e:#}")),
    };
    let store = app.store.clone();
    let (hash, name) = (session_token_hash(&token), username.clone());
    match tokio::task::spawn_blocking(move || store.create_session(&hash, &name, SystemTime::now()))
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
