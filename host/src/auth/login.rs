//! Authentication at the door: sessions, bearer tokens and the agent key,
//! and the session life cycle (login, logout).
//!
//! Statuses and messages follow temBoard agent 7, whose clients must work
//! unchanged: a missing or malformed `X-Session` is 406, an unknown one 401,
//! wrong credentials at login 404.

use super::access::{Presented, RouteClass};
use super::sessions::{is_well_formed_session, new_session_token, session_token_hash};
use super::throttle::Admission;
use super::users::{Users, VerifyOutcome, check_login_shape};
use super::{Auth, Denied, Identity};
use hyper::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// How long a login waits for a free password check before a 503.
const LOGIN_QUEUE_WAIT: Duration = Duration::from_secs(5);

fn session_malformed() -> Denied {
    Denied::new(
        StatusCode::NOT_ACCEPTABLE,
        "Parameter 'X-Session' is malformed.",
    )
}

impl Auth {
    /// Checks what the request presents against what the route needs.
    pub async fn authenticate(
        &self,
        presented: Presented,
        class: RouteClass,
    ) -> Result<Identity, Denied> {
        let settings = self.settings();
        if class == RouteClass::Api {
            let unauthorized = |message: &str| Denied::new(StatusCode::UNAUTHORIZED, message);
            return match presented {
                Presented::Nothing => Err(unauthorized(
                    "Authentication required: send Authorization: Bearer <token>, or X-Session.",
                )),
                Presented::Key(_) => Err(unauthorized(
                    "The agent key does not open this API: send Authorization: Bearer <token>, or X-Session.",
                )),
                Presented::Session(token) if !is_well_formed_session(&token) => {
                    Err(unauthorized("Invalid session."))
                }
                presented => {
                    // Sessions and tokens as below, with every refusal a 401.
                    Box::pin(self.authenticate(presented, RouteClass::Authenticated))
                        .await
                        .map_err(|denied| {
                            if denied.status == StatusCode::INTERNAL_SERVER_ERROR {
                                denied
                            } else {
                                unauthorized(&denied.message)
                            }
                        })
                }
            };
        }
        match presented {
            Presented::Session(token) => {
                if !is_well_formed_session(&token) {
                    return Err(session_malformed());
                }
                let hash = session_token_hash(&token);
                let store = self.store.clone();
                let limits = settings.sessions;
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
                    Ok(Ok(None)) => Err(Denied::new(StatusCode::UNAUTHORIZED, "Invalid session.")),
                    Ok(Err(e)) => Err(Denied::internal(&format!("session lookup: {e:#}"))),
                    Err(e) => Err(Denied::internal(&format!("session lookup: {e}"))),
                }
            }
            Presented::Bearer(token) => {
                if !settings.tokens.is_empty() && settings.tokens.contains(&token) {
                    Ok(Identity::Token)
                } else {
                    Err(Denied::new(StatusCode::UNAUTHORIZED, "Invalid token."))
                }
            }
            // A key never authorizes a change: such a request lacks its session.
            Presented::Key(_) if class != RouteClass::KeyReadable => Err(session_malformed()),
            Presented::Key(key) => {
                if self.is_key(key.as_bytes()) {
                    Ok(Identity::Key)
                } else {
                    Err(Denied::new(StatusCode::UNAUTHORIZED, "Invalid key"))
                }
            }
            Presented::Nothing => Err(session_malformed()),
        }
    }

    /// `{"username", "password"}` → a new session token.
    pub async fn login(&self, body: &[u8], peer: SocketAddr) -> Result<String, Denied> {
        let invalid_json = || Denied::new(StatusCode::BAD_REQUEST, "Invalid json format");
        let body: Value = serde_json::from_slice(body).map_err(|_| invalid_json())?;
        if !body.is_object() {
            return Err(invalid_json());
        }
        let username = credential(&body, "username")?;
        let password = credential(&body, "password")?;
        check_login_shape(&username, &password)
            .map_err(|malformed| Denied::new(StatusCode::NOT_ACCEPTABLE, malformed.to_string()))?;

        // Pace repeated failures from one address before doing any work.
        match self.throttle.admit(peer.ip(), Instant::now()) {
            Admission::Wait(delay) if delay.is_zero() => {}
            Admission::Wait(delay) => tokio::time::sleep(delay).await,
            Admission::Refused(retry_after) => {
                tracing::warn!(%peer, username, "login refused: too many attempts queued from this address");
                return Err(Denied::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many login attempts; try again later.",
                )
                .retry_after(retry_after));
            }
        }
        // Each check holds ~19 MiB for its duration: bound how many run at once.
        let Ok(Ok(check)) =
            tokio::time::timeout(LOGIN_QUEUE_WAIT, self.login_checks.acquire()).await
        else {
            tracing::warn!(%peer, username, "login refused: too many logins at once");
            return Err(Denied::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many logins at once; try again later.",
            )
            .retry_after(Duration::from_secs(1)));
        };

        let users_file = self.settings().users_file.clone();
        let checked = {
            let (username, password) = (username.clone(), password.clone());
            // Re-read the file at each login so `dbagent user add` needs no restart.
            tokio::task::spawn_blocking(move || check_password(&users_file, &username, &password))
                .await
        };
        drop(check);
        let credential = match checked {
            Ok(Ok(Some(credential))) => credential,
            Ok(Ok(None)) => {
                tracing::warn!(%peer, username, "failed login");
                return Err(Denied::new(
                    StatusCode::NOT_FOUND,
                    "Invalid username/password.",
                ));
            }
            Ok(Err(e)) => return Err(Denied::internal(&format!("users file: {e:#}"))),
            Err(e) => return Err(Denied::internal(&format!("login: {e}"))),
        };
        self.throttle.record_success(peer.ip());

        let token = new_session_token().map_err(|e| Denied::internal(&format!("{e:#}")))?;
        let store = self.store.clone();
        let (hash, name) = (session_token_hash(&token), username.clone());
        match tokio::task::spawn_blocking(move || {
            store.create_session(&hash, &name, &credential, SystemTime::now())
        })
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Denied::internal(&format!("create session: {e:#}"))),
            Err(e) => return Err(Denied::internal(&format!("create session: {e}"))),
        }
        self.notifier.notify(&username, "Login").await;
        tracing::info!(%peer, username, "login");
        Ok(token)
    }

    /// Ends the session `identity` came with.
    pub async fn logout(&self, identity: &Identity) -> Result<(), Denied> {
        let Identity::User { name, session_hash } = identity else {
            return Err(session_malformed());
        };
        let store = self.store.clone();
        let hash = session_hash.clone();
        match tokio::task::spawn_blocking(move || store.delete_session(&hash)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(Denied::internal(&format!("delete session: {e:#}"))),
            Err(e) => return Err(Denied::internal(&format!("delete session: {e}"))),
        }
        self.notifier.notify(name, "Logout").await;
        Ok(())
    }
}

/// The string value of `field`, or temBoard's 406 for a missing or malformed one.
fn credential(body: &Value, field: &str) -> Result<String, Denied> {
    match body.get(field) {
        None | Some(Value::Null) => Err(Denied::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Parameter '{field}' not sent."),
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Denied::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Parameter '{field}' is malformed."),
        )),
    }
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
