//! The activity plugin: temBoard's activity API.
//!
//! - `GET /activity`: client backends, oldest query first, with per-process
//!   CPU, memory and I/O rates sampled by the host;
//! - `GET /activity/waiting`: backends waiting for a lock;
//! - `GET /activity/blocking`: backends holding a lock others wait for;
//! - `POST /activity/kill`: terminate backends.

mod human;
mod sql;

use dbagent_sdk::pg::{self, Row};
use dbagent_sdk::{Error, Params, Request, Response, Router, notifications, system};
use serde_json::{Value, json};

const DEFAULT_LIMIT: i64 = 300;
const MAX_LIMIT: i64 = 100_000;
/// More pids than any instance has backends; bounds one kill request.
const MAX_KILL_PIDS: usize = 1000;

fn handle(req: &Request) -> Result<Response, Error> {
    Router::new()
        .get("/", activity)
        .get("/waiting", waiting)
        .get("/blocking", blocking)
        .post("/kill", kill)
        .handle(req)
}

dbagent_sdk::export_plugin!(handle);

/// `?limit=N`: a positive integer up to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
fn limit(req: &Request) -> Result<i64, Error> {
    match req.query_param("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(Error::malformed("limit")),
        },
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

/// The rows of `sql` (which takes the limit as `$1`) with the host's
/// process figures merged in, and `extra` columns copied as they are.
fn backends(req: &Request, sql: &str, extra: &[&str]) -> Result<Response, Error> {
    let rows = pg::query(None, sql, &[limit(req)?.into()])?;
    let pids: Vec<i32> = rows
        .iter()
        .map(|r| r.get::<i32>("pid"))
        .collect::<Result<_, _>>()?;
    let samples = system::process_stats(&pids);
    let mut out = Vec::with_capacity(rows.len());
    for row in rows.iter() {
        let pid: i32 = row.get("pid")?;
        let sample = samples.iter().find(|s| s.pid == pid);
        let mut item = serde_json::Map::new();
        item.insert("pid".into(), json!(pid));
        item.insert(
            "database".into(),
            json!(row.get::<Option<String>>("database")?),
        );
        item.insert("user".into(), json!(row.get::<Option<String>>("user")?));
        for column in extra.iter().filter(|c| **c == "client") {
            item.insert((*column).into(), column_json(&row, column)?);
        }
        item.insert(
            "cpu".into(),
            json!(round(sample.map_or(0.0, |s| s.cpu_percent), 2)),
        );
        item.insert(
            "memory".into(),
            json!(round(sample.map_or(0.0, |s| s.memory_percent), 2)),
        );
        item.insert(
            "read_s".into(),
            json!(human::rate(sample.map_or(0.0, |s| s.read_bytes_per_second))),
        );
        item.insert(
            "write_s".into(),
            json!(human::rate(
                sample.map_or(0.0, |s| s.write_bytes_per_second)
            )),
        );
        item.insert(
            "iow".into(),
            json!(yes_no(sample.is_some_and(|s| s.io_wait))),
        );
        for column in extra.iter().filter(|c| **c != "client") {
            item.insert((*column).into(), column_json(&row, column)?);
        }
        item.insert("state".into(), json!(row.get::<Option<String>>("state")?));
        item.insert(
            "duration".into(),
            json!(round(row.get::<f64>("duration")?, 3)),
        );
        item.insert("query".into(), json!(row.get::<Option<String>>("query")?));
        out.push(Value::Object(item));
    }
    Ok(Response::ok(&json!({ "rows": out })))
}

fn column_json(row: &Row<'_>, column: &str) -> Result<Value, Error> {
    Ok(match column {
        "wait" => json!(yes_no(row.get::<bool>("wait")?)),
        _ => json!(row.get::<Option<String>>(column)?),
    })
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "Y" } else { "N" }
}

fn activity(req: &Request, _: &Params) -> Result<Response, Error> {
    backends(req, sql::ACTIVITY, &["client", "wait"])
}

fn waiting(req: &Request, _: &Params) -> Result<Response, Error> {
    backends(req, sql::WAITING, &["relation", "type", "mode"])
}

fn blocking(req: &Request, _: &Params) -> Result<Response, Error> {
    backends(req, sql::BLOCKING, &["relation", "type", "mode"])
}

/// `{"pids": [...]}`: a list of at most [`MAX_KILL_PIDS`] 32-bit integers.
fn kill_pids(body: &[u8]) -> Result<Vec<i32>, Error> {
    let malformed = || Error::malformed("pids");
    let body: Value = serde_json::from_slice(body).map_err(|_| malformed())?;
    let list = body
        .get("pids")
        .and_then(Value::as_array)
        .ok_or_else(malformed)?;
    if list.len() > MAX_KILL_PIDS {
        return Err(malformed());
    }
    list.iter()
        .map(|v| {
            v.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(malformed)
        })
        .collect()
}

fn kill(req: &Request, _: &Params) -> Result<Response, Error> {
    let pids = kill_pids(&req.body)?;
    let array = format!(
        "{{{}}}",
        pids.iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let rows = pg::query(None, sql::KILL, &[array.into()])?;
    let mut backends = Vec::with_capacity(rows.len());
    for row in rows.iter() {
        let pid: i32 = row.get("pid")?;
        let killed: bool = row.get("killed")?;
        if killed {
            let message = format!("Backend {pid} terminated");
            dbagent_sdk::log::info(&message);
            notifications::notify(&message);
        }
        backends.push(json!({ "pid": pid, "killed": killed }));
    }
    Ok(Response::ok(&json!({ "backends": backends })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_bodies() {
        assert_eq!(kill_pids(br#"{"pids": [1, 2]}"#).unwrap(), vec![1, 2]);
        assert_eq!(kill_pids(br#"{"pids": []}"#).unwrap(), Vec::<i32>::new());
        for bad in [
            &br#"{"pids": "x"}"#[..],
            br#"{"pids": [1, "a"]}"#,
            br#"{"pids": [1.5]}"#,
            br#"{"pids": [99999999999]}"#,
            br#"{}"#,
            b"not json",
            b"",
            br#"[1]"#,
        ] {
            let err = kill_pids(bad).unwrap_err();
            assert_eq!(
                (err.status, err.message.as_str()),
                (406, "Parameter 'pids' is malformed.")
            );
        }
    }

    #[test]
    fn limits() {
        let with = |q: &str| Request {
            query: q.into(),
            ..Default::default()
        };
        assert_eq!(limit(&with("")).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(&with("limit=5")).unwrap(), 5);
        for bad in [
            "limit=0",
            "limit=-1",
            "limit=abc",
            "limit=1000000",
            "limit=",
        ] {
            assert_eq!(
                limit(&with(bad)).unwrap_err().message,
                "Parameter 'limit' is malformed."
            );
        }
    }
}
