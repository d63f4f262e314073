//! The dashboard plugin: temBoard's dashboard API.
//!
//! A periodic job (`collect`, every `scheduler_interval` seconds, scheduled
//! by the start-up hook) measures one [`metrics::DataSet`] and appends it
//! to the history in the plugin's store, which keeps the newest
//! `history_length` sets across restarts (see [`history`]).
//!
//! - `GET /dashboard`: the newest collected set (a live one before the first
//!   collection);
//! - `GET /dashboard/live`: a set measured now;
//! - `GET /dashboard/history`: the kept sets, oldest first;
//! - `GET /dashboard/config`: `history_length` and `scheduler_interval`;
//! - `GET /dashboard/{buffers,hitratio,active_backends,cpu,loadaverage,
//!   memory,hostname,databases,os_version,pg_version,n_cpu,max_connections}`:
//!   that part alone, measured now, as `{"<part>": ...}`;
//! - `GET /dashboard/info`: `hostname`, `os_version`, `pg_uptime`,
//!   `pg_version`, `pg_data`, `pg_port`, measured now (temBoard 7).
//!
//! Settings (`[plugin.dashboard.settings]`): `scheduler_interval` (seconds,
//! default 2) and `history_length` (sets, default 150).

mod figures;
mod history;
mod metrics;

use dbagent_sdk::jobs::{self, Job};
use dbagent_sdk::{Error, Params, Request, Response, Router, settings, system};
use figures::Config;
use serde_json::json;
use std::time::Duration;

/// The name of the periodic job; scheduling it again replaces it.
const COLLECT_JOB: &str = "collect";

fn config() -> Result<Config, String> {
    Config::from_settings(&settings::raw())
}

fn config_or_500() -> Result<Config, Error> {
    config().map_err(Error::internal)
}

/// Schedules the collector at every start, so a changed interval applies.
fn init() -> Result<(), String> {
    let config = config()?;
    jobs::schedule_every(
        COLLECT_JOB,
        Duration::from_secs(config.scheduler_interval),
        "",
    )
    .map_err(|e| format!("cannot schedule the collector: {}", e.message))?;
    Ok(())
}

fn run_job(job: &Job) -> Result<(), String> {
    match job.name.as_str() {
        COLLECT_JOB => {
            let config = config()?;
            let set = metrics::collect(true).map_err(|e| e.message)?;
            history::append(&set, config.history_length).map_err(|e| e.message)
        }
        other => Err(format!("unknown job '{other}'")),
    }
}

fn handle(req: &Request) -> Result<Response, Error> {
    Router::new()
        .get("/", last)
        .get("/live", live)
        .get("/history", history)
        .get("/config", show_config)
        .get("/buffers", buffers)
        .get("/hitratio", hitratio)
        .get("/active_backends", active_backends)
        .get("/cpu", cpu)
        .get("/loadaverage", loadaverage)
        .get("/memory", memory)
        .get("/hostname", hostname)
        .get("/databases", databases)
        .get("/info", info)
        .get("/os_version", os_version)
        .get("/pg_version", pg_version)
        .get("/n_cpu", n_cpu)
        .get("/max_connections", max_connections)
        .handle(req)
}

dbagent_sdk::export_plugin!(handle, init = init, run_job = run_job);

fn last(_: &Request, _: &Params) -> Result<Response, Error> {
    if let Some(stored) = history::last_raw() {
        return Ok(Response::json_bytes(200, stored));
    }
    let set = match history::last() {
        Some(set) => set,
        None => metrics::collect(true)?,
    };
    Ok(Response::ok(&set))
}

fn live(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(&metrics::collect(false)?))
}

fn history(_: &Request, _: &Params) -> Result<Response, Error> {
    let config = config_or_500()?;
    Ok(Response::ok(&history::read(config.history_length)))
}

fn show_config(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(&config_or_500()?))
}

fn buffers(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(&json!({ "buffers": metrics::buffers()? })))
}

fn hitratio(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(&json!({ "hitratio": metrics::hit_ratio()? })))
}

fn active_backends(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(
        &json!({ "active_backends": metrics::active_backends()? }),
    ))
}

fn cpu(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(
        &json!({ "cpu": metrics::cpu(&system::host_info()) }),
    ))
}

fn loadaverage(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(
        &json!({ "loadaverage": metrics::loadaverage(&system::host_info()) }),
    ))
}

fn memory(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(
        &json!({ "memory": metrics::memory(&system::host_info()) }),
    ))
}

fn hostname(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(
        &json!({ "hostname": system::host_info().hostname }),
    ))
}

fn databases(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(&json!({ "databases": metrics::databases()? })))
}

/// temBoard 7's summary of the machine and the instance.
fn info(_: &Request, _: &Params) -> Result<Response, Error> {
    let instance = metrics::instance()?;
    let host = system::host_info();
    Ok(Response::ok(&json!({
        "hostname": host.hostname,
        "os_version": host.os,
        "pg_uptime": instance.uptime,
        "pg_version": instance.version,
        "pg_data": instance.data,
        "pg_port": instance.port,
    })))
}

fn os_version(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(
        &json!({ "os_version": system::host_info().os }),
    ))
}

fn pg_version(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(
        &json!({ "pg_version": metrics::instance()?.version }),
    ))
}

fn n_cpu(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(
        &json!({ "n_cpu": system::host_info().cpu_count }),
    ))
}

fn max_connections(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(
        &json!({ "max_connections": metrics::instance()?.max_connections }),
    ))
}
