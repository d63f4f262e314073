//! InfluxQL on the InfluxDB 1.x server an action module's call is bound to
//! (the `action-module` feature).

use crate::Error;
use crate::bindings::dbagent::api::influxdb as raw;
pub use crate::bindings::dbagent::api::influxdb::{InfluxError, Series, StatementResult, Value};

/// An InfluxDB error as the SDK's: unreachable (status 0) or a server
/// failure 503/500; a refusal 403; a query InfluxDB rejects 400.
impl From<InfluxError> for Error {
    fn from(e: InfluxError) -> Error {
        let status = match e.status {
            0 => 503,
            401 | 403 => 403,
            400 | 404 | 422 => 400,
            s if s >= 500 => 503,
            _ => 500,
        };
        Error::new(status, e.message)
    }
}

/// Runs `q` on `database` (the configured one when none); a statement InfluxDB refuses
/// (it says so inside a 200 answer) is a 400 with its message.
pub fn query(database: Option<&str>, q: &str) -> Result<Vec<Series>, Error> {
    let results = raw::query(database, q, &[])?;
    let mut series = Vec::new();
    for result in results {
        if let Some(error) = result.error {
            return Err(Error::new(400, error));
        }
        series.extend(result.series);
    }
    Ok(series)
}

/// The server's version.
pub fn ping() -> Result<String, Error> {
    Ok(raw::ping()?)
}

/// The configured `dbname` of the database the call is bound to: the one
/// `query(None, …)` runs on.
pub fn configured_database() -> Option<String> {
    raw::database()
}

/// `name` as an InfluxQL identifier: in double quotes, `\\` and `"` escaped.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `text` as an InfluxQL string literal: in single quotes, `\\` and `'` escaped.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}
