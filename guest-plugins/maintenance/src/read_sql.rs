//! The queries of the read side, and the fields each answer carries.
//!
//! # Sizes
//!
//! Every size is measured by PostgreSQL (`pg_total_relation_size`,
//! `pg_indexes_size`, `pg_database_size`) and every human form is
//! PostgreSQL's own `pg_size_pretty` of the very number given beside it.
//! For a table, `total_bytes` = `table_bytes` + `index_bytes` +
//! `toast_bytes`: the heap with its free space and visibility maps, all its
//! indexes, and its TOAST table with the TOAST index. A schema's figures
//! are the sums over its tables (ordinary, partitioned, materialized
//! views), a database's the sums over its schemas but `total_bytes`, which
//! is `pg_database_size` (it also counts what belongs to no table).
//!
//! # Locks
//!
//! Measuring a size (`pg_total_relation_size`, `pg_indexes_size`) or
//! deparsing an index (`pg_get_indexdef`) opens the relation, which waits
//! on an ACCESS EXCLUSIVE lock someone holds or awaits. So every query
//! first reads those locks ([`LOCKS`]: `locked`), leaves out the relations
//! concerned (their sizes and definition are NULL, and `unavailable` says
//! who holds which lock), and sets a short `lock_timeout` for the rest of
//! its transaction (`lock_guard`) before it measures anything, should a
//! lock be taken meanwhile. Everything read from the catalog and the
//! statistics views takes no such lock.
//!
//! # Bloat
//!
//! Bloat is *estimated* from the catalog and the planner's statistics,
//! without reading a table or an index and without any extension: the
//! method of the queries of ioguix/pgsql-bloat-estimation (`table/` and
//! `btree/`), which temBoard and check_pgactivity use. The estimate is only
//! as fresh as the last ANALYZE (or VACUUM) of the relation.
//!
//! - A table: the average width of a row is computed from `pg_stats`
//!   (`avg_width` and `null_frac` of each column) plus the tuple header
//!   (23 bytes, the null bitmap when a column holds NULLs), each aligned on
//!   MAXALIGN, plus a 4-byte line pointer. The number of pages needed for
//!   `reltuples` such rows at the table's fillfactor (default 100), on pages
//!   of `block_size` less their 24-byte header, plus one TOAST page for 4
//!   TOAST tuples, is subtracted from the pages the table and its TOAST
//!   table occupy (`relpages`); what is left, in bytes, is the bloat.
//! - A btree index: the same with the index tuple (8-byte header, plus the
//!   null bitmap when a column holds NULLs, and the statistics of the
//!   indexed columns, or of the index's expressions), the 16-byte btree
//!   special space per page, the index's fillfactor (default 90) and its
//!   metapage.
//!
//! An estimate is never negative (rows wider than the statistics say give
//! 0). It is `null` where it cannot be made: an index other than btree, a
//! relation never analyzed nor vacuumed (`reltuples` = -1), or one holding
//! rows but lacking statistics on a column. A relation without storage
//! (partitioned table or index) has 0. In the sums of a table's indexes, of
//! a schema and of a database, an estimate that cannot be made counts as 0.
//! A table holding no pages has 0; one whose rows were all deleted and
//! analyzed since is all bloat. Alignment padding the statistics cannot see
//! is counted as bloat, so a small table shows some even when freshly
//! written (see the pgsql-bloat-estimation README).

/// The JSON type a field has in the answer; every one may also be `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Text,
    Bool,
}

use Kind::{Bool, Float, Int, Text};

/// Which relations the figures cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every schema but `pg_toast` and temporary ones; no parameter.
    Database,
    /// The schema `$1`.
    Schema,
    /// The table `$2` of schema `$1`.
    Table,
}

impl Scope {
    fn filter(self) -> &'static str {
        match self {
            Scope::Database => "n.nspname !~ '^pg_(toast|temp_)'",
            Scope::Schema => "n.nspname = $1",
            Scope::Table => "n.nspname = $1 AND c.relname = $2",
        }
    }
}

