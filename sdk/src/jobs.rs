//! Work the host runs later on the plugin's behalf, durably.
//!
//! A plugin schedules jobs (periodic, or once at a datetime) and exports a
//! runner through [`crate::export_plugin!`]; the host keeps the jobs in its
//! state store, runs them when due on a fresh instance, and records their
//! status. Scheduling a name again replaces that job, so an `init` hook can
//! schedule its periodic jobs at every start.

use crate::Error;
pub use crate::bindings::dbagent::api::job_types::{Job, Schedule};
use crate::bindings::dbagent::api::jobs as raw;
use std::time::Duration;

/// Runs `name` every `interval`, the first time one interval from now.
pub fn schedule_every(name: &str, interval: Duration, payload: &str) -> Result<String, Error> {
    let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    raw::add_job(name, &Schedule::EveryMs(ms), payload).map_err(Error::internal)
}

/// Runs `name` once at `datetime` (RFC 3339, e.g. "2026-01-02T03:00:00Z").
pub fn schedule_at(name: &str, datetime: &str, payload: &str) -> Result<String, Error> {
    raw::add_job(name, &Schedule::At(datetime.to_string()), payload).map_err(Error::not_acceptable)
}

/// Cancels a job that has not finished; `false` when there was none to cancel.
pub fn cancel(id: &str) -> Result<bool, Error> {
    raw::cancel_job(id).map_err(Error::internal)
}

/// This plugin's jobs, most recently scheduled first.
pub fn list() -> Vec<Job> {
    raw::list_jobs()
}
