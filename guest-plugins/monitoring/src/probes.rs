//! The probes of temBoard's monitoring plugin: SQL ones on the instance (one
//! pipelined batch) or on each monitored database, host ones from the
//! host's `system` capability. Counters become deltas over the interval
//! since the previous collection ([`crate::delta`]).

use crate::delta::Deltas;
use dbagent_sdk::Error;
use dbagent_sdk::pg::{self, Rows};
use dbagent_sdk::system::HostCounters;
use serde_json::{Map, Value, json};

/// Every probe, in the order temBoard lists them.
pub const NAMES: &[&str] = &[
    "sessions",
    "xacts",
    "locks",
    "blocks",
    "bgwriter",
    "db_size",
    "tblspc_size",
    "filesystems_size",
    "cpu",
    "process",
    "memory",
    "loadavg",
    "wal_files",
    "replication_lag",
    "temp_files_size_delta",
    "replication_connection",
    "heap_bloat",
    "btree_bloat",
];

const SESSIONS_SQL: &str = "SELECT d.datname::text AS dbname,
  COALESCE(sum((state = 'active' AND wait_event_type IS DISTINCT FROM 'Lock')::int), 0)::int8 AS active,
  COALESCE(sum((state = 'active' AND wait_event_type IS NOT DISTINCT FROM 'Lock')::int), 0)::int8 AS waiting,
  COALESCE(sum((state = 'idle')::int), 0)::int8 AS idle,
  COALESCE(sum((state = 'idle in transaction')::int), 0)::int8 AS idle_in_xact,
  COALESCE(sum((state = 'idle in transaction (aborted)')::int), 0)::int8 AS idle_in_xact_aborted,
  COALESCE(sum((state = 'fastpath function call')::int), 0)::int8 AS fastpath,
  COALESCE(sum((state = 'disabled')::int), 0)::int8 AS disabled,
  COALESCE(sum((query = '<insufficient privilege>')::int), 0)::int8 AS no_priv
FROM pg_database d LEFT JOIN pg_stat_activity a ON d.oid = a.datid
WHERE d.datallowconn GROUP BY d.datname ORDER BY d.datname";

const XACTS_SQL: &str =
    "SELECT s.datname::text AS dbname, xact_commit AS n_commit, xact_rollback AS n_rollback
FROM pg_stat_database s JOIN pg_database d ON d.oid = s.datid WHERE d.datallowconn ORDER BY 1";

/// The lock modes temBoard counts, granted and waiting.
const LOCK_MODES: &[(&str, &str)] = &[
    ("AccessShareLock", "access_share"),
    ("RowShareLock", "row_share"),
    ("RowExclusiveLock", "row_exclusive"),
    ("ShareUpdateExclusiveLock", "share_update_exclusive"),
    ("ShareLock", "share"),
    ("ShareRowExclusiveLock", "share_row_exclusive"),
    ("ExclusiveLock", "exclusive"),
    ("AccessExclusiveLock", "access_exclusive"),
];

const BLOCKS_SQL: &str = "SELECT s.datname::text AS dbname, blks_read, blks_hit,
  COALESCE(blks_hit::float8 * 100 / NULLIF(blks_read + blks_hit, 0), 0) AS hitmiss_ratio
FROM pg_stat_database s JOIN pg_database d ON d.oid = s.datid WHERE d.datallowconn ORDER BY 1";

/// pg_stat_bgwriter as temBoard reads it; PostgreSQL 17 moved the
/// checkpoint counters to pg_stat_checkpointer and dropped the backend
/// ones, which read 0 there.
const BGWRITER_SQL: &str = "SELECT checkpoints_timed, checkpoints_req, checkpoint_write_time::int8,
  checkpoint_sync_time::int8, buffers_checkpoint, buffers_clean, maxwritten_clean, buffers_backend,
  buffers_backend_fsync, buffers_alloc, stats_reset::text AS stats_reset FROM pg_stat_bgwriter";
