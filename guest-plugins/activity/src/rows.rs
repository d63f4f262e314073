//! The JSON rows of the three listings. Structs rather than maps so that the
//! field names, their types and their order are temBoard's, checked by the
//! compiler.

use crate::format::{rate, round};
use dbagent_sdk::Error;
use dbagent_sdk::pg::Row;
use dbagent_sdk::system::ProcessSample;
use serde::Serialize;

/// What the host measured of a backend's process.
#[derive(Debug, Serialize)]
pub struct Process {
    cpu: f64,
    memory: f64,
    read_s: String,
    write_s: String,
    iow: &'static str,
}

impl Process {
    /// The sample for `pid`. A process the host has no sample for yet (it
    /// started within the last sampling interval, or has just exited) shows
    /// as idle rather than failing the whole listing.
    pub fn of(pid: i32, samples: &[ProcessSample]) -> Self {
        match samples.iter().find(|s| s.pid == pid) {
            Some(s) => Process {
                cpu: round(s.cpu_percent, 2),
                memory: round(s.memory_percent, 2),
                read_s: rate(s.read_bytes_per_second),
                write_s: rate(s.write_bytes_per_second),
                iow: yes_no(s.io_wait),
            },
            None => Process {
                cpu: 0.0,
                memory: 0.0,
                read_s: rate(0.0),
                write_s: rate(0.0),
                iow: "N",
            },
        }
    }
}

/// A row of `GET /activity`.
#[derive(Debug, Serialize)]
pub struct Backend {
    pid: i32,
    database: Option<String>,
    user: Option<String>,
    client: Option<String>,
    #[serde(flatten)]
    process: Process,
    wait: &'static str,
    state: Option<String>,
    duration: f64,
    query: Option<String>,
}

impl Backend {
    pub fn from_row(row: &Row<'_>, samples: &[ProcessSample]) -> Result<Self, Error> {
        let pid = row.get("pid")?;
        Ok(Backend {
            pid,
            database: row.get("database")?,
            user: row.get("user")?,
            client: row.get("client")?,
            process: Process::of(pid, samples),
            wait: yes_no(row.get("wait")?),
            state: row.get("state")?,
            duration: round(row.get("duration")?, 3),
            query: row.get("query")?,
        })
    }
}

/// A row of `GET /activity/waiting` and `GET /activity/blocking`.
#[derive(Debug, Serialize)]
pub struct LockedBackend {
    pid: i32,
    database: Option<String>,
    user: Option<String>,
    #[serde(flatten)]
    process: Process,
    relation: String,
    #[serde(rename = "type")]
    lock_type: String,
    mode: String,
    state: Option<String>,
    duration: f64,
    query: Option<String>,
}

impl LockedBackend {
    pub fn from_row(row: &Row<'_>, samples: &[ProcessSample]) -> Result<Self, Error> {
        let pid = row.get("pid")?;
        Ok(LockedBackend {
            pid,
            database: row.get("database")?,
            user: row.get("user")?,
            process: Process::of(pid, samples),
            relation: row.get("relation")?,
            lock_type: row.get("type")?,
            mode: row.get("mode")?,
            state: row.get("state")?,
            duration: round(row.get("duration")?, 3),
            query: row.get("query")?,
        })
    }
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "Y" } else { "N" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbagent_sdk::pg::{Rows, Value};
    use serde_json::json;

    fn sample(pid: i32) -> ProcessSample {
        ProcessSample {
            pid,
            cpu_percent: 12.345,
            memory_percent: 0.126,
            read_bytes_per_second: 1229.0,
            write_bytes_per_second: 0.0,
            io_wait: true,
        }
    }

    fn rows(columns: &[&str], values: Vec<Value>) -> Rows {
        Rows {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: vec![values],
        }
    }

    #[test]
    fn backend_fields_in_temboard_order() {
        let rows = rows(
            &[
                "pid", "database", "user", "client", "wait", "state", "duration", "query",
            ],
            vec![
                Value::Int(42),
                Value::Text("postgres".into()),
                Value::Text("alice".into()),
                Value::Null,
                Value::Boolean(true),
                Value::Text("active".into()),
                Value::Float(1.23456),
                Value::Text("SELECT 1".into()),
            ],
        );
        let row = rows.first().unwrap();
        let text = serde_json::to_string(&Backend::from_row(&row, &[sample(42)]).unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{"pid":42,"database":"postgres","user":"alice","client":null,"cpu":12.35,"memory":0.13,"read_s":"1.20K","write_s":"0.00B","iow":"Y","wait":"Y","state":"active","duration":1.235,"query":"SELECT 1"}"#
        );
    }

    #[test]
    fn locked_backend_without_sample() {
        let rows = rows(
            &[
                "pid", "database", "user", "relation", "type", "mode", "state", "duration", "query",
            ],
            vec![
                Value::Int(7),
                Value::Null,
                Value::Null,
                Value::Text(" ".into()),
                Value::Text("transactionid".into()),
                Value::Text("ShareLock".into()),
                Value::Null,
                Value::Float(0.0),
                Value::Null,
            ],
        );
        let row = rows.first().unwrap();
        let value =
            serde_json::to_value(LockedBackend::from_row(&row, &[sample(8)]).unwrap()).unwrap();
        assert_eq!(
            value,
            json!({
                "pid": 7, "database": null, "user": null,
                "cpu": 0.0, "memory": 0.0, "read_s": "0.00B", "write_s": "0.00B", "iow": "N",
                "relation": " ", "type": "transactionid", "mode": "ShareLock",
                "state": null, "duration": 0.0, "query": null,
            })
        );
    }
}
