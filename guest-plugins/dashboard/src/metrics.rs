//! One data set of the dashboard, and each of its parts, measured now:
//! PostgreSQL's figures by query, the machine's from the host's probes.
//!
//! The shapes are the reference's (temBoard agent, `GET /dashboard/history`):
//! structs rather than maps, so names, types and order are checked by the
//! compiler, and a stored set reads back into the same struct.

use crate::figures::{Cpu, Memory, epoch_seconds, hitratio, round, uptime};
use dbagent_sdk::system::{self, HostInfo};
use dbagent_sdk::{Error, pg::Row};
use dbagent_sdk::{pg, store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// A count and when it was taken (seconds since the epoch, microseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    pub nb: i64,
    pub time: f64,
}

/// Size, number and transaction totals of the databases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Databases {
    /// `pg_size_pretty` of the total, e.g. "1242 MB".
    pub total_size: String,
    /// The server's local time, `HH:MM`.
    pub time: String,
    pub databases: i64,
    pub total_commit: i64,
    pub total_rollback: i64,
    pub timestamp: f64,
}

/// Everything `GET /dashboard` shows. The last three fields are temBoard
/// 7's additions to the reference (its UI reads them): sets stored by an
/// earlier version lack them and read back with their defaults (the
/// history fills `timestamp` from the set's key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSet {
    pub active_backends: Stamped,
    pub max_connections: i64,
    pub databases: Databases,
    pub hostname: String,
    pub pg_version: String,
    pub memory: Memory,
    pub cpu: Cpu,
    pub os_version: String,
    pub loadaverage: f64,
    pub hitratio: f64,
    pub pg_uptime: String,
    pub pg_port: String,
    pub n_cpu: u32,
    pub pg_data: String,
    pub buffers: Stamped,
    /// CPU model name → how many logical CPUs are of it.
    #[serde(default)]
    pub cpu_models: BTreeMap<String, u32>,
    /// e.g. "Debian GNU/Linux 12 (bookworm)"; "" when unknown.
    #[serde(default)]
    pub linux_distribution: String,
    /// When the set was measured: seconds since the epoch, with microseconds.
    #[serde(default)]
    pub timestamp: f64,
}

/// Microseconds since the epoch on the agent's clock.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn now() -> f64 {
    epoch_seconds(now_micros())
}

/// The host's CPU models as temBoard counts them: name → count.
pub fn cpu_models(host: &HostInfo) -> BTreeMap<String, u32> {
    let mut models = BTreeMap::new();
    for model in &host.cpu_models {
        *models.entry(model.name.clone()).or_insert(0) += model.count;
    }
    models
}

/// Where the collector keeps the databases' total size it measured last.
const SIZE_KEY: &str = "total_size";
/// How long `/dashboard/live` reuses that size (seconds).
const SIZE_REUSE_SECS: f64 = 10.0;

#[derive(serde::Serialize, serde::Deserialize)]
struct MeasuredSize {
    total_size: String,
    at: f64,
}

/// The whole set, measured now: its queries go to the server together, in
/// one round trip. The databases' total size (`pg_database_size` of each, a
/// `stat` of every file: most of a collection's time) is measured by the
/// periodic collector (`fresh_size`); a live set reuses the last one when
/// it is at most [`SIZE_REUSE_SECS`] old.
pub fn collect(fresh_size: bool) -> Result<DataSet, Error> {
    let timestamp = now();
    let host = system::host_info();
    let reused = if fresh_size {
        None
    } else {
        store::get_json::<MeasuredSize>(SIZE_KEY)
            .filter(|m| timestamp - m.at >= 0.0 && timestamp - m.at <= SIZE_REUSE_SECS)
    };
    let databases_sql = if reused.is_some() {
        DATABASES_WITHOUT_SIZE_SQL
    } else {
        DATABASES_SQL
    };
    let mut results = pg::query_batch(
        None,
        &[
            (INSTANCE_SQL, &[]),
            (ACTIVE_BACKENDS_SQL, &[]),
            (databases_sql, &[]),
            (HIT_RATIO_SQL, &[]),
            (BUFFERS_SQL, &[]),
        ],
    )?
    .into_iter();
    let mut next = || {
        results
            .next()
            .unwrap_or_else(|| Err(Error::internal("a query of the batch gave no result")))
    };
    let instance = instance_from(&next()?)?;
    let active_backends = active_backends_from(&next()?)?;
    let mut databases = databases_from(&next()?)?;
    match reused {
        Some(measured) => databases.total_size = measured.total_size,
        // A failed write costs the next live set a measure of its own.
        None => {
            let _ = store::put_json(
                SIZE_KEY,
                &MeasuredSize {
                    total_size: databases.total_size.clone(),
                    at: timestamp,
                },
            );
        }
    }
    let hitratio = hit_ratio_from(&next()?)?;
    let buffers = buffers_from(&next()?)?;
    Ok(DataSet {
        active_backends,
        max_connections: instance.max_connections,
        databases,
        hostname: host.hostname.clone(),
        pg_version: instance.version,
        memory: memory(&host),
        cpu: cpu(&host),
        os_version: host.os.clone(),
        loadaverage: loadaverage(&host),
        hitratio,
        pg_uptime: instance.uptime,
        pg_port: instance.port,
        n_cpu: host.cpu_count,
        pg_data: instance.data,
        buffers,
        cpu_models: cpu_models(&host),
        linux_distribution: host.linux_distribution.clone(),
        timestamp,
    })
}

