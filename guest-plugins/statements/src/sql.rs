//! The queries, by server version: PostgreSQL 13 renamed the timing columns
//! (`total_exec_time`, ...) and 17 renamed the block I/O times
//! (`shared_blk_read_time`, ...); both are mapped back to the reference's names.
//!
//! Every column of the view is also served under its own name (`plans`,
//! `total_plan_time`, `wal_bytes`, `toplevel`, ...), whatever the
//! extension's version has: the row as JSON (`view_columns`, without the
//! query text, already served) and the view's column names in order
//! (`SETUP`'s `view_columns`).

/// Whether the extension is usable, in which database, and the server version.
pub const SETUP: &str = "
SELECT current_setting('shared_preload_libraries') AS preload_libraries,
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS installed,
       current_database()::text AS database,
       current_setting('server_version_num')::int8 AS version,
       now()::text AS snapshot,
       ARRAY(SELECT a.attname::text
               FROM pg_attribute a
              WHERE a.attrelid = to_regclass('pg_stat_statements')
                AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum) AS view_columns";

/// Whether a `shared_preload_libraries` value lists pg_stat_statements.
///
/// PostgreSQL accepts more than bare names there: entries may be
/// double-quoted, carry a path (`$libdir/pg_stat_statements`) or the
/// library's suffix (`pg_stat_statements.so`), so each entry is reduced to
/// its base name before comparing.
pub fn lists_pg_stat_statements(setting: &str) -> bool {
    setting.split(',').any(|entry| {
        let entry = entry.trim().trim_matches('"').trim();
        let base = entry.rsplit(['/', '\\']).next().unwrap_or(entry);
        let base = base.strip_suffix(".so").unwrap_or(base);
        base == "pg_stat_statements"
    })
}

pub enum Kind {
    Text,
    Int,
    Float,
}

/// The reference's fields, in its order.
pub const FIELDS: &[(&str, Kind)] = &[
    ("rolname", Kind::Text),
    ("datname", Kind::Text),
    ("userid", Kind::Int),
    ("dbid", Kind::Int),
    ("queryid", Kind::Int),
    ("query", Kind::Text),
    ("calls", Kind::Int),
    ("total_time", Kind::Float),
    ("min_time", Kind::Float),
    ("max_time", Kind::Float),
    ("mean_time", Kind::Float),
    ("stddev_time", Kind::Float),
    ("rows", Kind::Int),
    ("shared_blks_hit", Kind::Int),
    ("shared_blks_read", Kind::Int),
    ("shared_blks_dirtied", Kind::Int),
    ("shared_blks_written", Kind::Int),
    ("local_blks_hit", Kind::Int),
    ("local_blks_read", Kind::Int),
    ("local_blks_dirtied", Kind::Int),
    ("local_blks_written", Kind::Int),
    ("temp_blks_read", Kind::Int),
    ("temp_blks_written", Kind::Int),
    ("blk_read_time", Kind::Float),
    ("blk_write_time", Kind::Float),
];

/// The statement list for a server of `version` (server_version_num),
/// bounded by `$1`, most total time first.
pub fn statements(version: i64) -> String {
    let time = if version >= 130000 {
        "_exec_time"
    } else {
        "_time"
    };
    let (read_time, write_time) = if version >= 170000 {
        ("shared_blk_read_time", "shared_blk_write_time")
    } else {
        ("blk_read_time", "blk_write_time")
    };
    format!(
        "SELECT r.rolname::text AS rolname,
       d.datname::text AS datname,
       s.userid::int8 AS userid,
       s.dbid::int8 AS dbid,
       s.queryid::int8 AS queryid,
       s.query AS query,
       s.calls::int8 AS calls,
       s.total{time}::float8 AS total_time,
       s.min{time}::float8 AS min_time,
       s.max{time}::float8 AS max_time,
       s.mean{time}::float8 AS mean_time,
       s.stddev{time}::float8 AS stddev_time,
       s.rows::int8 AS rows,
       s.shared_blks_hit::int8 AS shared_blks_hit,
       s.shared_blks_read::int8 AS shared_blks_read,
       s.shared_blks_dirtied::int8 AS shared_blks_dirtied,
       s.shared_blks_written::int8 AS shared_blks_written,
       s.local_blks_hit::int8 AS local_blks_hit,
       s.local_blks_read::int8 AS local_blks_read,
       s.local_blks_dirtied::int8 AS local_blks_dirtied,
       s.local_blks_written::int8 AS local_blks_written,
       s.temp_blks_read::int8 AS temp_blks_read,
       s.temp_blks_written::int8 AS temp_blks_written,
       s.{read_time}::float8 AS blk_read_time,
       s.{write_time}::float8 AS blk_write_time,
       to_jsonb(s) - 'query' AS view_columns
  FROM pg_stat_statements s
  LEFT JOIN pg_roles r ON r.oid = s.userid
  LEFT JOIN pg_database d ON d.oid = s.dbid
 ORDER BY s.total{time} DESC
 LIMIT $1"
    )
}
