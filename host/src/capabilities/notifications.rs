//! The notification feed (`GET /notifications`): what was done, by whom.
//! The host writes it (logins, reloads) and so do plugins, through the
//! `notifications` interface.

use super::call::Call;
use crate::store::Store;
use crate::wit::notifications::Host;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "notifications";

/// Longest message kept; the feed is for short lines.
const MAX_MESSAGE_CHARS: usize = 1024;

/// Writes the feed for the host and for plugins alike.
pub struct Notifier {
    store: Store,
    /// How many entries the feed keeps; a reload may change it.
    keep: AtomicUsize,
}

impl Notifier {
    pub fn new(store: Store, keep: usize) -> Notifier {
        Notifier {
            store,
            keep: AtomicUsize::new(keep),
        }
    }

    pub fn set_keep(&self, keep: usize) {
        self.keep.store(keep, Ordering::Relaxed);
    }

    /// Records `message` by `username`. A failure to write is logged, never
    /// fails the request that caused it: the action itself has happened.
    pub async fn notify(&self, username: &str, message: &str) {
        let store = self.store.clone();
        let keep = self.keep.load(Ordering::Relaxed);
        let (username, message) = (username.to_string(), message.to_string());
        let written = tokio::task::spawn_blocking(move || {
            store.add_notification(&username, &message, std::time::SystemTime::now(), keep)
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("cannot record a notification: {e:#}"),
            Err(e) => tracing::error!("cannot record a notification: {e}"),
        }
    }
}

pub struct State {
    notifier: Arc<Notifier>,
    plugin: Arc<str>,
    /// The user of the request, else the plugin itself.
    actor: String,
}

impl State {
    pub fn new(notifier: &Arc<Notifier>, call: &Call) -> State {
        State {
            notifier: Arc::clone(notifier),
            plugin: Arc::clone(&call.plugin),
            actor: call.actor(),
        }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::notifications::add_to_linker::<T, HasSelf<State>>(linker, get)
}

impl Host for State {
    async fn notify(&mut self, message: String) {
        let message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        tracing::info!(plugin = %self.plugin, user = self.actor, "notification: {message}");
        self.notifier.notify(&self.actor, &message).await;
    }
}