const BUFFERS_SQL: &str = "SELECT buffers_alloc FROM pg_stat_bgwriter";

/// Buffers allocated by the background writer since the statistics reset.
pub fn buffers() -> Result<Stamped, Error> {
    buffers_from(&pg::query(None, BUFFERS_SQL, &[])?)
}

fn buffers_from(rows: &pg::Rows) -> Result<Stamped, Error> {
    Ok(Stamped {
        nb: one_row(rows)?.get("buffers_alloc")?,
        time: now(),
    })
}

const HIT_RATIO_SQL: &str = "SELECT COALESCE(SUM(blks_hit), 0)::float8 AS hit,
        COALESCE(SUM(blks_read), 0)::float8 AS read
   FROM pg_stat_database";

/// Cache hit ratio over all databases.
pub fn hit_ratio() -> Result<f64, Error> {
    hit_ratio_from(&pg::query(None, HIT_RATIO_SQL, &[])?)
}

fn hit_ratio_from(rows: &pg::Rows) -> Result<f64, Error> {
    let row = one_row(rows)?;
    Ok(hitratio(row.get("hit")?, row.get("read")?))
}

const ACTIVE_BACKENDS_SQL: &str =
    "SELECT count(*) AS nb FROM pg_stat_activity WHERE state <> 'idle'";

/// Backends doing something (not idle), this query's own included, as
/// temBoard counts them.
pub fn active_backends() -> Result<Stamped, Error> {
    active_backends_from(&pg::query(None, ACTIVE_BACKENDS_SQL, &[])?)
}

fn active_backends_from(rows: &pg::Rows) -> Result<Stamped, Error> {
    Ok(Stamped {
        nb: one_row(rows)?.get("nb")?,
        time: now(),
    })
}

const DATABASES_SQL: &str =
    "SELECT pg_size_pretty(COALESCE(SUM(pg_database_size(datid)), 0)::bigint) AS total_size,
        to_char(now(), 'HH24:MI') AS time,
        count(datid) AS databases,
        COALESCE(SUM(xact_commit), 0)::bigint AS total_commit,
        COALESCE(SUM(xact_rollback), 0)::bigint AS total_rollback
   FROM pg_stat_database
  WHERE datname IS NOT NULL";

/// [`DATABASES_SQL`] without the size (filled in from the last measure).
const DATABASES_WITHOUT_SIZE_SQL: &str = "SELECT ''::text AS total_size,
        to_char(now(), 'HH24:MI') AS time,
        count(datid) AS databases,
        COALESCE(SUM(xact_commit), 0)::bigint AS total_commit,
        COALESCE(SUM(xact_rollback), 0)::bigint AS total_rollback
   FROM pg_stat_database
  WHERE datname IS NOT NULL";

/// Size, count and transaction totals of the databases (templates included).
pub fn databases() -> Result<Databases, Error> {
    databases_from(&pg::query(None, DATABASES_SQL, &[])?)
}

fn databases_from(rows: &pg::Rows) -> Result<Databases, Error> {
    let row = one_row(rows)?;
    Ok(Databases {
        total_size: row.get("total_size")?,
        time: row.get("time")?,
        databases: row.get("databases")?,
        total_commit: row.get("total_commit")?,
        total_rollback: row.get("total_rollback")?,
        timestamp: now(),
    })
}

/// What the set says about the instance itself.
pub struct Instance {
    pub max_connections: i64,
    pub version: String,
    pub uptime: String,
    pub port: String,
    pub data: String,
}

// `data_directory` is only readable by superusers and members of
// pg_read_all_settings (current_setting fails for others: the set shows ""
// then). Not through pg_settings, which builds every setting's row (about
// 0.4 ms of each collection) to find one.
const INSTANCE_SQL: &str = "SELECT current_setting('max_connections')::int8 AS max_connections,
        version() AS version,
        EXTRACT(EPOCH FROM now() - pg_postmaster_start_time())::float8 AS uptime,
        current_setting('port') AS port,
        CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE')
             THEN current_setting('data_directory') END AS data";

pub fn instance() -> Result<Instance, Error> {
    instance_from(&pg::query(None, INSTANCE_SQL, &[])?)
}

fn instance_from(rows: &pg::Rows) -> Result<Instance, Error> {
    let row = one_row(rows)?;
    Ok(Instance {
        max_connections: row.get("max_connections")?,
        version: row.get("version")?,
        uptime: uptime(row.get("uptime")?),
        port: row.get("port")?,
        data: row.get::<Option<String>>("data")?.unwrap_or_default(),
    })
}

pub fn cpu(host: &HostInfo) -> Cpu {
    let s = &host.cpu_shares;
    Cpu::from_shares(s.user, s.system, s.iowait, s.steal, s.idle)
}

pub fn memory(host: &HostInfo) -> Memory {
    let m = &host.memory_shares;
    Memory::from_shares(m.total_kb, m.active, m.cached, m.free)
}

/// The 1-minute load average.
pub fn loadaverage(host: &HostInfo) -> f64 {
    round(host.load_average_1, 2)
}

fn one_row(rows: &pg::Rows) -> Result<Row<'_>, Error> {
    rows.first()
        .ok_or_else(|| Error::internal("the query returned no row"))
}