const BGWRITER_17_SQL: &str =
    "SELECT c.num_timed AS checkpoints_timed, c.num_requested AS checkpoints_req,
  c.write_time::int8 AS checkpoint_write_time, c.sync_time::int8 AS checkpoint_sync_time,
  c.buffers_written AS buffers_checkpoint, b.buffers_clean, b.maxwritten_clean,
  0::int8 AS buffers_backend, 0::int8 AS buffers_backend_fsync, b.buffers_alloc,
  b.stats_reset::text AS stats_reset
FROM pg_stat_bgwriter b, pg_stat_checkpointer c";
const BGWRITER_COUNTERS: &[&str] = &[
    "checkpoints_timed",
    "checkpoints_req",
    "checkpoint_write_time",
    "checkpoint_sync_time",
    "buffers_checkpoint",
    "buffers_clean",
    "maxwritten_clean",
    "buffers_backend",
    "buffers_backend_fsync",
    "buffers_alloc",
];

const DB_SIZE_SQL: &str = "SELECT datname::text AS dbname, pg_database_size(oid) AS size
FROM pg_database WHERE datallowconn ORDER BY 1";
const TBLSPC_SIZE_SQL: &str = "SELECT spcname::text AS spcname, pg_tablespace_size(oid) AS size FROM pg_tablespace ORDER BY 1";
const TEMP_FILES_SQL: &str = "SELECT s.datname::text AS dbname, temp_bytes AS size
FROM pg_stat_database s JOIN pg_database d ON d.oid = s.datid WHERE d.datallowconn ORDER BY 1";

/// WAL files in pg_wal (a primary's), the ones waiting to be archived, and
/// the write position as a byte count (for the written size's delta).
const WAL_FILES_SQL: &str = "SELECT
  (SELECT count(*) FROM pg_ls_dir('pg_wal') AS f WHERE f ~ '^[0-9A-F]{24}$') AS total,
  (SELECT COALESCE(sum((pg_stat_file('pg_wal/' || f)).size), 0)::int8 FROM pg_ls_dir('pg_wal') AS f
    WHERE f ~ '^[0-9A-F]{24}$') AS total_size,
  pg_current_wal_lsn()::text AS current_location,
  (SELECT count(*) FROM pg_ls_dir('pg_wal/archive_status') AS f WHERE f ~ '\\.ready$') AS archive_ready,
  pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8 AS position";

/// On a standby: how far replay is behind what the WAL receiver got from
/// the primary, and whether it streams (temBoard asks the primary; the
/// receiver's view needs no second connection).
const REPLICATION_LAG_SQL: &str =
    "SELECT COALESCE(pg_wal_lsn_diff(latest_end_lsn, pg_last_wal_replay_lsn()), 0)::int8 AS lag
FROM pg_stat_wal_receiver";
const REPLICATION_CONNECTION_SQL: &str = "SELECT COALESCE(sender_host, '') AS upstream,
  CASE WHEN status = 'streaming' THEN 1 ELSE 0 END AS connected FROM pg_stat_wal_receiver";

/// The heap bloat ratio of a database, estimated from the statistics
/// (ioguix's method, as temBoard).
const HEAP_BLOAT_SQL: &str = "SELECT current_database()::text AS dbname,
  COALESCE(sum(bloat_size)::float8 / NULLIF(sum(bs * tblpages), 0)::float8 * 100, 0) AS ratio