/// The figures of each table in `scope`, as common table expressions:
/// `tbl_fig` (one row per table) and `idx_fig` (one row per index of those
/// tables), with their sizes and estimated bloat.
fn figures(scope: Scope) -> String {
    format!(
        r#"WITH settings AS (
  SELECT current_setting('block_size')::float8 AS bs,
         -- MAXALIGN: 8 on 64-bit builds, 4 on 32-bit ones
         CASE WHEN version() ~ 'mingw32|64-bit|x86_64|ppc64|ia64|amd64' THEN 8 ELSE 4 END AS ma
),
{LOCKS}
tbl AS (
  SELECT c.oid, c.relnamespace AS nspid, n.nspname, c.relname, c.relkind,
         c.reltuples::float8 AS reltuples, c.relpages::float8 AS relpages,
         coalesce(toast.relpages, 0)::float8 AS toastpages,
         greatest(coalesce(toast.reltuples, 0), 0)::float8 AS toasttuples,
         c.reltoastrelid,
         coalesce((SELECT o.option_value::int4
                     FROM pg_catalog.pg_options_to_table(c.reloptions) AS o
                    WHERE o.option_name = 'fillfactor'), 100) AS fillfactor,
         -- Measuring its sizes opens the table, its TOAST table and all
         -- their indexes.
         (SELECT string_agg(lk.why, '; ' ORDER BY lk.why)
            FROM locked AS lk
           WHERE lk.oid IN (c.oid, c.reltoastrelid)
              OR lk.oid IN (SELECT i.indexrelid FROM pg_catalog.pg_index AS i
                             WHERE i.indrelid IN (c.oid, c.reltoastrelid))) AS unavailable
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_class AS toast ON toast.oid = c.reltoastrelid
   WHERE c.relkind IN ('r', 'p', 'm') AND {filter}
),
-- Per table: its columns, how many have statistics, the average width of
-- their data and whether some hold NULLs (tables WITH OIDS before
-- PostgreSQL 12 have a 4-byte oid in the header).
tbl_cols AS (
  SELECT t.oid,
         count(*) FILTER (WHERE a.attnum > 0) AS natts,
         count(s.attname) AS nstats,
         coalesce(max(s.null_frac), 0)::float8 AS max_null_frac,
         coalesce(sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0)), 0)::float8 AS data_width,
         bool_or(a.attnum < 0) AS has_oids
    FROM tbl AS t
    JOIN pg_catalog.pg_attribute AS a
      ON a.attrelid = t.oid AND NOT a.attisdropped
     AND (a.attnum > 0 OR (a.attnum = -2 AND a.attname = 'oid'))
    LEFT JOIN pg_catalog.pg_stats AS s
      ON a.attnum > 0 AND NOT s.inherited
     AND s.schemaname = t.nspname AND s.tablename = t.relname AND s.attname = a.attname
   WHERE t.relkind <> 'p'
   GROUP BY t.oid
),
tbl_bloat AS (
  SELECT t.oid,
         CASE
           WHEN t.relkind = 'p' OR t.relpages + t.toastpages = 0 THEN 0
           WHEN t.reltuples < 0 THEN NULL
           WHEN t.reltuples > 0 AND coalesce(k.nstats, 0) < coalesce(k.natts, 0) THEN NULL
           WHEN t.relpages + t.toastpages > e.pages THEN (t.relpages + t.toastpages - e.pages) * st.bs
           ELSE 0
         END AS bloat_bytes
    FROM tbl AS t
   CROSS JOIN settings AS st
    LEFT JOIN tbl_cols AS k ON k.oid = t.oid
   CROSS JOIN LATERAL (
     SELECT 23 + CASE WHEN coalesce(k.max_null_frac, 0) > 0 THEN (7 + coalesce(k.natts, 0)) / 8 ELSE 0 END
               + CASE WHEN coalesce(k.has_oids, false) THEN 4 ELSE 0 END AS hdr,
            coalesce(k.data_width, 0) AS data
   ) AS h
   CROSS JOIN LATERAL (
     -- line pointer + header and data, each aligned on MAXALIGN
     SELECT 4 + h.hdr + h.data + 2 * st.ma
            - CASE WHEN h.hdr % st.ma = 0 THEN st.ma ELSE h.hdr % st.ma END
            - CASE WHEN ceil(h.data)::int8 % st.ma = 0 THEN st.ma ELSE ceil(h.data)::int8 % st.ma END
            AS size
   ) AS tpl
   CROSS JOIN LATERAL (
     SELECT ceil(t.reltuples / ((st.bs - 24) * t.fillfactor / (tpl.size * 100)))
            + ceil(t.toasttuples / 4) AS pages
   ) AS e
),
idx AS (
  SELECT ci.oid, t.oid AS tbloid, t.nspname, t.relname AS tblname, ci.relname AS idxname,
         -- Its size opens the index; its definition (pg_get_indexdef), the table.
         (SELECT string_agg(lk.why, '; ' ORDER BY lk.why)
            FROM locked AS lk WHERE lk.oid IN (ci.oid, t.oid)) AS unavailable,
         ci.relkind, ci.reltuples::float8 AS reltuples, ci.relpages::float8 AS relpages,
         ci.reltablespace, i.indnatts, i.indkey, i.indisunique, am.amname,
         coalesce((SELECT o.option_value::int4
                     FROM pg_catalog.pg_options_to_table(ci.reloptions) AS o
                    WHERE o.option_name = 'fillfactor'), 90) AS fillfactor
    FROM tbl AS t
    JOIN pg_catalog.pg_index AS i ON i.indrelid = t.oid
    JOIN pg_catalog.pg_class AS ci ON ci.oid = i.indexrelid
    LEFT JOIN pg_catalog.pg_am AS am ON am.oid = ci.relam
),
-- Per btree index: its columns (a table's column, or an expression whose
-- statistics are the index's own), how many have statistics, the average
-- width of their data and whether some hold NULLs.
idx_cols AS (
  SELECT x.oid,
         count(*) AS natts,
         count(s.attname) AS nstats,
         coalesce(max(s.null_frac), 0)::float8 AS max_null_frac,
         coalesce(sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 1024)), 0)::float8 AS data_width
    FROM idx AS x
   CROSS JOIN LATERAL pg_catalog.generate_series(1, x.indnatts) AS k(pos)
    LEFT JOIN pg_catalog.pg_attribute AS ta
      ON x.indkey[k.pos - 1] <> 0 AND ta.attrelid = x.tbloid AND ta.attnum = x.indkey[k.pos - 1]
    LEFT JOIN pg_catalog.pg_attribute AS ia
      ON x.indkey[k.pos - 1] = 0 AND ia.attrelid = x.oid AND ia.attnum = k.pos
    LEFT JOIN pg_catalog.pg_stats AS s
      ON NOT s.inherited AND s.schemaname = x.nspname
     AND s.tablename = CASE WHEN ta.attnum IS NULL THEN x.idxname ELSE x.tblname END
     AND s.attname = coalesce(ta.attname, ia.attname)
   WHERE x.relkind = 'i' AND x.amname = 'btree'
   GROUP BY x.oid
),
idx_bloat AS (
  SELECT x.oid,
         CASE
           WHEN x.relkind = 'I' THEN 0
           WHEN x.amname IS DISTINCT FROM 'btree' THEN NULL
           WHEN x.reltuples < 0 THEN NULL
           WHEN x.reltuples > 0 AND coalesce(k.nstats, 0) < coalesce(k.natts, 0) THEN NULL
           WHEN e.pages IS NULL THEN NULL
           WHEN x.relpages > e.pages THEN (x.relpages - e.pages) * st.bs
           ELSE 0
         END AS bloat_bytes
    FROM idx AS x
   CROSS JOIN settings AS st
    LEFT JOIN idx_cols AS k ON k.oid = x.oid
   CROSS JOIN LATERAL (
     -- IndexTupleData, with the null bitmap when a column holds NULLs
     SELECT CASE WHEN coalesce(k.max_null_frac, 0) = 0 THEN 2 ELSE 2 + (32 + 8 - 1) / 8 END AS hdr,
            coalesce(k.data_width, 0) AS data
   ) AS h
   CROSS JOIN LATERAL (
     -- header and data, each aligned on MAXALIGN
     SELECT h.hdr + st.ma - CASE WHEN h.hdr % st.ma = 0 THEN st.ma ELSE h.hdr % st.ma END
            + h.data + st.ma
            - CASE WHEN h.data = 0 THEN 0
                   WHEN h.data::int8 % st.ma = 0 THEN st.ma
                   ELSE h.data::int8 % st.ma END
            AS width
   ) AS w
   CROSS JOIN LATERAL (
     -- the metapage, and pages of (block - header - btree special space)
     -- filled to the fillfactor with line pointer + tuple
     SELECT 1 + ceil(x.reltuples
                     / nullif(floor((st.bs - 24 - 16) * x.fillfactor / (100 * (4 + w.width))), 0))
            AS pages
   ) AS e
),
idx_fig AS (
  SELECT x.oid, x.tbloid, x.nspname, x.tblname, x.idxname, x.reltablespace, x.indnatts,
         x.indisunique, x.amname, x.unavailable,
         CASE WHEN x.unavailable IS NULL AND (SELECT ok FROM lock_guard)
              THEN coalesce(pg_catalog.pg_total_relation_size(x.oid), 0) END AS total_bytes,
         b.bloat_bytes::int8 AS bloat_bytes
    FROM idx AS x
    LEFT JOIN idx_bloat AS b ON b.oid = x.oid
),
idx_per_tbl AS (
  SELECT f.tbloid, count(*) AS n_indexes, coalesce(sum(f.bloat_bytes), 0) AS index_bloat_bytes
    FROM idx_fig AS f
   GROUP BY f.tbloid
),
tbl_fig AS (
  SELECT s.*, s.total_bytes - s.index_bytes - s.toast_bytes AS table_bytes
    FROM (
      SELECT t.oid, t.nspid, t.nspname, t.relname, t.reltuples, t.fillfactor, t.unavailable,
             CASE WHEN t.unavailable IS NULL AND (SELECT ok FROM lock_guard)
                  THEN coalesce(pg_catalog.pg_total_relation_size(t.oid), 0) END AS total_bytes,
             CASE WHEN t.unavailable IS NULL AND (SELECT ok FROM lock_guard)
                  THEN coalesce(pg_catalog.pg_indexes_size(t.oid), 0) END AS index_bytes,
             CASE WHEN t.unavailable IS NULL AND (SELECT ok FROM lock_guard)
                  THEN coalesce(pg_catalog.pg_total_relation_size(nullif(t.reltoastrelid, 0)), 0)
             END AS toast_bytes,
             b.bloat_bytes::int8 AS bloat_bytes,
             coalesce(ip.n_indexes, 0)::int8 AS n_indexes,
             coalesce(ip.index_bloat_bytes, 0)::int8 AS index_bloat_bytes
        FROM tbl AS t
        LEFT JOIN tbl_bloat AS b ON b.oid = t.oid
        LEFT JOIN idx_per_tbl AS ip ON ip.tbloid = t.oid
    ) AS s
)
"#,
        filter = scope.filter(),
        LOCKS = LOCKS,
    )
}

