//! Barman as the operator configured it (`[backups]`): its servers and
//! backups, backups and recovers as background jobs. Granted to the bundled
//! backups plugin only. Barman's own answers come as JSON text, parsed here.

use crate::Error;
use crate::bindings::dbagent::api::barman as raw;
pub use crate::bindings::dbagent::api::barman::{
    BarmanError, ErrorKind, Job, JobKind, JobStatus, Target,
};
use serde_json::Value;

/// A Barman error as the SDK's, with the HTTP status its kind means.
impl From<BarmanError> for Error {
    fn from(e: BarmanError) -> Error {
        let status = match e.kind {
            ErrorKind::NotFound => 404,
            ErrorKind::BadRequest => 400,
            ErrorKind::Conflict => 409,
            ErrorKind::Unavailable => 503,
            ErrorKind::Failed => 500,
        };
        Error::new(status, e.message)
    }
}

fn parsed(text: Result<String, BarmanError>) -> Result<Value, Error> {
    let text = text?;
    serde_json::from_str(&text).map_err(|e| Error::internal(format!("Barman's JSON: {e}")))
}

/// The servers of Barman's configuration.
pub fn servers() -> Result<Vec<String>, Error> {
    Ok(raw::servers()?)
}

/// `show-server`: the server's settings and state (`active`,
/// `connection_error`, `backup_directory`, …).
pub fn show_server(server: &str) -> Result<Value, Error> {
    parsed(raw::show_server(server))
}

/// `check`: each check's name → `{"status", "hint"}`.
pub fn check(server: &str) -> Result<Value, Error> {
    parsed(raw::check(server))
}

/// `list-backups`: newest first, each with `backup_id`, `status`, `size_bytes` …
pub fn list_backups(server: &str) -> Result<Vec<Value>, Error> {
    match parsed(raw::list_backups(server))? {
        Value::Array(list) => Ok(list),
        _ => Ok(Vec::new()),
    }
}

/// `show-backup`: the backup's details (`base_backup_information`, …).
pub fn show_backup(server: &str, backup_id: &str) -> Result<Value, Error> {
    parsed(raw::show_backup(server, backup_id))
}

pub fn targets(server: &str) -> Vec<Target> {
    raw::targets(server)
}

pub fn start_backup(server: &str) -> Result<Job, Error> {
    Ok(raw::start_backup(server)?)
}

pub fn start_recover(
    server: &str,
    target: &str,
    backup_id: &str,
    target_time: Option<&str>,
) -> Result<Job, Error> {
    Ok(raw::start_recover(server, target, backup_id, target_time)?)
}

pub fn jobs(kind: Option<JobKind>) -> Result<Vec<Job>, Error> {
    Ok(raw::list_jobs(kind)?)
}

pub fn job(id: &str) -> Result<Option<Job>, Error> {
    Ok(raw::get_job(id)?)
}

pub fn cancel(id: &str) -> Result<Job, Error> {
    Ok(raw::cancel_job(id)?)
}

/// A Unix time in seconds as the agent's local time: `2013-03-22 07:25:07 +0100`.
pub fn format_time(unix_seconds: i64) -> String {
    raw::format_time(unix_seconds)
}