FROM (
  SELECT CASE WHEN tblpages - est_tblpages_ff > 0 THEN (tblpages - est_tblpages_ff) * bs ELSE 0 END AS bloat_size,
    bs, tblpages
  FROM (
    SELECT ceil(reltuples / ((bs - page_hdr) * fillfactor / (tpl_size * 100))) + ceil(toasttuples / 4) AS est_tblpages_ff,
      tblpages, bs
    FROM (
      SELECT (4 + tpl_hdr_size + tpl_data_size + (2 * ma)
          - CASE WHEN tpl_hdr_size % ma = 0 THEN ma ELSE tpl_hdr_size % ma END
          - CASE WHEN ceil(tpl_data_size)::int % ma = 0 THEN ma ELSE ceil(tpl_data_size)::int % ma END
        ) AS tpl_size, (heappages + toastpages) AS tblpages, reltuples, toasttuples, bs, page_hdr, fillfactor
      FROM (
        SELECT tbl.oid AS tblid, tbl.reltuples, tbl.relpages AS heappages,
          COALESCE(toast.relpages, 0) AS toastpages, COALESCE(toast.reltuples, 0) AS toasttuples,
          COALESCE(substring(array_to_string(tbl.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::smallint, 100) AS fillfactor,
          current_setting('block_size')::numeric AS bs, 8 AS ma, 24 AS page_hdr,
          23 + CASE WHEN max(COALESCE(s.null_frac, 0)) > 0 THEN (7 + count(s.attname)) / 8 ELSE 0::int END AS tpl_hdr_size,
          sum((1 - COALESCE(s.null_frac, 0)) * COALESCE(s.avg_width, 0)) AS tpl_data_size
        FROM pg_attribute AS att
          JOIN pg_class AS tbl ON att.attrelid = tbl.oid
          JOIN pg_namespace AS ns ON ns.oid = tbl.relnamespace
          LEFT JOIN pg_stats AS s ON s.schemaname = ns.nspname AND s.tablename = tbl.relname
            AND s.inherited = false AND s.attname = att.attname
          LEFT JOIN pg_class AS toast ON tbl.reltoastrelid = toast.oid
        WHERE NOT att.attisdropped AND att.attnum > 0 AND tbl.relkind = 'r'
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
      ) AS s
    ) AS s2
  ) AS s3
) AS s4";

/// The btree bloat ratio of a database (ioguix's estimation per index,
/// summed over the database's btree indexes).
const BTREE_BLOAT_SQL: &str = "SELECT current_database()::text AS dbname,
  COALESCE(sum(bloat_bytes)::float8 / NULLIF(sum(real_size), 0)::float8 * 100, 0) AS ratio
FROM (
  SELECT bs * relpages::bigint AS real_size,
    CASE WHEN relpages > est_pages_ff THEN bs * (relpages - est_pages_ff) ELSE 0 END AS bloat_bytes
  FROM (
    SELECT bs, relpages,
      COALESCE(ceil(reltuples * (4 + nulldatahdrwidth) * 100
        / ((bs - pagehdr::float8 - pageopqdata::float8) * fillfactor)), 0) AS est_pages_ff
    FROM (
      SELECT bs, reltuples, relpages, pagehdr, pageopqdata, fillfactor,
        (index_tuple_hdr_bm + maxalign
          - CASE WHEN index_tuple_hdr_bm % maxalign = 0 THEN maxalign ELSE index_tuple_hdr_bm % maxalign END
          + nulldatawidth + maxalign
          - CASE WHEN nulldatawidth = 0 THEN 0
                 WHEN nulldatawidth::integer % maxalign = 0 THEN maxalign
                 ELSE nulldatawidth::integer % maxalign END
        )::numeric AS nulldatahdrwidth
      FROM (
        SELECT i.idxoid, i.reltuples, i.relpages, i.fillfactor,
          current_setting('block_size')::numeric AS bs, 8 AS maxalign, 24 AS pagehdr, 16 AS pageopqdata,
          CASE WHEN max(COALESCE(s.null_frac, 0)) = 0 THEN 8 ELSE 8 + ((32 + 8 - 1) / 8) END AS index_tuple_hdr_bm,
          sum((1 - COALESCE(s.null_frac, 0)) * COALESCE(s.avg_width, 1024)) AS nulldatawidth
        FROM (
          SELECT ct.oid AS idxoid, ct.reltuples, ct.relpages, n.nspname, tbl.relname AS tblname,
            COALESCE(substring(array_to_string(ct.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::smallint, 90) AS fillfactor,
            tbl.oid AS tbloid, unnest(ix.indkey) AS attnum
          FROM pg_index ix
            JOIN pg_class ct ON ct.oid = ix.indexrelid
            JOIN pg_class tbl ON tbl.oid = ix.indrelid
            JOIN pg_namespace n ON n.oid = ct.relnamespace
            JOIN pg_am am ON am.oid = ct.relam
          WHERE am.amname = 'btree' AND ct.relpages > 0
            AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
        ) AS i
          LEFT JOIN pg_attribute a ON a.attrelid = i.tbloid AND a.attnum = i.attnum
          LEFT JOIN pg_stats s ON s.schemaname = i.nspname AND s.tablename = i.tblname AND s.attname = a.attname
        GROUP BY i.idxoid, i.reltuples, i.relpages, i.fillfactor
      ) AS rows_data_stats
    ) AS rows_hdr_pdg_stats
  ) AS relation_stats
) AS bloat";

/// What a probe run needs to know of the instance.
pub struct Instance {
    pub version_num: i64,
    pub standby: bool,
    /// The monitored databases and their sizes.
    pub databases: Vec<(String, i64)>,
}

/// How a collection runs: with deltas (the periodic collector) or raw
/// (`GET /monitoring/probe/<name>`).
pub struct Run<'a> {
    pub deltas: Option<&'a mut Deltas>,
    pub bloat_max_bytes: i64,
    pub bloat_timeout_ms: u64,
}

/// Rows as JSON objects.
fn objects(rows: &Rows) -> Vec<Map<String, Value>> {
    rows.to_json()
        .into_iter()
        .filter_map(|row| match row {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .collect()
}

impl Run<'_> {
    /// Moves `columns` of `row` into deltas keyed by `probe` and `key`.
    fn delta(&mut self, probe: &str, key: &str, row: &mut Map<String, Value>, columns: &[&str]) {
        let Some(deltas) = self.deltas.as_deref_mut() else {
            return;
        };
        let mut current = Map::new();
        for column in columns {
            if let Some(v) = row.remove(*column) {
                current.insert((*column).to_string(), v);
            }
        }
        row.extend(deltas.apply(&format!("{probe}/{key}"), current));
    }

    fn deltas_by_dbname(&mut self, probe: &str, rows: &Rows, columns: &[&str]) -> Vec<Value> {
        objects(rows)
            .into_iter()
            .map(|mut row| {
                let key = row
                    .get("dbname")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                self.delta(probe, &key, &mut row, columns);
                Value::Object(row)
            })
            .collect()
    }
}

/// The instance's facts a run needs; `dbnames` picks the monitored
/// databases (`*` for all that accept connections).
pub fn instance(dbnames: &[String]) -> Result<(Instance, Value), Error> {
    let rows = pg::query(
        None,
        "SELECT current_setting('server_version_num')::int8 AS version_num,
                current_setting('server_version') AS version,
                current_setting('max_connections')::int8 AS max_connections,
                current_setting('port')::int8 AS port,
                CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE')
                     THEN current_setting('data_directory') END AS data_directory,
                pg_postmaster_start_time()::text AS start_time,
                pg_is_in_recovery() AS standby,
                (SELECT json_agg(json_build_object('dbname', datname, 'size', pg_database_size(oid),
                                                   'encoding', pg_encoding_to_char(encoding)) ORDER BY datname)
                   FROM pg_database WHERE datallowconn)::text AS dbs,
                (SELECT json_agg(json_build_object('spcname', spcname, 'size', pg_tablespace_size(oid)) ORDER BY spcname)
                   FROM pg_tablespace)::text AS tablespaces",
        &[],
    )?;
    let row = rows
        .first()
        .ok_or_else(|| Error::internal("the instance query returned no row"))?;
    let all: Vec<Value> = serde_json::from_str(&row.get::<String>("dbs")?).unwrap_or_default();
    let wanted = |name: &str| dbnames.iter().any(|d| d == "*" || d == name);
    let monitored: Vec<Value> = all
        .into_iter()
        .filter(|d| wanted(d["dbname"].as_str().unwrap_or_default()))
        .collect();
    let instance = Instance {
        version_num: row.get("version_num")?,
        standby: row.get("standby")?,
        databases: monitored
            .iter()
            .map(|d| {
                (
                    d["dbname"].as_str().unwrap_or_default().to_string(),
                    d["size"].as_i64().unwrap_or(0),
                )
            })
            .collect(),
    };
    let tablespaces: Value =
        serde_json::from_str(&row.get::<String>("tablespaces")?).unwrap_or(json!([]));
    // temBoard's instance record, without the user and password.
    let shown = json!({
        "available": true,
        "port": row.get::<i64>("port")?,
        "version_num": instance.version_num,
        "version": row.get::<String>("version")?,
        "data_directory": row.get::<Option<String>>("data_directory")?.unwrap_or_default(),
        "max_connections": row.get::<i64>("max_connections")?,
        "start_time": row.get::<String>("start_time")?,
        "standby": instance.standby,
        "tablespaces": tablespaces,
        "dbnames": monitored,
    });
    Ok((instance, shown))
}

/// Runs the probes `names` (those of [`NAMES`] asked for), keyed by name.
pub fn run(
    names: &[&str],
    instance: &Instance,
    counters: &HostCounters,
    run: &mut Run<'_>,
) -> Result<Map<String, Value>, Error> {
    let wanted = |name: &str| names.contains(&name);
    let pg17 = instance.version_num >= 170_000;
    let locks = locks_sql();
    // The instance-level SQL probes, in one round trip.
    let batch: Vec<(&str, &str)> = [
        ("sessions", SESSIONS_SQL),
        ("xacts", XACTS_SQL),
        ("locks", locks.as_str()),
        ("blocks", BLOCKS_SQL),
        (
            "bgwriter",
            if pg17 { BGWRITER_17_SQL } else { BGWRITER_SQL },
        ),
        ("db_size", DB_SIZE_SQL),
        ("tblspc_size", TBLSPC_SIZE_SQL),
        ("temp_files_size_delta", TEMP_FILES_SQL),
        ("wal_files", WAL_FILES_SQL),
        ("replication_lag", REPLICATION_LAG_SQL),
        ("replication_connection", REPLICATION_CONNECTION_SQL),
    ]
    .into_iter()
    .filter(|(name, _)| wanted(name))
    // A standby has no WAL of its own to count; a primary no receiver.
    .filter(|(name, _)| match *name {
        "wal_files" => !instance.standby,
        "replication_lag" | "replication_connection" => instance.standby,
        _ => true,
    })
    .collect();
    let statements: Vec<(&str, &[pg::Value])> =
        batch.iter().map(|(_, sql)| (*sql, &[][..])).collect();
    let results = if statements.is_empty() {
        Vec::new()
    } else {
        pg::query_batch(None, &statements)?
    };
    let mut out = Map::new();
    for name in ["wal_files", "replication_lag", "replication_connection"] {
        if wanted(name) {
            out.insert(name.into(), json!([]));
        }
    }
    for ((name, _), result) in batch.iter().zip(results) {
        let rows = result?;
        let value = match *name {
            "xacts" => run.deltas_by_dbname(name, &rows, &["n_commit", "n_rollback"]),
            "blocks" => run.deltas_by_dbname(name, &rows, &["blks_read", "blks_hit"]),
            "temp_files_size_delta" => run.deltas_by_dbname(name, &rows, &["size"]),
            "bgwriter" => objects(&rows)
                .into_iter()
                .map(|mut row| {
                    run.delta(name, "instance", &mut row, BGWRITER_COUNTERS);
                    Value::Object(row)
                })
                .collect(),
            "wal_files" => objects(&rows)
                .into_iter()
                .map(|mut row| {
                    if let Some(position) = row.remove("position") {
                        row.insert("written_size".into(), position);
                        run.delta(name, "instance", &mut row, &["written_size"]);
                    }
                    Value::Object(row)
                })
                .collect(),
            _ => objects(&rows).into_iter().map(Value::Object).collect(),
        };
        out.insert((*name).to_string(), Value::Array(value));
    }
    for (name, sql) in [
        ("heap_bloat", HEAP_BLOAT_SQL),
        ("btree_bloat", BTREE_BLOAT_SQL),
    ] {
        if wanted(name) {
            out.insert(name.into(), Value::Array(bloat(sql, instance, run)));
        }
    }
    let host: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| HOST_PROBES.contains(n))
        .collect();
    out.extend(run_host(&host, counters, run));
    Ok(out)
}

/// The host probes among `names`.
pub fn run_host(names: &[&str], counters: &HostCounters, run: &mut Run<'_>) -> Map<String, Value> {
    names
        .iter()
        .filter(|n| HOST_PROBES.contains(n))
        .map(|name| {
            (
                (*name).to_string(),
                Value::Array(host_probe(name, counters, run)),
            )
        })
        .collect()
}

/// The locks probe's statement: each mode granted and waiting, and SIRead.
fn locks_sql() -> String {
    let mut columns: Vec<String> = LOCK_MODES
        .iter()
        .flat_map(|(mode, name)| {
            [
                format!("COALESCE(sum((mode = '{mode}' AND granted)::int), 0)::int8 AS {name}"),
                format!("COALESCE(sum((mode = '{mode}' AND NOT granted)::int), 0)::int8 AS waiting_{name}"),
            ]
        })
        .collect();
    columns.push("COALESCE(sum((mode = 'SIReadLock' AND granted)::int), 0)::int8 AS siread".into());
    format!(
        "SELECT d.datname::text AS dbname, {} FROM pg_database d LEFT JOIN pg_locks l ON l.database = d.oid \
         WHERE d.datallowconn GROUP BY d.datname ORDER BY d.datname",
        columns.join(", ")
    )
}

/// A bloat probe on each monitored database, bounded: databases larger than
/// `bloat_max_bytes` are skipped, and the statement has a timeout.
fn bloat(sql: &str, instance: &Instance, run: &Run<'_>) -> Vec<Value> {
    let timeout = format!("SET LOCAL statement_timeout = {}", run.bloat_timeout_ms);
    instance
        .databases
        .iter()
        .filter(|(_, size)| *size <= run.bloat_max_bytes)
        .filter_map(|(db, _)| {
            let results = pg::query_batch(
                Some(db),
                &[
                    ("BEGIN", &[]),
                    (timeout.as_str(), &[]),
                    (sql, &[]),
                    ("COMMIT", &[]),
                ],
            )
            .ok()?;
            let rows = results.into_iter().nth(2)?.ok()?;
            objects(&rows).into_iter().next().map(Value::Object)
        })
        .collect()
}

pub const HOST_PROBES: &[&str] = &["filesystems_size", "cpu", "process", "memory", "loadavg"];

fn host_probe(name: &str, c: &HostCounters, run: &mut Run<'_>) -> Vec<Value> {
    match name {
        "filesystems_size" => c
            .filesystems
            .iter()
            .map(|f| {
                json!({
                    "mount_point": f.mount_point,
                    "device": f.device,
                    "total": f.total_bytes,
                    "used": f.used_bytes,
                })
            })
            .collect(),
        "cpu" => {
            let mut row = Map::new();
            row.insert("cpu".into(), json!("global"));
            for (k, v) in [
                ("time_user", c.cpu_user_ms),
                ("time_system", c.cpu_system_ms),
                ("time_idle", c.cpu_idle_ms),
                ("time_iowait", c.cpu_iowait_ms),
                ("time_steal", c.cpu_steal_ms),
            ] {
                row.insert(k.into(), json!(v));
            }
            run.delta(
                name,
                "global",
                &mut row,
                &[
                    "time_user",
                    "time_system",
                    "time_idle",
                    "time_iowait",
                    "time_steal",
                ],
            );
            vec![Value::Object(row)]
        }
        "process" => {
            let mut row = Map::new();
            row.insert("context_switches".into(), json!(c.context_switches));
            row.insert("forks".into(), json!(c.forks));
            row.insert("procs_running".into(), json!(c.procs_running));
            row.insert("procs_blocked".into(), json!(c.procs_blocked));
            row.insert("procs_total".into(), json!(c.procs_total));
            run.delta(name, "key", &mut row, &["context_switches", "forks"]);
            vec![Value::Object(row)]
        }
        "memory" => vec![json!({
            "mem_total": c.mem_total,
            "mem_used": c.mem_total.saturating_sub(c.mem_free),
            "mem_free": c.mem_free,
            "mem_buffers": c.mem_buffers,
            "mem_cached": c.mem_cached,
            "swap_total": c.swap_total,
            "swap_used": c.swap_total.saturating_sub(c.swap_free),
        })],
        "loadavg" => vec![json!({"load1": c.load1, "load5": c.load5, "load15": c.load15})],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locks_statement_counts_every_mode_both_ways() {
        let sql = locks_sql();
        assert!(
            sql.contains("AS access_exclusive,") && sql.contains("AS waiting_access_exclusive")
        );
        assert!(sql.contains("AS siread"));
    }
}