/// The common table expressions that keep the size functions from waiting
/// on a lock (see "Locks" in the module's documentation): `locked`, the
/// relations of this database someone holds or awaits an ACCESS EXCLUSIVE
/// lock on, with why, and `lock_guard`, which sets a short `lock_timeout`
/// for the rest of the statement (its transaction) before the first size
/// is measured.
const LOCKS: &str = "locked AS MATERIALIZED (
  SELECT l.relation AS oid,
         string_agg(pg_catalog.format('pid %s %s an ACCESS EXCLUSIVE lock on %s',
                                      l.pid,
                                      CASE WHEN l.granted THEN 'holds' ELSE 'waits for' END,
                                      l.relation::regclass),
                    ', ' ORDER BY l.pid) AS why
    FROM pg_catalog.pg_locks AS l
   WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
     AND l.database = (SELECT d.oid FROM pg_catalog.pg_database AS d
                        WHERE d.datname = pg_catalog.current_database())
   GROUP BY l.relation
),
lock_guard AS MATERIALIZED (
  SELECT pg_catalog.set_config('lock_timeout', '500ms', true) IS NOT NULL AS ok
),";

/// `GET /maintenance`, in the default database: every database but
/// templates, its size, whether it accepts connections, and the instance's
/// total (all databases but templates, as the reference).
pub const DATABASES: &str = "
WITH d AS (
  SELECT datname::text AS datname, datallowconn,
         pg_catalog.pg_database_size(oid) AS bytes
    FROM pg_catalog.pg_database
   WHERE NOT datistemplate
)
SELECT d.datname, d.datallowconn,
       d.bytes AS total_bytes, pg_catalog.pg_size_pretty(d.bytes) AS total_size,
       t.bytes AS instance_bytes, pg_catalog.pg_size_pretty(t.bytes) AS instance_size
  FROM d
 CROSS JOIN (SELECT coalesce(sum(bytes), 0)::int8 AS bytes FROM d) AS t
 ORDER BY d.datname";

