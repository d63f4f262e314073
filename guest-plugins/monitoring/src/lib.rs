//! temBoard's monitoring area, and its figures for Prometheus.
//!
//! A periodic job (`collect`, every `scheduler_interval` seconds) runs every
//! probe ([`probes`]) and stores the collection — `datetime`, `hostinfo`,
//! `instances`, `data` keyed by probe — in the plugin's store, capped by
//! count and by age.
//!
//! - `GET /monitoring/probe/<name>`: one probe run now, raw counters;
//! - `GET /monitoring/history?start=YYYY-MM-DDTHH:MM:SSZ&limit=N`: the stored
//!   collections, oldest first (50 by default; the newest ones without
//!   `start`); a bad `start` or `limit` is a 406;
//! - `GET /monitoring/config`: `dbnames`, `scheduler_interval`;
//! - `GET /monitoring/collect`: a whole collection measured now, raw
//!   counters, not stored;
//! - `GET /metrics`: the newest collection's figures and the agent's own, in
//!   Prometheus' text format ([`metrics`]). It never runs a probe.
//!
//! Settings (`[plugin.monitoring.settings]`): `dbnames` ("*" or a list),
//! `scheduler_interval` (60), `probes` ("*" or a list), `history_length`
//! (1440 collections), `history_max_age_hours` (168),
//! `bloat_max_db_size_mb` (10240: bigger databases get no bloat probe),
//! `bloat_timeout_ms` (10000).

mod delta;
mod metrics;
mod probes;
mod time;

use dbagent_sdk::jobs::{self, Job};
use dbagent_sdk::{Error, Params, Request, Response, Router, settings, store, system};
use serde_json::{Value, json};
use std::time::Duration;

const COLLECT_JOB: &str = "collect";
const HISTORY_PREFIX: &str = "history/";
/// The newest collection a second time, for `/metrics`.
const LAST_KEY: &str = "last";

/// The plugin's settings.
pub struct Config {
    pub dbnames: Vec<String>,
    pub scheduler_interval: u64,
    pub probes: Vec<String>,
    pub history_length: usize,
    pub history_max_age_secs: u64,
    pub bloat_max_bytes: i64,
    pub bloat_timeout_ms: u64,
}

/// A setting given as "a,b" or ["a", "b"]; `default` when absent.
fn list(raw: &Value, name: &str, default: &str) -> Result<Vec<String>, String> {
    match raw.get(name) {
        None | Some(Value::Null) => Ok(vec![default.to_string()]),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{name} must be a list of names")),
        Some(_) => Err(format!("{name} must be \"*\" or a list of names")),
    }
}

fn number(
    raw: &Value,
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    match raw.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().filter(|n| range.contains(n)).ok_or_else(|| {
            format!(
                "{name} must be an integer from {} to {}",
                range.start(),
                range.end()
            )
        }),
    }
}

impl Config {
    pub fn from_settings(raw: &Value) -> Result<Config, String> {
        Ok(Config {
            dbnames: list(raw, "dbnames", "*")?,
            scheduler_interval: number(raw, "scheduler_interval", 60, 1..=86_400)?,
            probes: list(raw, "probes", "*")?,
            history_length: usize::try_from(number(raw, "history_length", 1440, 1..=1_000_000)?)
                .unwrap_or(1440),
            history_max_age_secs: number(raw, "history_max_age_hours", 168, 1..=87_600)? * 3600,
            bloat_max_bytes: i64::try_from(number(
                raw,
                "bloat_max_db_size_mb",
                10_240,
                0..=100_000_000,
            )?)
            .unwrap_or(i64::MAX / (1 << 20))
                * (1 << 20),
            bloat_timeout_ms: number(raw, "bloat_timeout_ms", 10_000, 1..=3_600_000)?,
        })
    }

    /// The probes a collection runs.
    fn probe_names(&self) -> Vec<&'static str> {
        probes::NAMES
            .iter()
            .copied()
            .filter(|n| self.probes.iter().any(|p| p == "*" || p == n))
            .collect()
    }
}

