//! `GET /metrics`: the newest collection's figures in Prometheus' text
//! format, named in postgres_exporter's style (`dbagent_pg_*`,
//! `dbagent_host_*`), then the agent's own (`metrics` capability). Reading
//! it never runs a probe: between two collections it serves the same
//! figures.

use dbagent_sdk::metrics as agent;
use serde_json::Value;
use std::fmt::Write as _;

/// One family: its name, type, help, the probe it reads and the field, and
/// the label columns of that probe's rows.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    probe: &'static str,
    /// The field holding the value; counters read their raw value under
    /// `current` when the row carries deltas.
    field: &'static str,
    labels: &'static [&'static str],
}

const fn family(
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    probe: &'static str,
    field: &'static str,
    labels: &'static [&'static str],
) -> Family {
    Family {
        name,
        kind,
        help,
        probe,
        field,
        labels,
    }
}

const DB: &[&str] = &["dbname"];

const FAMILIES: &[Family] = &[
    family(
        "dbagent_pg_sessions",
        "gauge",
        "Sessions by database and state.",
        "sessions",
        "*",
        DB,
    ),
    family(
        "dbagent_pg_xact_commit_total",
        "counter",
        "Transactions committed.",
        "xacts",
        "n_commit",
        DB,
    ),
    family(
        "dbagent_pg_xact_rollback_total",
        "counter",
        "Transactions rolled back.",
        "xacts",
        "n_rollback",
        DB,
    ),
    family(
        "dbagent_pg_locks",
        "gauge",
        "Locks by database and mode (waiting_* not granted).",
        "locks",
        "*",
        DB,
    ),
    family(
        "dbagent_pg_blocks_read_total",
        "counter",
        "Blocks read from disk.",
        "blocks",
        "blks_read",
        DB,
    ),
    family(
        "dbagent_pg_blocks_hit_total",
        "counter",
        "Blocks found in shared buffers.",
        "blocks",
        "blks_hit",
        DB,
    ),
    family(
        "dbagent_pg_blocks_hit_ratio",
        "gauge",
        "Share of blocks found in shared buffers, in %.",
        "blocks",
        "hitmiss_ratio",
        DB,
    ),
    family(
        "dbagent_pg_bgwriter",
        "counter",
        "Background writer and checkpointer counters (pg_stat_bgwriter names).",
        "bgwriter",
        "*",
        &[],
    ),
    family(
        "dbagent_pg_database_size_bytes",
        "gauge",
        "Database size.",
        "db_size",
        "size",
        DB,
    ),
    family(
        "dbagent_pg_tablespace_size_bytes",
        "gauge",
        "Tablespace size.",
        "tblspc_size",
        "size",
        &["spcname"],
    ),
    family(
        "dbagent_pg_temp_bytes_total",
        "counter",
        "Bytes written to temporary files.",
        "temp_files_size_delta",
        "size",
        DB,
    ),
    family(
        "dbagent_pg_wal_files",
        "gauge",
        "WAL segments in pg_wal.",
        "wal_files",
        "total",
        &[],
    ),
    family(
        "dbagent_pg_wal_files_size_bytes",
        "gauge",
        "Size of the WAL segments in pg_wal.",
        "wal_files",
        "total_size",
        &[],
    ),
    family(
        "dbagent_pg_wal_archive_ready",
        "gauge",
        "WAL segments waiting to be archived.",
        "wal_files",
        "archive_ready",
        &[],
    ),
    family(
        "dbagent_pg_wal_written_bytes_total",
        "counter",
        "WAL position in bytes.",
        "wal_files",
        "written_size",
        &[],
    ),
    family(
        "dbagent_pg_replication_lag_bytes",
        "gauge",
        "Replay lag of a standby behind what it received.",
        "replication_lag",
        "lag",
        &[],
    ),
    family(
        "dbagent_pg_replication_connected",
        "gauge",
        "Whether a standby streams from its primary.",
        "replication_connection",
        "connected",
        &["upstream"],
    ),
    family(
        "dbagent_pg_heap_bloat_ratio",
        "gauge",
        "Estimated heap bloat, in %.",
        "heap_bloat",
        "ratio",
        DB,
    ),
    family(
        "dbagent_pg_btree_bloat_ratio",
        "gauge",
        "Estimated btree index bloat, in %.",
        "btree_bloat",
        "ratio",
        DB,
    ),
    family(
        "dbagent_host_filesystem_size_bytes",
        "gauge",
        "File system size.",
        "filesystems_size",
        "total",
        &["mount_point", "device"],
    ),
    family(
        "dbagent_host_filesystem_used_bytes",
        "gauge",
        "File system space used.",
        "filesystems_size",
        "used",
        &["mount_point", "device"],
    ),
    family(
        "dbagent_host_cpu_ms_total",
        "counter",
        "CPU time of all CPUs by mode, in ms.",
        "cpu",
        "*",
        &[],
    ),
    family(
        "dbagent_host_context_switches_total",
        "counter",
        "Context switches.",
        "process",
        "context_switches",
        &[],
    ),
    family(
        "dbagent_host_forks_total",
        "counter",
        "Processes created.",
        "process",
        "forks",
        &[],
    ),
    family(
        "dbagent_host_procs_running",
        "gauge",
        "Processes running.",
        "process",
        "procs_running",
        &[],
    ),
    family(
        "dbagent_host_procs_blocked",
        "gauge",
        "Processes blocked on I/O.",
        "process",
        "procs_blocked",
        &[],
    ),
    family(
        "dbagent_host_procs",
        "gauge",
        "Processes.",
        "process",
        "procs_total",
        &[],
    ),
    family(
        "dbagent_host_memory_bytes",
        "gauge",
        "Memory by kind (mem_total, mem_used, mem_free, mem_buffers, mem_cached, swap_total, swap_used).",
        "memory",
        "*",
        &[],
    ),
    family(
        "dbagent_host_load1",
        "gauge",
        "Load average over 1 minute.",
        "loadavg",
        "load1",
        &[],
    ),
    family(
        "dbagent_host_load5",
        "gauge",
        "Load average over 5 minutes.",
        "loadavg",
        "load5",
        &[],
    ),
    family(
        "dbagent_host_load15",
        "gauge",
        "Load average over 15 minutes.",
        "loadavg",
        "load15",
        &[],
    ),
];