/// The instance's total when no database is listed.
pub const NO_DATABASE: &str = "
SELECT 0::int8 AS instance_bytes, pg_catalog.pg_size_pretty(0::int8) AS instance_size";

/// A database's schemas (one row each) and their sums (the row where
/// `is_total`), with the database's size on every row. No parameter.
pub fn schemas() -> String {
    format!(
        "{}
SELECT g.*,
       pg_catalog.pg_size_pretty(g.total_bytes) AS total_size,
       pg_catalog.pg_size_pretty(g.tables_bytes) AS tables_size,
       pg_catalog.pg_size_pretty(g.indexes_bytes) AS indexes_size,
       pg_catalog.pg_size_pretty(g.toast_bytes) AS toast_size,
       pg_catalog.pg_size_pretty(g.tables_bloat_bytes) AS tables_bloat_size,
       pg_catalog.pg_size_pretty(g.indexes_bloat_bytes) AS indexes_bloat_size,
       db.bytes AS database_bytes,
       pg_catalog.pg_size_pretty(db.bytes) AS database_size
  FROM (
    SELECT n.nspname::text AS name,
           GROUPING(n.nspname) = 1 AS is_total,
           count(f.oid)::int8 AS n_tables,
           coalesce(sum(f.n_indexes), 0)::int8 AS n_indexes,
           coalesce(sum(f.total_bytes), 0)::int8 AS total_bytes,
           coalesce(sum(f.table_bytes), 0)::int8 AS tables_bytes,
           coalesce(sum(f.index_bytes), 0)::int8 AS indexes_bytes,
           coalesce(sum(f.toast_bytes), 0)::int8 AS toast_bytes,
           coalesce(sum(f.bloat_bytes), 0)::int8 AS tables_bloat_bytes,
           coalesce(sum(f.index_bloat_bytes), 0)::int8 AS indexes_bloat_bytes,
           {UNAVAILABLE_SUM} AS unavailable
      FROM pg_catalog.pg_namespace AS n
      LEFT JOIN tbl_fig AS f ON f.nspid = n.oid
     WHERE n.nspname !~ '^pg_(toast|temp_)'
     GROUP BY GROUPING SETS ((n.nspname), ())
  ) AS g
 CROSS JOIN (SELECT pg_catalog.pg_database_size(pg_catalog.current_database()) AS bytes) AS db
 ORDER BY g.is_total, g.name",
        figures(Scope::Database),
        UNAVAILABLE_SUM = UNAVAILABLE_SUM,
    )
}

