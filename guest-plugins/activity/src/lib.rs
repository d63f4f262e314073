//! The activity plugin: temBoard's activity API.
//!
//! - `GET /activity`: client backends, oldest query first, with per-process
//!   CPU, memory and I/O rates sampled by the host;
//! - `GET /activity/waiting`: backends waiting for a lock;
//! - `GET /activity/blocking`: backends holding a lock others wait for;
//! - `POST /activity/kill`: terminate client backends.
//!
//! The agent's own connections are left out of the listing and cannot be
//! killed; see [`sql`] for how they are recognised.

mod format;
mod rows;
mod sql;

use dbagent_sdk::pg::{self, Row};
use dbagent_sdk::system::{self, ProcessSample};
use dbagent_sdk::{Error, Params, Request, Response, Router, log, notifications};
use serde::Serialize;
use serde_json::Value;

const DEFAULT_LIMIT: i64 = 300;
/// Far more backends than any instance has; a bigger limit is a mistake.
const MAX_LIMIT: i64 = 100_000;
/// Bounds the work of one kill request, and the size of its SQL parameter.
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

fn activity(req: &Request, _: &Params) -> Result<Response, Error> {
    listing(req, sql::ACTIVITY, rows::Backend::from_row)
}

fn waiting(req: &Request, _: &Params) -> Result<Response, Error> {
    listing(req, sql::WAITING, rows::LockedBackend::from_row)
}

fn blocking(req: &Request, _: &Params) -> Result<Response, Error> {
    listing(req, sql::BLOCKING, rows::LockedBackend::from_row)
}

/// `{"rows": [...]}` from `sql` (which takes the limit as `$1`), each row
/// joined with the host's figures for its process.
fn listing<T: Serialize>(
    req: &Request,
    sql: &str,
    to_row: fn(&Row<'_>, &[ProcessSample]) -> Result<T, Error>,
) -> Result<Response, Error> {
    let rows = pg::query(None, sql, &[limit(req)?.into()])?;
    let mut pids = rows
        .iter()
        .map(|row| row.get::<i32>("pid"))
        .collect::<Result<Vec<_>, _>>()?;
    // A blocker holding several locks is listed once per lock.
    pids.sort_unstable();
    pids.dedup();
    let samples = system::process_stats(&pids);
    let out = rows
        .iter()
        .map(|row| to_row(&row, &samples))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Response::ok(&Listing { rows: out }))
}

/// Serialised straight from structs, never through `serde_json::Value`,
/// whose maps would sort the fields alphabetically.
#[derive(Serialize)]
struct Listing<T> {
    rows: Vec<T>,
}

#[derive(Serialize)]
struct Kills {
    backends: Vec<Kill>,
}

#[derive(Serialize)]
struct Kill {
    pid: i32,
    killed: bool,
}

/// `?limit=N`: 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
fn limit(req: &Request) -> Result<i64, Error> {
    req.int_param("limit", DEFAULT_LIMIT, 1..=MAX_LIMIT)
}

/// `{"pids": [...]}`: at most [`MAX_KILL_PIDS`] integers that fit a pid
/// (int4), each kept once, in the order first given. A body that is not JSON
/// is temBoard's 400 `Invalid json format`; JSON of another shape its 406.
fn kill_pids(body: &[u8]) -> Result<Vec<i32>, Error> {
    let malformed = || Error::malformed("pids");
    let body: Value =
        serde_json::from_slice(body).map_err(|_| Error::bad_request("Invalid json format"))?;
    let list = body
        .get("pids")
        .and_then(Value::as_array)
        .ok_or_else(malformed)?;
    if list.len() > MAX_KILL_PIDS {
        return Err(malformed());
    }
    let mut pids: Vec<i32> = Vec::with_capacity(list.len());
    for v in list {
        let pid = v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(malformed)?;
        if !pids.contains(&pid) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// `{"backends": [{"pid": N, "killed": bool}, ...]}` in request order, each
/// pid once; a pid that is no client backend is `"killed": false`, not an
/// error.
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
    let by = req
        .user
        .as_deref()
        .map_or_else(String::new, |user| format!(" at the request of {user}"));
    let mut backends = Vec::with_capacity(rows.len());
    for row in rows.iter() {
        let pid: i32 = row.get("pid")?;
        let killed: bool = row.get("killed")?;
        if killed {
            log::info(&format!("backend {pid} terminated{by}"));
            // temBoard's notification, shown by GET /notifications.
            notifications::notify(&format!("Backend {pid} terminated"));
        } else {
            log::info(&format!(
                "backend {pid} not terminated{by}: not a client backend, or the agent's own"
            ));
        }
        backends.push(Kill { pid, killed });
    }
    Ok(Response::ok(&Kills { backends }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_bodies() {
        assert_eq!(kill_pids(br#"{"pids": [1, 2]}"#).unwrap(), vec![1, 2]);
        assert_eq!(kill_pids(br#"{"pids": []}"#).unwrap(), Vec::<i32>::new());
        let distinct: Vec<String> = (1..=1000).map(|pid| pid.to_string()).collect();
        let thousand = format!("{{\"pids\": [{}]}}", distinct.join(","));
        assert_eq!(kill_pids(thousand.as_bytes()).unwrap().len(), 1000);
        let too_many = format!("{{\"pids\": [{}]}}", vec!["1"; 1001].join(","));
        for bad in [
            &br#"{"pids": "x"}"#[..],
            br#"{"pids": [1, "a"]}"#,
            br#"{"pids": [1.5]}"#,
            br#"{"pids": [2147483648]}"#,
            br#"{"pids": [99999999999999999999]}"#,
            br#"{"pids": null}"#,
            br#"{"pid": [1]}"#,
            br#"{}"#,
            br#"[1]"#,
            too_many.as_bytes(),
        ] {
            let err = kill_pids(bad).unwrap_err();
            assert_eq!(
                (err.status, err.message.as_str()),
                (406, "Parameter 'pids' is malformed."),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        for not_json in [&b"not json"[..], b"", b"{\"pids\": [1"] {
            let err = kill_pids(not_json).unwrap_err();
            assert_eq!(
                (err.status, err.message.as_str()),
                (400, "Invalid json format"),
                "{}",
                String::from_utf8_lossy(not_json)
            );
        }
        assert_eq!(
            kill_pids(br#"{"pids": [3, 1, 3, 2, 1]}"#).unwrap(),
            vec![3, 1, 2]
        );
    }

    #[test]
    fn kill_answer_keeps_temboard_field_order() {
        let answer = Kills {
            backends: vec![Kill {
                pid: 13309,
                killed: true,
            }],
        };
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"backends":[{"pid":13309,"killed":true}]}"#
        );
    }

    #[test]
    fn limits() {
        let with = |q: &str| Request {
            query: q.into(),
            ..Default::default()
        };
        assert_eq!(limit(&with("")).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(&with("limit=5")).unwrap(), 5);
        assert_eq!(limit(&with("limit=100000")).unwrap(), 100_000);
        for bad in [
            "limit=0",
            "limit=-1",
            "limit=abc",
            "limit=1.5",
            "limit=100001",
            "limit=99999999999999999999",
            "limit=",
        ] {
            let err = limit(&with(bad)).unwrap_err();
            assert_eq!(
                (err.status, err.message.as_str()),
                (406, "Parameter 'limit' is malformed."),
                "{bad}"
            );
        }
    }
}