fn config() -> Result<Config, Error> {
    Config::from_settings(&settings::raw()).map_err(Error::internal)
}

fn init() -> Result<(), String> {
    let config = config().map_err(|e| e.message)?;
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
        COLLECT_JOB => collect_and_store().map_err(|e| e.message),
        other => Err(format!("unknown job '{other}'")),
    }
}

fn handle(req: &Request) -> Result<Response, Error> {
    if req.prefix == "/metrics" {
        return Router::new().get("/", metrics_route).handle(req);
    }
    Router::new()
        .get("/probe/:name", probe)
        .get("/history", history)
        .get("/config", show_config)
        .get("/collect", collect_now)
        .handle(req)
}

dbagent_sdk::export_plugin!(handle, init = init, run_job = run_job);

/// temBoard's hostinfo.
fn hostinfo(counters: &system::HostCounters) -> Value {
    let host = system::host_info();
    let model = host
        .cpu_models
        .first()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let filesystems: Vec<Value> = counters
        .filesystems
        .iter()
        .map(|f| json!({"mount_point": f.mount_point, "device": f.device, "total": f.total_bytes, "used": f.used_bytes}))
        .collect();
    json!({
        "hostname": host.hostname,
        "os": "Linux",
        "os_version": counters.kernel_release,
        "cpu_arch": counters.cpu_arch,
        "cpu_count": host.cpu_count,
        "cpu_model": model,
        "memory_size": host.memory_total_bytes,
        "ip_addresses": counters.ip_addresses,
        "filesystems": filesystems,
        "os_flavor": host.linux_distribution,
    })
}

/// Every probe's rows stamped with the collection's time.
fn stamped(mut data: serde_json::Map<String, Value>, datetime: &str) -> Value {
    for rows in data.values_mut() {
        if let Value::Array(rows) = rows {
            for row in rows {
                if let Value::Object(row) = row {
                    row.insert("datetime".into(), json!(datetime));
                }
            }
        }
    }
    Value::Object(data)
}