/// Over the rows of `tbl_fig AS f`: which tables' sizes the sums leave out
/// and why, or NULL when none.
const UNAVAILABLE_SUM: &str = "CASE WHEN count(f.unavailable) > 0
           THEN 'sizes of ' || count(f.unavailable) || ' table(s) not counted: '
                || string_agg(pg_catalog.format('%I.%I (%s)', f.nspname, f.relname, f.unavailable),
                              '; ' ORDER BY f.nspname, f.relname)
                   FILTER (WHERE f.unavailable IS NOT NULL)
           END";

/// A schema's entry in `GET /maintenance/<db>`.
pub const SCHEMA_FIELDS: &[(&str, Kind)] = &[
    ("indexes_bloat_bytes", Int),
    ("indexes_bloat_size", Text),
    ("indexes_bytes", Int),
    ("indexes_size", Text),
    ("n_indexes", Int),
    ("n_tables", Int),
    ("name", Text),
    ("tables_bloat_bytes", Int),
    ("tables_bloat_size", Text),
    ("tables_bytes", Int),
    ("tables_size", Text),
    ("toast_bytes", Int),
    ("toast_size", Text),
    ("total_bytes", Int),
    ("total_size", Text),
];

/// A database's entry in `GET /maintenance`: its sums, from the total row
/// of [`schemas`] (its `total_bytes` and `total_size` come from
/// [`DATABASES`]).
pub const DATABASE_FIELDS: &[(&str, Kind)] = &[
    ("indexes_bloat_bytes", Int),
    ("indexes_bloat_size", Text),
    ("indexes_bytes", Int),
    ("indexes_size", Text),
    ("n_indexes", Int),
    ("n_tables", Int),
    ("tables_bloat_bytes", Int),
    ("tables_bloat_size", Text),
    ("tables_bytes", Int),
    ("tables_size", Text),
    ("toast_bytes", Int),
    ("toast_size", Text),
];

