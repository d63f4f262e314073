//! The `jobs` interface: plugins schedule durable work; the scheduler
//! (`super::scheduler`) runs it.

use super::service::Service;
use super::store::{JobRow, NewJob};
use crate::capabilities::call::Call;
use crate::store::Store;
use crate::wit::job_types::{Job, Schedule};
use crate::wit::jobs::Host;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "jobs";

const MAX_NAME_CHARS: usize = 128;
const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
const MIN_INTERVAL_MS: u64 = 100;
const MAX_INTERVAL_MS: u64 = 31 * 24 * 3600 * 1000;

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A job as the plugin sees it.
pub fn job_of(row: JobRow) -> Job {
    Job {
        id: row.id,
        name: row.name,
        payload: row.payload,
        every_ms: row.every_ms.and_then(|ms| u64::try_from(ms).ok()),
        next_run: row.next_run.map(rfc3339),
        status: row.status,
        last_run: row.last_run.map(rfc3339),
        last_error: row.last_error,
        runs: u64::try_from(row.runs).unwrap_or(0),
    }
}

/// 8 lower-case hex characters from the OS's CSPRNG.
fn new_job_id() -> Result<String, String> {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot draw a job id: {e}"))?;
    Ok(hex::encode(bytes))
}

/// (every_ms, first run) of a schedule, or why it is refused.
fn timing(when: &Schedule, now: i64) -> Result<(Option<i64>, i64), String> {
    match when {
        Schedule::EveryMs(ms) if (MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(ms) => {
            let ms = *ms as i64;
            Ok((Some(ms), now + ms))
        }
        Schedule::EveryMs(_) => Err(format!(
            "an interval must be between {MIN_INTERVAL_MS} ms and 31 days"
        )),
        Schedule::At(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| (None, t.timestamp_millis()))
            .map_err(|_| format!("datetime {text:?} is not RFC 3339, e.g. 2026-01-02T03:00:00Z")),
    }
}

async fn blocking<T: Send + 'static>(
    store: Store,
    op: impl FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(move || op(&store)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            tracing::error!("state store: {e:#}");
            Err(format!("state store: {e}"))
        }
        Err(e) => Err(format!("state store: {e}")),
    }
}

pub struct State {
    service: Arc<Service>,
    plugin: Arc<str>,
}

impl State {
    pub fn new(service: &Arc<Service>, call: &Call) -> State {
        State {
            service: Arc::clone(service),
            plugin: Arc::clone(&call.plugin),
        }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::jobs::add_to_linker::<T, HasSelf<State>>(linker, get)
}

impl Host for State {
    async fn add_job(
        &mut self,
        name: String,
        when: Schedule,
        payload: String,
    ) -> Result<String, String> {
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(format!("a job name has 1 to {MAX_NAME_CHARS} characters"));
        }
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(format!(
                "a job payload is at most {MAX_PAYLOAD_BYTES} bytes"
            ));
        }
        let now = now_ms();
        let (every_ms, next_run) = timing(&when, now)?;
        let new_id = new_job_id()?;
        let plugin = self.plugin.to_string();
        let store = self.service.store.clone();
        let id = blocking(store, move |s| {
            let job = NewJob {
                plugin: &plugin,
                name: &name,
                every_ms,
                payload: &payload,
                next_run,
                id: &new_id,
            };
            s.upsert_job(&job, now)
        })
        .await?;
        self.service.changed.notify_one();
        Ok(id)
    }

    async fn cancel_job(&mut self, id: String) -> Result<bool, String> {
        let plugin = self.plugin.to_string();
        let store = self.service.store.clone();
        let job = id.clone();
        let cancelled = blocking(store, move |s| s.cancel_job(&plugin, &job)).await?;
        if cancelled {
            // A running job: its statement is cancelled on the server too.
            self.service.postgres.cancel_job(&id).await;
        }
        self.service.changed.notify_one();
        Ok(cancelled)
    }

    async fn list_jobs(&mut self) -> Vec<Job> {
        let plugin = self.plugin.to_string();
        let store = self.service.store.clone();
        blocking(store, move |s| s.jobs_of(&plugin))
            .await
            .map(|rows| rows.into_iter().map(job_of).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(
            timing(&Schedule::EveryMs(2000), 10).unwrap(),
            (Some(2000), 2010)
        );
        assert!(timing(&Schedule::EveryMs(5), 10).is_err());
        let (every, at) = timing(&Schedule::At("2026-01-02T03:00:00Z".into()), 0).unwrap();
        assert_eq!(every, None);
        assert_eq!(rfc3339(at), "2026-01-02T03:00:00Z");
        assert!(timing(&Schedule::At("tomorrow".into()), 0).is_err());
    }
}
