//! Host capabilities exposed to plugins through the `dbagent:api` interfaces.
//!
//! Each submodule implements one interface for [`PluginState`]; the state a
//! capability needs across requests (connection pools, OS samples) lives in
//! [`Capabilities`], shared by every plugin instance.

pub mod control;
pub mod jobs;
pub mod log;
pub mod notifications;
pub mod os_probes;
pub mod pg_pool;
pub mod pg_values;
pub mod postgres;
pub mod proc_sampler;
pub mod store;
pub mod system;

use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What every plugin instance shares with the host.
pub struct Capabilities {
    pub postgres: pg_pool::PgPool,
    pub system: Arc<proc_sampler::Sampler>,
    pub notifications: Notifier,
    pub store: Store,
    /// pg_ctl for the administration plugin.
    pub control: control::Control,
    /// The backends of jobs running now, to cancel them.
    pub running_jobs: RunningJobs,
    /// Woken when a job is added, cancelled or finished, so the scheduler
    /// looks at the store again.
    pub jobs_changed: tokio::sync::Notify,
}

/// Writes the notification feed for the host and for plugins alike.
pub struct Notifier {
    store: Store,
    /// How many entries the feed keeps; the configuration may change it on reload.
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

/// The PostgreSQL backend pids of each running job: cancelling a job, or
/// its deadline passing, cancels what it runs on the server too.
#[derive(Default)]
pub struct RunningJobs {
    backends: std::sync::Mutex<std::collections::HashMap<String, Vec<i32>>>,
}

impl RunningJobs {
    pub fn add(&self, job: &str, pid: i32) {
        if let Ok(mut backends) = self.backends.lock() {
            backends.entry(job.to_string()).or_default().push(pid);
        }
    }

    pub fn pids(&self, job: &str) -> Vec<i32> {
        self.backends
            .lock()
            .ok()
            .and_then(|b| b.get(job).cloned())
            .unwrap_or_default()
    }

    /// Forgets a finished job; returns its backends.
    pub fn remove(&self, job: &str) -> Vec<i32> {
        self.backends
            .lock()
            .ok()
            .and_then(|mut b| b.remove(job))
            .unwrap_or_default()
    }

    /// Cancels the statements running on `pids` with `pg_cancel_backend`.
    pub async fn cancel(&self, postgres: &pg_pool::PgPool, job: &str, pids: &[i32]) {
        for &pid in pids {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let cancelled = match postgres.get(None, deadline).await {
                Ok(connection) => connection
                    .client()
                    .query_one("SELECT pg_cancel_backend($1)", &[&pid])
                    .await
                    .map(|row| row.get::<_, bool>(0))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.message),
            };
            match cancelled {
                Ok(done) => tracing::info!(job, pid, done, "cancelled the job's statement"),
                Err(e) => tracing::warn!(job, pid, "cannot cancel the job's statement: {e}"),
            }
        }
    }
}