/// The size of schema `$1`: the sum over its tables, but those whose sizes
/// cannot be measured without waiting on a lock (named in `unavailable`).
pub fn schema_size() -> String {
    format!(
        "{}
SELECT s.bytes AS total_bytes, pg_catalog.pg_size_pretty(s.bytes) AS size, s.unavailable
  FROM (
    SELECT coalesce(sum(f.total_bytes), 0)::int8 AS bytes,
           {UNAVAILABLE_SUM} AS unavailable
      FROM tbl_fig AS f
  ) AS s",
        figures(Scope::Schema),
        UNAVAILABLE_SUM = UNAVAILABLE_SUM,
    )
}

/// The tables of schema `$1`, by name.
pub fn tables() -> String {
    format!(
        "{}
SELECT f.relname::text AS name,
       f.total_bytes, pg_catalog.pg_size_pretty(f.total_bytes) AS total_size,
       f.table_bytes, pg_catalog.pg_size_pretty(f.table_bytes) AS table_size,
       f.index_bytes, pg_catalog.pg_size_pretty(f.index_bytes) AS index_size,
       f.toast_bytes, pg_catalog.pg_size_pretty(f.toast_bytes) AS toast_size,
       f.n_indexes,
       f.bloat_bytes, pg_catalog.pg_size_pretty(f.bloat_bytes) AS bloat_size,
       f.index_bloat_bytes, pg_catalog.pg_size_pretty(f.index_bloat_bytes) AS index_bloat_size,
       f.reltuples AS row_estimate,
       f.unavailable
  FROM tbl_fig AS f
 ORDER BY f.relname",
        figures(Scope::Schema)
    )
}

/// A table's entry in `GET /maintenance/<db>/schema/<schema>`.
pub const TABLE_FIELDS: &[(&str, Kind)] = &[
    ("bloat_bytes", Int),
    ("bloat_size", Text),
    ("index_bloat_bytes", Int),
    ("index_bloat_size", Text),
    ("index_bytes", Int),
    ("index_size", Text),
    ("n_indexes", Int),
    ("name", Text),
    ("row_estimate", Float),
    ("table_bytes", Int),
    ("table_size", Text),
    ("toast_bytes", Int),
    ("toast_size", Text),
    ("total_bytes", Int),
    ("total_size", Text),
];

