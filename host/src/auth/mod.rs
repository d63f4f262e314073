//! Who the caller is and what they may do: users who log in with a password
//! (sessions), API tokens and the agent key from the configuration, and the
//! brakes on password guessing. Nothing here knows about HTTP bodies: the
//! front turns an [`Identity`] or a [`Denied`] into a response.

pub mod access;
pub mod login;
pub mod sessions;
pub mod temboard_hash;
pub mod throttle;
pub mod tokens;
pub mod users;

use crate::capabilities::notifications::Notifier;
use crate::config::Config;
use crate::store::{SessionLimits, Store};
use hyper::StatusCode;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use throttle::LoginThrottle;
use tokens::TokenSet;

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

/// The name plugins and notifications see for an API token.
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

/// Why a caller is turned away: temBoard's status and message, and when
/// to try again if that helps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl Denied {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Denied {
        Denied {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A failure of the agent itself: the detail goes to the log only.
    pub fn internal(detail: &str) -> Denied {
        tracing::error!("internal error: {detail}");
        Denied::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error.")
    }

    pub fn retry_after(mut self, after: Duration) -> Denied {
        self.retry_after = Some(after);
        self
    }
}

/// What a reload may change about authentication.
pub struct AuthSettings {
    pub users_file: PathBuf,
    /// The agent key: authenticates read-only GET routes without a session.
    pub key: Option<String>,
    /// Bearer tokens, as digests.
    pub tokens: TokenSet,
    pub sessions: SessionLimits,
}

impl AuthSettings {
    pub fn from_config(config: &Config) -> AuthSettings {
        let auth = &config.auth;
        AuthSettings {
            users_file: auth.users_file.clone(),
            key: auth.key.clone(),
            tokens: TokenSet::new(&auth.api_tokens),
            sessions: SessionLimits {
                idle: auth.session_timeout,
                lifetime: auth.session_lifetime,
            },
        }
    }
}

/// Authentication, shared by every request.
pub struct Auth {
    settings: RwLock<Arc<AuthSettings>>,
    store: Store,
    notifier: Arc<Notifier>,
    throttle: LoginThrottle,
    /// Password checks running at once: about one per core, since each
    /// holds ~19 MiB (Argon2id) and a full CPU while it runs.
    login_checks: tokio::sync::Semaphore,
}

impl Auth {
    pub fn new(settings: AuthSettings, store: Store, notifier: Arc<Notifier>) -> Auth {
        Auth {
            settings: RwLock::new(Arc::new(settings)),
            store,
            notifier,
            throttle: LoginThrottle::default(),
            login_checks: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            ),
        }
    }

    /// The settings in force now.
    pub fn settings(&self) -> Arc<AuthSettings> {
        Arc::clone(&self.settings.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// What a reload read; ends the sessions of users removed or whose
    /// password changed.
    pub async fn replace_settings(&self, settings: AuthSettings, users: &users::Users) {
        *self
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(settings);
        let store = self.store.clone();
        let credentials = users.fingerprints();
        match tokio::task::spawn_blocking(move || store.revoke_stale_sessions(&credentials)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::info!(
                    sessions = n,
                    "ended the sessions of removed users and changed passwords"
                )
            }
            Ok(Err(e)) => tracing::error!("cannot end stale sessions: {e:#}"),
            Err(e) => tracing::error!("cannot end stale sessions: {e}"),
        }
    }

    /// Whether `sent` is the agent key, compared in constant time.
    pub fn is_key(&self, sent: &[u8]) -> bool {
        self.settings()
            .key
            .as_ref()
            .is_some_and(|key| access::constant_time_eq(sent, key.as_bytes()))
    }
}
