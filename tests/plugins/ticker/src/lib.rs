//! Test plugin for the host's jobs: at start-up it schedules `tick` (adds
//! one to a counter in its key-value store) and `boom` (panics) every
//! 300 ms. `GET /ticker` shows the counter and the jobs' status.

use dbagent_sdk::jobs::{self, Job};
use dbagent_sdk::{Error, Params, Request, Response, Router, store};
use serde_json::json;
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(300);

fn count() -> u64 {
    store::get_json("count").unwrap_or(0)
}

fn init() -> Result<(), String> {
    jobs::schedule_every("tick", EVERY, "").map_err(|e| e.message)?;
    jobs::schedule_every("boom", EVERY, "").map_err(|e| e.message)?;
    Ok(())
}

fn run_job(job: &Job) -> Result<(), String> {
    match job.name.as_str() {
        "tick" => store::put_json("count", &(count() + 1)).map_err(|e| e.message),
        "boom" => panic!("the boom job always panics"),
        other => Err(format!("unknown job {other}")),
    }
}

fn status(_: &Request, _: &Params) -> Result<Response, Error> {
    let jobs: Vec<_> = jobs::list()
        .into_iter()
        .map(|j| {
            json!({
                "id": j.id, "name": j.name, "status": j.status, "runs": j.runs,
                "last_error": j.last_error, "next_run": j.next_run, "every_ms": j.every_ms,
            })
        })
        .collect();
    Ok(Response::ok(&json!({ "count": count(), "jobs": jobs })))
}

fn handle(req: &Request) -> Result<Response, Error> {
    Router::new().get("/", status).handle(req)
}

dbagent_sdk::export_plugin!(handle, init = init, run_job = run_job);