/// The indexes of schema `$1` ([`Scope::Schema`]) or of its table `$2`
/// ([`Scope::Table`]), by table and name.
pub fn indexes(scope: Scope) -> String {
    format!(
        "{}
SELECT f.tblname::text AS tablename,
       f.idxname::text AS name,
       f.idxname::text AS indexrelname,
       ts.spcname::text AS tablespace,
       f.indnatts::int8 AS number_of_columns,
       st.idx_scan AS scans,
       st.idx_tup_read AS idx_tup_read,
       st.idx_tup_fetch AS idx_tup_fetch,
       f.indisunique AS indisunique,
       CASE WHEN f.unavailable IS NULL AND (SELECT ok FROM lock_guard)
            THEN pg_catalog.pg_get_indexdef(f.oid) END AS def,
       f.total_bytes AS total_bytes,
       pg_catalog.pg_size_pretty(f.total_bytes) AS total_size,
       f.amname::text AS type,
       f.bloat_bytes AS bloat_bytes,
       pg_catalog.pg_size_pretty(f.bloat_bytes) AS bloat_size,
       f.unavailable
  FROM idx_fig AS f
  LEFT JOIN pg_catalog.pg_stat_all_indexes AS st ON st.indexrelid = f.oid
  LEFT JOIN pg_catalog.pg_tablespace AS ts ON ts.oid = f.reltablespace
 ORDER BY f.tblname, f.idxname",
        figures(scope)
    )
}

/// An index's entry, in a schema's and in a table's answer.
pub const INDEX_FIELDS: &[(&str, Kind)] = &[
    ("bloat_bytes", Int),
    ("bloat_size", Text),
    ("def", Text),
    ("idx_tup_fetch", Int),
    ("idx_tup_read", Int),
    ("indexrelname", Text),
    ("indisunique", Bool),
    ("name", Text),
    ("number_of_columns", Int),
    ("scans", Int),
    ("tablename", Text),
    ("tablespace", Text),
    ("total_bytes", Int),
    ("total_size", Text),
    ("type", Text),
];

/// Table `$2` of schema `$1`: its figures and its activity statistics
/// (timestamps in PostgreSQL's text form, as the reference).
pub fn table() -> String {
    format!(
        "{}
SELECT f.relname::text AS name,
       f.relname::text AS relname,
       f.nspname::text AS schemaname,
       f.oid::text AS relid,
       f.total_bytes, pg_catalog.pg_size_pretty(f.total_bytes) AS total_size,
       f.table_bytes, pg_catalog.pg_size_pretty(f.table_bytes) AS table_size,
       f.index_bytes, pg_catalog.pg_size_pretty(f.index_bytes) AS index_size,
       f.toast_bytes, pg_catalog.pg_size_pretty(f.toast_bytes) AS toast_size,
       f.bloat_bytes, pg_catalog.pg_size_pretty(f.bloat_bytes) AS bloat_size,
       f.index_bloat_bytes, pg_catalog.pg_size_pretty(f.index_bloat_bytes) AS index_bloat_size,
       f.reltuples AS row_estimate,
       f.fillfactor::int8 AS fillfactor,
       st.seq_scan AS seq_scan,
       st.seq_tup_read AS seq_tup_read,
       st.idx_scan AS idx_scan,
       st.idx_tup_fetch AS idx_tup_fetch,
       st.n_tup_ins AS n_tup_ins,
       st.n_tup_upd AS n_tup_upd,
       st.n_tup_del AS n_tup_del,
       st.n_tup_hot_upd AS n_tup_hot_upd,
       st.n_live_tup AS n_live_tup,
       st.n_dead_tup AS n_dead_tup,
       st.n_mod_since_analyze AS n_mod_since_analyze,
       st.last_vacuum::text AS last_vacuum,
       st.last_autovacuum::text AS last_autovacuum,
       st.last_analyze::text AS last_analyze,
       st.last_autoanalyze::text AS last_autoanalyze,
       st.vacuum_count AS vacuum_count,
       st.autovacuum_count AS autovacuum_count,
       st.analyze_count AS analyze_count,
       st.autoanalyze_count AS autoanalyze_count,
       f.unavailable
  FROM tbl_fig AS f
  LEFT JOIN pg_catalog.pg_stat_all_tables AS st ON st.relid = f.oid",
        figures(Scope::Table)
    )
}