/// Fields of a row that are neither labels nor figures.
const NOT_FIGURES: &[&str] = &[
    "datetime",
    "measure_interval",
    "current",
    "cpu",
    "stats_reset",
    "current_location",
];

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A figure as a number: numbers, and numeric strings (`load1`, sizes).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// A row's raw value of `field`: under `current` when it carries deltas.
fn raw<'a>(row: &'a Value, field: &str) -> Option<&'a Value> {
    row.get("current")
        .and_then(|c| c.get(field))
        .or_else(|| row.get(field))
}

fn labels_of(row: &Value, names: &[&str], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .map(|n| {
            format!(
                "{n}=\"{}\"",
                escape(row.get(*n).and_then(Value::as_str).unwrap_or_default())
            )
        })
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{}\"", escape(v)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

pub fn render(last: Option<&Value>) -> String {
    let mut out = String::new();
    if let Some(collection) = last {
        let data = &collection["data"];
        let up = collection["instances"][0]["available"]
            .as_bool()
            .unwrap_or(false);
        out.push_str("# HELP dbagent_pg_up Whether the last collection reached PostgreSQL.\n# TYPE dbagent_pg_up gauge\n");
        let _ = writeln!(out, "dbagent_pg_up {}", u8::from(up));
        for f in FAMILIES {
            let Some(rows) = data.get(f.probe).and_then(Value::as_array) else {
                continue;
            };
            let mut lines = String::new();
            for row in rows {
                if f.field == "*" {
                    // Every numeric field of the row, by a `kind` label.
                    let fields: Vec<(String, f64)> = row
                        .get("current")
                        .and_then(Value::as_object)
                        .into_iter()
                        .chain(row.as_object())
                        .flat_map(|m| m.iter())
                        .filter(|(k, _)| {
                            !NOT_FIGURES.contains(&k.as_str()) && !f.labels.contains(&k.as_str())
                        })
                        .filter_map(|(k, v)| Some((k.clone(), number(v)?)))
                        .collect();
                    let mut seen = std::collections::BTreeSet::new();
                    for (k, v) in fields {
                        if seen.insert(k.clone()) {
                            let _ = writeln!(
                                lines,
                                "{}{} {v}",
                                f.name,
                                labels_of(row, f.labels, Some(("kind", &k)))
                            );
                        }
                    }
                } else if let Some(v) = raw(row, f.field).and_then(number) {
                    let _ = writeln!(lines, "{}{} {v}", f.name, labels_of(row, f.labels, None));
                }
            }
            if !lines.is_empty() {
                let _ = writeln!(
                    out,
                    "# HELP {} {}\n# TYPE {} {}",
                    f.name, f.help, f.name, f.kind
                );
                out.push_str(&lines);
            }
        }
    }
    out.push_str(&agent::agent_metrics());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn figures_take_their_raw_values_and_labels() {
        let row = json!({"dbname": "a\"b", "n_commit": 5, "current": {"n_commit": 105}});
        assert_eq!(raw(&row, "n_commit"), Some(&json!(105)));
        assert_eq!(labels_of(&row, DB, None), "{dbname=\"a\\\"b\"}");
        assert_eq!(number(&json!("0.52")), Some(0.52));
    }
}