/// One collection, with deltas (the collector's) or raw counters.
/// One collection, stamped `now` (seconds since the epoch).
fn collect(with_deltas: bool, now: f64) -> Result<Value, Error> {
    let config = config()?;
    let datetime = time::format(now);
    let counters = system::host_counters();
    let mut deltas = delta::Deltas::new(now);
    let (instance, shown) = match probes::instance(&config.dbnames) {
        Ok(found) => found,
        Err(e) => {
            // The server is down: the collection says so, with host figures.
            let mut run = probes::Run {
                deltas: with_deltas.then_some(&mut deltas),
                bloat_max_bytes: config.bloat_max_bytes,
                bloat_timeout_ms: config.bloat_timeout_ms,
            };
            let host_only: Vec<&str> = config
                .probe_names()
                .into_iter()
                .filter(|n| probes::HOST_PROBES.contains(n))
                .collect();
            let data = probes::run_host(&host_only, &counters, &mut run);
            return Ok(json!({
                "datetime": datetime,
                "hostinfo": hostinfo(&counters),
                "instances": [{"available": false, "error": e.message}],
                "data": stamped(data, &datetime),
                "version": env!("CARGO_PKG_VERSION"),
            }));
        }
    };
    let mut run = probes::Run {
        deltas: with_deltas.then_some(&mut deltas),
        bloat_max_bytes: config.bloat_max_bytes,
        bloat_timeout_ms: config.bloat_timeout_ms,
    };
    let data = probes::run(&config.probe_names(), &instance, &counters, &mut run)?;
    Ok(json!({
        "datetime": datetime,
        "hostinfo": hostinfo(&counters),
        "instances": [shown],
        "data": stamped(data, &datetime),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

fn collect_and_store() -> Result<(), Error> {
    let config = config()?;
    // Keyed by the time the collection is stamped with, so that `start`
    // of /monitoring/history compares what the client reads.
    let now = time::now_seconds();
    let collection = collect(true, now)?;
    let now_micros = (now * 1e6) as u64;
    let keys = store::list(HISTORY_PREFIX);
    let after_last = keys
        .last()
        .and_then(|k| k.strip_prefix(HISTORY_PREFIX)?.parse::<u64>().ok())
        .map_or(0, |t| t + 1);
    let key = format!("{HISTORY_PREFIX}{:020}", now_micros.max(after_last));
    store::put_json(&key, &collection)?;
    store::put_json(LAST_KEY, &collection)?;
    // Capped by count (the new one included) and by age.
    let oldest_kept = now_micros.saturating_sub(config.history_max_age_secs * 1_000_000);
    let too_many = (keys.len() + 1).saturating_sub(config.history_length);
    for (i, old) in keys.iter().enumerate() {
        let time = old
            .strip_prefix(HISTORY_PREFIX)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0);
        if i < too_many || time < oldest_kept {
            store::delete(old)?;
        }
    }
    Ok(())
}

fn probe(_: &Request, params: &Params) -> Result<Response, Error> {
    let name = params.get("name");
    let Some(name) = probes::NAMES.iter().copied().find(|n| *n == name) else {
        return Err(Error::not_found(format!("no probe '{name}'")));
    };
    let config = config()?;
    let counters = system::host_counters();
    let mut run = probes::Run {
        deltas: None,
        bloat_max_bytes: config.bloat_max_bytes,
        bloat_timeout_ms: config.bloat_timeout_ms,
    };
    let data = if probes::HOST_PROBES.contains(&name) {
        probes::run_host(&[name], &counters, &mut run)
    } else {
        let (instance, _) = probes::instance(&config.dbnames)?;
        probes::run(&[name], &instance, &counters, &mut run)?
    };
    Ok(Response::ok(&stamped(
        data,
        &time::format(time::now_seconds()),
    )))
}

fn history(req: &Request, _: &Params) -> Result<Response, Error> {
    req.check_query()?;
    let start = match req.query_param("start") {
        None => None,
        Some(text) => Some(time::parse_utc(&text).ok_or_else(|| Error::malformed("start"))?),
    };
    let limit = match req.query_param("limit") {
        None => 50,
        Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text
            .parse::<usize>()
            .map_err(|_| Error::malformed("limit"))?,
        Some(_) => return Err(Error::malformed("limit")),
    };
    let keys = store::list(HISTORY_PREFIX);
    let chosen: Vec<&String> = match start {
        Some(start) => {
            let from = (start.max(0) as u64).saturating_mul(1_000_000);
            keys.iter()
                .filter(|k| {
                    k.strip_prefix(HISTORY_PREFIX)
                        .and_then(|t| t.parse::<u64>().ok())
                        .is_some_and(|t| t >= from)
                })
                .take(limit)
                .collect()
        }
        None => keys[keys.len().saturating_sub(limit)..].iter().collect(),
    };
    let collections: Vec<Value> = chosen
        .into_iter()
        .filter_map(|k| store::get_json::<Value>(k))
        .collect();
    Ok(Response::ok(&collections))
}

/// A whole collection measured now, raw counters, not stored (beyond
/// temBoard: what `/dashboard/live` is to the dashboard).
fn collect_now(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(&collect(false, time::now_seconds())?))
}

fn show_config(_: &Request, _: &Params) -> Result<Response, Error> {
    let config = config()?;
    Ok(Response::ok(&json!({
        "dbnames": config.dbnames,
        "scheduler_interval": config.scheduler_interval,
    })))
}

fn metrics_route(_: &Request, _: &Params) -> Result<Response, Error> {
    let last: Option<Value> = store::get_json(LAST_KEY);
    let text = metrics::render(last.as_ref());
    Ok(Response {
        status: 200,
        headers: vec![(
            "content-type".into(),
            "text/plain; version=0.0.4; charset=utf-8".into(),
        )],
        body: text.into_bytes(),
    })
}