/// `GET /maintenance/<db>/schema/<schema>/table/<table>`, but `indexes`.
pub const TABLE_DETAIL_FIELDS: &[(&str, Kind)] = &[
    ("analyze_count", Int),
    ("autoanalyze_count", Int),
    ("autovacuum_count", Int),
    ("bloat_bytes", Int),
    ("bloat_size", Text),
    ("fillfactor", Int),
    ("idx_scan", Int),
    ("idx_tup_fetch", Int),
    ("index_bloat_bytes", Int),
    ("index_bloat_size", Text),
    ("index_bytes", Int),
    ("index_size", Text),
    ("last_analyze", Text),
    ("last_autoanalyze", Text),
    ("last_autovacuum", Text),
    ("last_vacuum", Text),
    ("n_dead_tup", Int),
    ("n_live_tup", Int),
    ("n_mod_since_analyze", Int),
    ("n_tup_del", Int),
    ("n_tup_hot_upd", Int),
    ("n_tup_ins", Int),
    ("n_tup_upd", Int),
    ("name", Text),
    ("relid", Text),
    ("relname", Text),
    ("row_estimate", Float),
    ("schemaname", Text),
    ("seq_scan", Int),
    ("seq_tup_read", Int),
    ("table_bytes", Int),
    ("table_size", Text),
    ("toast_bytes", Int),
    ("toast_size", Text),
    ("total_bytes", Int),
    ("total_size", Text),
    ("vacuum_count", Int),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `sql` names an output column `name` (`AS name`, or a bare
    /// `f.name` / `st.name` select item).
    fn selects(sql: &str, name: &str) -> bool {
        sql.contains(&format!("AS {name}"))
            || sql.contains(&format!("AS {name},"))
            || sql.contains(&format!(".{name},"))
            || sql.contains(&format!(".{name}\n"))
    }

    #[test]
    fn every_field_is_selected() {
        let cases: [(String, &[(&str, Kind)]); 5] = [
            (schemas(), SCHEMA_FIELDS),
            (schemas(), DATABASE_FIELDS),
            (tables(), TABLE_FIELDS),
            (indexes(Scope::Schema), INDEX_FIELDS),
            (table(), TABLE_DETAIL_FIELDS),
        ];
        for (sql, fields) in cases {
            for (name, _) in fields {
                assert!(selects(&sql, name), "{name} in\n{sql}");
            }
        }
        for name in ["datname", "datallowconn", "total_bytes", "instance_size"] {
            assert!(selects(DATABASES, name), "{name}");
        }
        assert!(selects(&schemas(), "database_size"));
        assert!(selects(&schemas(), "is_total"));
    }

    #[test]
    fn fields_are_in_the_references_order() {
        // The reference's examples list every object's keys sorted.
        for fields in [
            SCHEMA_FIELDS,
            DATABASE_FIELDS,
            TABLE_FIELDS,
            INDEX_FIELDS,
            TABLE_DETAIL_FIELDS,
        ] {
            let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(names, sorted);
        }
    }

    #[test]
    fn scopes_take_names_only_as_parameters() {
        assert!(!figures(Scope::Database).contains('$'));
        let schema = figures(Scope::Schema);
        assert!(schema.contains("n.nspname = $1") && !schema.contains("$2"));
        assert!(figures(Scope::Table).contains("c.relname = $2"));
        assert!(schema_size().contains("n.nspname = $1"));
    }

    #[test]
    fn every_answer_says_what_is_unavailable() {
        for sql in [
            schemas(),
            tables(),
            indexes(Scope::Table),
            table(),
            schema_size(),
        ] {
            assert!(selects(&sql, "unavailable"), "{sql}");
            // Sizes are measured only where no lock stands in the way.
            let measured = sql.matches("pg_catalog.pg_total_relation_size(").count()
                + sql.matches("pg_catalog.pg_indexes_size(").count()
                + sql.matches("pg_catalog.pg_get_indexdef(").count();
            assert_eq!(
                measured,
                sql.matches("(SELECT ok FROM lock_guard)").count(),
                "{sql}"
            );
        }
    }

    /// `cargo test -p maintenance --lib -- --ignored --nocapture print_sql`
    #[test]
    #[ignore]
    fn print_sql() {
        println!("{};\n", schemas());
        println!("{};\n", tables());
        println!("{};\n", indexes(Scope::Table));
        println!("{};\n", table());
        println!("{};\n", schema_size());
    }
}
