//! The queries of the read side. Each route's answer is one JSON document
//! built by PostgreSQL (`json_build_object`, `json_agg`) and passed through
//! as the response body: a listing of 10,000 tables is one value crossing
//! into the plugin, not 10,000 rows of typed values copied into JSON there.
//!
//! # Sizes
//!
//! Every size is measured by PostgreSQL and every human form is
//! PostgreSQL's own `pg_size_pretty` of the very number given beside it.
//! For a table, `total_bytes` = `table_bytes` + `index_bytes` +
//! `toast_bytes`: the heap with its free space and visibility maps (every
//! fork, `pg_relation_size`), all its indexes (each index's
//! `pg_total_relation_size`, which the index's own answer gives too), and
//! its TOAST table with the TOAST index (`pg_total_relation_size`). Each
//! relation is measured once: the same figures as `pg_total_relation_size`
//! and `pg_indexes_size` of the table, which would measure every index and
//! the TOAST table again. A schema's figures are the sums over its tables
//! (ordinary, partitioned, materialized views), a database's the sums over
//! its schemas but `total_bytes`, which is `pg_database_size` (it also
//! counts what belongs to no table).
//!
//! # Locks
//!
//! Measuring a size or deparsing an index (`pg_get_indexdef`) opens the
//! relation, which waits on an ACCESS EXCLUSIVE lock someone holds or
//! awaits. So every query first reads those locks ([`LOCKS`]: `locked`),
//! leaves out the relations concerned (their sizes and definition are NULL,
//! and `unavailable` says who holds which lock), and sets a short
//! `lock_timeout` for the rest of its transaction (`lock_guard`) before it
//! measures anything, should a lock be taken meanwhile. Everything read
//! from the catalog and the statistics views takes no such lock.
//!
//! # Bloat
//!
//! Bloat is *estimated* from the catalog and the planner's statistics,
//! without reading a table or an index and without any extension: the
//! method of the queries of ioguix/pgsql-bloat-estimation (`table/` and
//! `btree/`), which temBoard and check_pgactivity use. The estimate is only
//! as fresh as the last ANALYZE (or VACUUM) of the relation.
//!
//! - A table: the average width of a row is computed from the statistics
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
//! The statistics are read from `pg_statistic`, by oid and column number,
//! when the role may read it (a superuser may), else from the `pg_stats`
//! view, by name ([`Stats`]): the same figures, but the view checks the
//! role's privilege on every column of the database, which costs about as
//! much as the rest of the query on a database of 10,000 tables.
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

    /// The rows of `pg_stats AS s` the figures may need.
    fn stats_filter(self) -> &'static str {
        match self {
            Scope::Database => "s.schemaname !~ '^pg_(toast|temp_)'",
            Scope::Schema => "s.schemaname = $1",
            Scope::Table => {
                "s.schemaname = $1
     AND s.tablename IN (SELECT t.relname FROM tbl AS t UNION ALL SELECT x.idxname FROM idx AS x)"
            }
        }
    }
}

/// Where the bloat estimates read the planner's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stats {
    /// `pg_statistic`, joined by oid and column number: fast, but only
    /// superusers (and roles granted it) may read it.
    Catalog,
    /// The `pg_stats` view, joined by name: anyone may read it (the rows of
    /// the columns they may read), at the cost of a privilege check per
    /// column.
    View,
}

/// How sizes are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    /// `pg_relation_size` of each fork a relation can have: anyone may, at
    /// the cost of a `stat()` per fork asked for, found or not (two when
    /// the file is there).
    Functions,
    /// The database's directories listed once (`pg_ls_dir`), and a
    /// `stat()` (`pg_stat_file`) of each file that is there: a third of the
    /// system calls, but only superusers (and roles granted both functions)
    /// may.
    Files,
}

/// What the agent's role may read, which decides how the figures are read
/// (the same figures either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub stats: Stats,
    pub sizes: Sizes,
    /// The server's `server_version_num`.
    pub version: i64,
}

impl Access {
    /// From the columns of [`ACCESS`].
    pub fn new(statistic: bool, files: bool, version: i64) -> Access {
        Access {
            stats: if statistic {
                Stats::Catalog
            } else {
                Stats::View
            },
            sizes: if files {
                Sizes::Files
            } else {
                Sizes::Functions
            },
            version,
        }
    }
}

/// What the role may read, in the database it runs in: `statistic`
/// ([`Stats::Catalog`]) and `files` ([`Sizes::Files`]); and the server's
/// `version`.
pub const ACCESS: &str = "SELECT
  pg_catalog.has_table_privilege('pg_catalog.pg_statistic', 'SELECT') AS statistic,
  pg_catalog.has_function_privilege('pg_catalog.pg_ls_dir(text, boolean, boolean)', 'EXECUTE')
    AND pg_catalog.has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')
    AS files,
  pg_catalog.current_setting('server_version_num')::int8 AS version";

/// `pg_statistic` with the column names of `pg_stats`, as a table to join.
const STATISTIC: &str = "(SELECT st.starelid, st.staattnum,
           st.stanullfrac AS null_frac, st.stawidth AS avg_width
      FROM pg_catalog.pg_statistic AS st WHERE NOT st.stainherit)";

/// The figures of each table in `scope`, as common table expressions:
/// `tbl_fig` (one row per table) and `idx_fig` (one row per index of those
/// tables), with their sizes and estimated bloat; and, for
/// [`Scope::Database`], `db_size`, the database's size.
fn figures(scope: Scope, access: Access) -> String {
    // The statistics of a table's columns (`a`, of table `t`) and of an
    // index's columns (`k.pos` of index `x`: a column of the table, or an
    // expression, whose statistics are the index's own).
    let (stats_cte, tbl_cols, tbl_cols_join, idx_stats) = match access.stats {
        Stats::Catalog => (
            String::new(),
            TBL_COLS_CATALOG.replace(
                "{TBL_STATS}",
                if scope == Scope::Table {
                    TBL_STATS_ONE
                } else {
                    TBL_STATS_MANY
                },
            ),
            TBL_COLS_CATALOG_JOIN,
            format!(
                "LEFT JOIN {STATISTIC} AS s
      ON s.starelid = CASE WHEN k.attnum = 0 THEN x.oid ELSE x.tbloid END
     AND s.staattnum = CASE WHEN k.attnum = 0 THEN k.pos::int2 ELSE k.attnum END"
            ),
        ),
        Stats::View => (
            format!(
                "stats AS MATERIALIZED (
  SELECT s.schemaname, s.tablename, s.attname, s.null_frac, s.avg_width
    FROM pg_catalog.pg_stats AS s
   WHERE NOT s.inherited AND {}
),
",
                scope.stats_filter()
            ),
            TBL_COLS_VIEW.to_string(),
            TBL_COLS_VIEW_JOIN,
            "LEFT JOIN pg_catalog.pg_attribute AS ta
      ON k.attnum <> 0 AND ta.attrelid = x.tbloid AND ta.attnum = k.attnum
    LEFT JOIN pg_catalog.pg_attribute AS ia
      ON k.attnum = 0 AND ia.attrelid = x.oid AND ia.attnum = k.pos
    LEFT JOIN stats AS s
      ON s.schemaname = x.nspname
     AND s.tablename = CASE WHEN ta.attnum IS NULL THEN x.idxname ELSE x.tblname END
     AND s.attname = coalesce(ta.attname, ia.attname)"
                .to_string(),
        ),
    };
    // One table's page measures a few relations: the functions are as
    // cheap as listing the database's directory would be.
    let sizes = match (scope, access.sizes) {
        (Scope::Table, _) | (_, Sizes::Functions) => SIZES_BY_FUNCTIONS.to_string(),
        (Scope::Database, Sizes::Files) => sizes_by_files(true),
        (Scope::Schema, Sizes::Files) => sizes_by_files(false),
    };
    format!(
        r#"WITH settings AS (
  SELECT current_setting('block_size')::float8 AS bs,
         -- MAXALIGN: 8 on 64-bit builds, 4 on 32-bit ones
         CASE WHEN version() ~ 'mingw32|64-bit|x86_64|ppc64|ia64|amd64' THEN 8 ELSE 4 END AS ma,
         'base/' || d.oid AS dbdir, d.dattablespace AS dbspc
    FROM pg_catalog.pg_database AS d
   WHERE d.datname = pg_catalog.current_database()
),
{LOCKS}
tbl AS MATERIALIZED (
  SELECT c.oid, c.relnamespace AS nspid, n.nspname, c.relname, c.relkind, c.relpersistence,
         c.relnatts, c.relfilenode, c.reltablespace,
         c.reltuples::float8 AS reltuples, c.relpages::float8 AS relpages,
         coalesce(toast.relpages, 0)::float8 AS toastpages,
         greatest(coalesce(toast.reltuples, 0), 0)::float8 AS toasttuples,
         c.reltoastrelid, toast.relfilenode AS toastfilenode, toast.reltablespace AS toastspc,
         CASE WHEN c.reloptions IS NULL THEN 100
              ELSE coalesce((SELECT o.option_value::int4
                               FROM pg_catalog.pg_options_to_table(c.reloptions) AS o
                              WHERE o.option_name = 'fillfactor'), 100) END AS fillfactor,
         -- Measuring its sizes opens the table, its TOAST table and all
         -- their indexes.
         (SELECT string_agg(lk.why, '; ' ORDER BY lk.why)
            FROM locked_tbl AS lk WHERE lk.tbloid = c.oid) AS unavailable
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_class AS toast ON toast.oid = c.reltoastrelid
   WHERE c.relkind IN ('r', 'p', 'm') AND {filter}
),
idx AS MATERIALIZED (
  SELECT ci.oid, t.oid AS tbloid, t.nspname, t.relname AS tblname, ci.relname AS idxname,
         -- Its size opens the index; its definition (pg_get_indexdef), the table.
         (SELECT string_agg(lk.why, '; ' ORDER BY lk.why)
            FROM locked AS lk WHERE lk.oid IN (ci.oid, t.oid)) AS unavailable,
         ci.relkind, ci.relpersistence, ci.relfilenode, ci.reltablespace,
         ci.reltuples::float8 AS reltuples, ci.relpages::float8 AS relpages,
         i.indnatts, i.indkey, i.indisunique, am.amname,
         {index_key} AS indnkeyatts, i.indclass, i.indcollation, i.indoption,
         {nulls_not_distinct} AS nulls_not_distinct,
         i.indexprs IS NULL AND i.indpred IS NULL AND ci.reloptions IS NULL AS plain,
         CASE WHEN ci.reloptions IS NULL THEN 90
              ELSE coalesce((SELECT o.option_value::int4
                               FROM pg_catalog.pg_options_to_table(ci.reloptions) AS o
                              WHERE o.option_name = 'fillfactor'), 90) END AS fillfactor
    FROM tbl AS t
    JOIN pg_catalog.pg_index AS i ON i.indrelid = t.oid
    JOIN pg_catalog.pg_class AS ci ON ci.oid = i.indexrelid
    LEFT JOIN pg_catalog.pg_am AS am ON am.oid = ci.relam
),
-- Every relation of the tables and indexes: the tables, their TOAST tables
-- and the indexes of those, and the indexes; with the table each belongs
-- to, which part of it it is, and whether no lock keeps it from being
-- measured (`measure`).
rels AS MATERIALIZED (
  SELECT t.oid, t.oid AS tbloid, 'heap' AS part, t.relkind, t.relpersistence,
         t.relfilenode, t.reltablespace, t.unavailable IS NULL AS measure
    FROM tbl AS t
  UNION ALL
  SELECT t.reltoastrelid, t.oid, 'toast', 't', t.relpersistence, t.toastfilenode, t.toastspc,
         t.unavailable IS NULL
    FROM tbl AS t WHERE t.reltoastrelid <> 0
  UNION ALL
  SELECT ti.oid, t.oid, 'toast', ti.relkind, ti.relpersistence, ti.relfilenode, ti.reltablespace,
         t.unavailable IS NULL
    FROM tbl AS t
    JOIN pg_catalog.pg_index AS i ON i.indrelid = t.reltoastrelid
    JOIN pg_catalog.pg_class AS ti ON ti.oid = i.indexrelid
  UNION ALL
  SELECT x.oid, x.tbloid, 'index', x.relkind, x.relpersistence, x.relfilenode, x.reltablespace,
         x.unavailable IS NULL
    FROM idx AS x
),
{sizes}-- Per table: the sizes of its parts.
part_size AS (
  SELECT r.tbloid,
         coalesce(sum(r.bytes) FILTER (WHERE r.part = 'heap'), 0)::int8 AS heap,
         coalesce(sum(r.bytes) FILTER (WHERE r.part = 'toast'), 0)::int8 AS toast,
         coalesce(sum(r.bytes) FILTER (WHERE r.part = 'index'), 0)::int8 AS indexes
    FROM rel_size AS r
   GROUP BY r.tbloid
),
{stats_cte}{tbl_cols}-- Per btree index: its columns (a table's column, or an expression whose
-- statistics are the index's own), how many have statistics, the average
-- width of their data and whether some hold NULLs.
idx_cols AS (
  SELECT x.oid,
         count(*) AS natts,
         count(s.avg_width) AS nstats,
         coalesce(max(s.null_frac), 0)::float8 AS max_null_frac,
         coalesce(sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 1024)), 0)::float8 AS data_width
    FROM idx AS x
   -- its columns: a column of the table, or 0 for an expression
   CROSS JOIN LATERAL pg_catalog.unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, pos)
    {idx_stats}
   WHERE x.relkind = 'i' AND x.amname = 'btree'
   GROUP BY x.oid
),
{IDX_DEF}idx_fig AS MATERIALIZED (
  SELECT x.oid, x.tbloid, x.nspname, x.tblname, x.idxname, x.relkind, x.reltablespace,
         x.indnatts, x.indisunique, x.amname, x.unavailable, x.nulls_not_distinct,
         CASE WHEN x.unavailable IS NULL THEN coalesce(rs.bytes, 0) END AS total_bytes,
         (CASE
            WHEN x.relkind = 'I' THEN 0
            WHEN x.amname IS DISTINCT FROM 'btree' THEN NULL
            WHEN x.reltuples < 0 THEN NULL
            WHEN x.reltuples > 0 AND coalesce(k.nstats, 0) < coalesce(k.natts, 0) THEN NULL
            WHEN e.pages IS NULL THEN NULL
            WHEN x.relpages > e.pages THEN (x.relpages - e.pages) * st.bs
            ELSE 0
          END)::int8 AS bloat_bytes
    FROM idx AS x
   CROSS JOIN settings AS st
    LEFT JOIN rel_size AS rs ON rs.oid = x.oid
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
idx_per_tbl AS (
  SELECT f.tbloid, count(*) AS n_indexes, coalesce(sum(f.bloat_bytes), 0) AS index_bloat_bytes
    FROM idx_fig AS f
   GROUP BY f.tbloid
),
tbl_fig AS MATERIALIZED (
  SELECT s.*, s.table_bytes + s.index_bytes + s.toast_bytes AS total_bytes
    FROM (
      SELECT t.oid, t.nspid, t.nspname, t.relname, t.reltuples, t.fillfactor, t.unavailable,
             -- A lock on any of its relations leaves the table out.
             CASE WHEN t.unavailable IS NULL THEN coalesce(ps.heap, 0) END AS table_bytes,
             CASE WHEN t.unavailable IS NULL THEN coalesce(ps.indexes, 0) END AS index_bytes,
             CASE WHEN t.unavailable IS NULL THEN coalesce(ps.toast, 0) END AS toast_bytes,
             (CASE
                WHEN t.relkind = 'p' OR t.relpages + t.toastpages = 0 THEN 0
                WHEN t.reltuples < 0 THEN NULL
                WHEN t.reltuples > 0 AND coalesce(k.nstats, 0) < coalesce(k.natts, 0) THEN NULL
                WHEN t.relpages + t.toastpages > e.pages THEN (t.relpages + t.toastpages - e.pages) * st.bs
                ELSE 0
              END)::int8 AS bloat_bytes,
             coalesce(ip.n_indexes, 0)::int8 AS n_indexes,
             coalesce(ip.index_bloat_bytes, 0)::int8 AS index_bloat_bytes
        FROM tbl AS t
       CROSS JOIN settings AS st
        {tbl_cols_join}
        LEFT JOIN idx_per_tbl AS ip ON ip.tbloid = t.oid
        LEFT JOIN part_size AS ps ON ps.tbloid = t.oid
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
    ) AS s
)
"#,
        filter = scope.filter(),
        LOCKS = LOCKS,
        IDX_DEF = IDX_DEF,
        // INCLUDE columns: PostgreSQL 11; NULLS NOT DISTINCT: 15.
        index_key = if access.version >= 110000 {
            "i.indnkeyatts"
        } else {
            "i.indnatts"
        },
        nulls_not_distinct = if access.version >= 150000 {
            "i.indnullsnotdistinct"
        } else {
            "false"
        },
    )
}

/// `idx_def`: the columns of each plain btree index (`idx.plain`: no
/// expression, predicate nor storage parameter) as `pg_get_indexdef` writes
/// them, when it writes nothing more than their names and order: columns
/// of the table, each with the default operator class of its type (one
/// that takes no options) and the column's collation. `keys` are the key
/// columns, `included` the INCLUDE ones; `plain_cols` says whether every
/// column is such. `pg_get_indexdef` costs about as much as the rest of a
/// schema's figures: it looks up the default operator class of every
/// column among all the operator classes of the access method.
const IDX_DEF: &str = "plain_opclass AS MATERIALIZED (
  SELECT oc.oid, oc.opcintype
    FROM pg_catalog.pg_opclass AS oc
    JOIN pg_catalog.pg_am AS am ON am.oid = oc.opcmethod
    JOIN pg_catalog.pg_type AS ty ON ty.oid = oc.opcintype
   WHERE am.amname = 'btree' AND oc.opcdefault AND ty.typtype <> 'd'
     -- no options support function (5, BTOPTIONS_PROC)
     AND NOT EXISTS (SELECT FROM pg_catalog.pg_amproc AS ap
                      WHERE ap.amprocfamily = oc.opcfamily AND ap.amprocnum = 5)
),
idx_def AS (
  SELECT x.oid,
         bool_and(k.attnum <> 0
                  AND (k.pos > x.indnkeyatts
                       OR (po.oid IS NOT NULL AND (k.coll = 0 OR k.coll = a.attcollation))))
           AS plain_cols,
         string_agg(pg_catalog.quote_ident(a.attname)
                    || CASE WHEN k.opt & 1 = 1
                            THEN ' DESC' || CASE WHEN k.opt & 2 = 0 THEN ' NULLS LAST' ELSE '' END
                            WHEN k.opt & 2 = 2 THEN ' NULLS FIRST'
                            ELSE '' END,
                    ', ' ORDER BY k.pos) FILTER (WHERE k.pos <= x.indnkeyatts) AS keys,
         string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.pos)
           FILTER (WHERE k.pos > x.indnkeyatts) AS included
    FROM idx AS x
   CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(x.indkey::int2[]),
                                 pg_catalog.unnest(x.indclass::oid[]),
                                 pg_catalog.unnest(x.indcollation::oid[]),
                                 pg_catalog.unnest(x.indoption::int2[]))
         WITH ORDINALITY AS k(attnum, opclass, coll, opt, pos)
    LEFT JOIN pg_catalog.pg_attribute AS a ON a.attrelid = x.tbloid AND a.attnum = k.attnum
    LEFT JOIN plain_opclass AS po ON po.oid = k.opclass AND po.opcintype = a.atttypid
   WHERE x.relkind = 'i' AND x.amname = 'btree' AND x.plain
   GROUP BY x.oid
),
";

/// `rel_size` (the size of each relation of `rels` with every fork, one row
/// per relation, with its table and part; NULL for one a lock keeps from
/// being measured) with [`Sizes::Functions`]: only
/// the forks that can exist are asked for, since each costs a `stat()` of a
/// file, found or not (two when found). Only unlogged relations have an
/// init fork, only heaps (tables, materialized views, TOAST tables) a
/// visibility map; partitioned tables and indexes have no storage. The
/// figures of `pg_table_size` for each relation, which added up make those
/// of `pg_total_relation_size` and `pg_indexes_size`.
const SIZES_BY_FUNCTIONS: &str = "rel_size AS MATERIALIZED (
  SELECT r.oid, max(r.tbloid) AS tbloid, max(r.part) AS part,
         max(CASE WHEN r.measure AND (SELECT ok FROM lock_guard) THEN
               CASE WHEN r.relkind IN ('p', 'I') THEN 0::int8
                    ELSE pg_catalog.pg_relation_size(r.oid, 'main')
                         + pg_catalog.pg_relation_size(r.oid, 'fsm')
                         + CASE WHEN r.relkind IN ('r', 'm', 't')
                                THEN pg_catalog.pg_relation_size(r.oid, 'vm') ELSE 0 END
                         + CASE WHEN r.relpersistence = 'u'
                                THEN pg_catalog.pg_relation_size(r.oid, 'init') ELSE 0 END
               END
             END) AS bytes
    FROM rels AS r
   GROUP BY r.oid
),
";

/// `rel_size` (as in [`SIZES_BY_FUNCTIONS`]) with [`Sizes::Files`]: the
/// directories that hold the relations are listed once, and each file of a
/// relation found there (every fork, every segment: each is named after the
/// main fork's file) is measured (`pg_stat_file`), without opening the
/// relation. With `whole_database`, every file of the database is measured,
/// and `db_size` is their sum: what `pg_database_size` finds, without
/// measuring every file a second time (it is called when the database has
/// relations outside the default tablespace, whose directories are not all
/// listed here).
fn sizes_by_files(whole_database: bool) -> String {
    let (file_size, db_size) = if whole_database {
        (
            "(pg_catalog.pg_stat_file(d.dir || '/' || f.name, true)).size",
            "db_size AS (
  SELECT CASE WHEN st.dbspc = 1663
                   AND NOT EXISTS (SELECT FROM pg_catalog.pg_class AS c
                                    WHERE c.reltablespace NOT IN (0, 1663, 1664))
              THEN (SELECT coalesce(sum(f.size), 0) FROM files AS f WHERE f.in_db)::int8
              ELSE pg_catalog.pg_database_size(pg_catalog.current_database())
         END AS bytes
    FROM settings AS st
),
",
        )
    } else {
        ("NULL::int8", "")
    };
    // Every file of a relation (each fork, each segment: named after the
    // path of the main fork) measured. All the files are measured already
    // for the whole database: added up by relation first, which is also
    // one row per relation to join in the planner's eyes.
    let rel_size = if whole_database {
        "file_size AS (
  SELECT f.base, sum(f.size) AS bytes FROM files AS f GROUP BY f.base
),
rel_size AS MATERIALIZED (
  SELECT p.oid, max(p.tbloid) AS tbloid, max(p.part) AS part, sum(fs.bytes)::int8 AS bytes
    FROM paths AS p
    JOIN file_size AS fs ON fs.base = p.path
   GROUP BY p.oid
),
"
    } else {
        "rel_size AS MATERIALIZED (
  SELECT p.oid, max(p.tbloid) AS tbloid, max(p.part) AS part,
         sum((pg_catalog.pg_stat_file(f.path, true)).size)::int8 AS bytes
    FROM paths AS p
    JOIN files AS f ON f.base = p.path
   GROUP BY p.oid
),
"
    };
    format!(
        "-- Where each relation's files are: the path of its main fork. In the
-- default and global tablespaces, from its filenode; else as PostgreSQL says.
paths AS MATERIALIZED (
  SELECT r.oid, r.tbloid, r.part,
         (CASE WHEN r.relfilenode = 0 OR r.relpersistence = 't'
               THEN pg_catalog.pg_relation_filepath(r.oid)
               WHEN r.reltablespace = 1664 THEN 'global/' || r.relfilenode
               WHEN r.reltablespace = 1663 OR (r.reltablespace = 0 AND st.dbspc = 1663)
               THEN st.dbdir || '/' || r.relfilenode
               ELSE pg_catalog.pg_relation_filepath(r.oid)
          END) COLLATE \"C\" AS path
    FROM rels AS r
   CROSS JOIN settings AS st
   WHERE r.relkind NOT IN ('p', 'I')
),
-- The directories of this database: in the default tablespace, the global
-- one, and in other tablespaces (where PostgreSQL says one of its relations
-- there is).
dirs AS (
  SELECT st.dbdir AS dir, true AS in_db FROM settings AS st WHERE st.dbspc = 1663
  UNION ALL
  SELECT 'global', false
  UNION ALL
  SELECT pg_catalog.regexp_replace(pg_catalog.pg_relation_filepath(min(c.oid)), '/[^/]*$', ''),
         false
    FROM pg_catalog.pg_class AS c
   CROSS JOIN settings AS st
   WHERE c.relkind IN ('r', 'i', 'S', 't', 'm')
   GROUP BY CASE WHEN c.reltablespace = 0 THEN st.dbspc ELSE c.reltablespace END
  HAVING CASE WHEN c.reltablespace = 0 THEN st.dbspc ELSE c.reltablespace END
         NOT IN (1663, 1664)
),
files AS MATERIALIZED (
  SELECT (d.dir || '/' || CASE WHEN f.name LIKE 't%'
                               THEN pg_catalog.substring(f.name, '^t[0-9]+_[0-9]+')
                               ELSE pg_catalog.split_part(pg_catalog.split_part(f.name, '.', 1), '_', 1)
                          END) COLLATE \"C\" AS base,
         d.dir || '/' || f.name AS path, d.in_db, {file_size} AS size
    FROM dirs AS d
   CROSS JOIN LATERAL pg_catalog.pg_ls_dir(d.dir, true, false) AS f(name)
),
{db_size}{rel_size}"
    )
}

/// `tbl_cols`, from `pg_stats`: per table, its live columns (`natts`), how
/// many have statistics (`nstats`), the largest fraction of NULLs and the
/// average width of their data, and whether rows have an oid in their
/// header (tables WITH OIDS before PostgreSQL 12).
const TBL_COLS_VIEW: &str = "tbl_cols AS (
  SELECT t.oid,
         count(*) FILTER (WHERE a.attnum > 0) AS natts,
         count(s.avg_width) AS nstats,
         coalesce(max(s.null_frac), 0)::float8 AS max_null_frac,
         coalesce(sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0)), 0)::float8 AS data_width,
         bool_or(a.attnum < 0) AS has_oids
    FROM tbl AS t
    JOIN pg_catalog.pg_attribute AS a
      ON a.attrelid = t.oid AND NOT a.attisdropped
     AND (a.attnum > 0 OR (a.attnum = -2 AND a.attname = 'oid'))
    LEFT JOIN stats AS s
      ON a.attnum > 0 AND s.schemaname = t.nspname AND s.tablename = t.relname
     AND s.attname = a.attname
   WHERE t.relkind <> 'p'
   GROUP BY t.oid
),
";

/// The figures of [`TBL_COLS_VIEW`] from `pg_statistic`, by oid, in two
/// CTEs (read through [`TBL_COLS_CATALOG_JOIN`]), without reading
/// `pg_attribute` for every table: `tbl_stats`, the statistics of each
/// table's columns, and `tbl_attrs`, its live columns where their number
/// is in doubt. A dropped column loses its statistics, so a table with
/// statistics on `relnatts` columns has them on every live column. The
/// live columns of any other table are counted only when that matters:
/// when it holds rows (its estimate cannot be made if a live column has no
/// statistics), and on servers older than 12 (tables WITH OIDS).
const TBL_COLS_CATALOG: &str = "{TBL_STATS}tbl_attrs AS (
  SELECT a.attrelid AS oid,
         count(*) FILTER (WHERE a.attnum > 0) AS natts,
         bool_or(a.attnum < 0) AS has_oids
    FROM pg_catalog.pg_attribute AS a
   -- (an array, so that these few tables are looked up by index rather
   -- than pg_attribute read whole)
   WHERE a.attrelid = ANY (ARRAY(
           SELECT t.oid
             FROM tbl AS t
             LEFT JOIN tbl_stats AS k ON k.oid = t.oid
            WHERE t.relkind <> 'p'
              AND ((t.reltuples > 0 AND coalesce(k.nstats, 0) < t.relnatts)
                   OR pg_catalog.current_setting('server_version_num')::int < 120000)))
     AND NOT a.attisdropped
     AND (a.attnum > 0 OR (a.attnum = -2 AND a.attname = 'oid'))
   GROUP BY a.attrelid
),
";

/// `tbl_stats` of [`TBL_COLS_CATALOG`] for one table: its statistics,
/// found by index.
const TBL_STATS_ONE: &str = "tbl_stats AS (
  SELECT t.oid, count(*) AS nstats,
         max(s.stanullfrac)::float8 AS max_null_frac,
         sum((1 - s.stanullfrac) * s.stawidth)::float8 AS data_width
    FROM tbl AS t
    JOIN pg_catalog.pg_statistic AS s
      ON s.starelid = t.oid AND NOT s.stainherit AND s.staattnum > 0
   GROUP BY t.oid
),
";

/// `tbl_stats` for many tables: the statistics of every table added up
/// first (one pass over `pg_statistic`, which the planner sees as one row
/// per table to join, not as a row per column of every table).
const TBL_STATS_MANY: &str = "tbl_stats AS (
  SELECT t.oid, sum(s.nstats) AS nstats, max(s.max_null_frac) AS max_null_frac,
         sum(s.data_width) AS data_width
    FROM tbl AS t
    JOIN (SELECT st.starelid, count(*) AS nstats,
                 max(st.stanullfrac)::float8 AS max_null_frac,
                 sum((1 - st.stanullfrac) * st.stawidth)::float8 AS data_width
            FROM pg_catalog.pg_statistic AS st
           WHERE NOT st.stainherit AND st.staattnum > 0
           GROUP BY st.starelid) AS s ON s.starelid = t.oid
   GROUP BY t.oid
),
";

/// In `tbl_fig`, the figures of table `t`'s columns, as `k`.
const TBL_COLS_VIEW_JOIN: &str = "LEFT JOIN tbl_cols AS k ON k.oid = t.oid";

/// [`TBL_COLS_VIEW_JOIN`] from the CTEs of [`TBL_COLS_CATALOG`] (joined
/// one by one: each is one row per table, which the planner can only
/// assume of a grouped CTE).
const TBL_COLS_CATALOG_JOIN: &str = "LEFT JOIN tbl_stats AS ks ON ks.oid = t.oid
        LEFT JOIN tbl_attrs AS ka ON ka.oid = t.oid
       CROSS JOIN LATERAL (
         SELECT coalesce(ka.natts, t.relnatts) AS natts,
                coalesce(ks.nstats, 0) AS nstats,
                coalesce(ks.max_null_frac, 0) AS max_null_frac,
                coalesce(ks.data_width, 0) AS data_width,
                coalesce(ka.has_oids, false) AS has_oids
       ) AS k";

/// The common table expressions that keep the size functions from waiting
/// on a lock (see "Locks" in the module's documentation): `locked`, the
/// relations of this database someone holds or awaits an ACCESS EXCLUSIVE
/// lock on, with why; `locked_tbl`, the tables they keep from being
/// measured; and `lock_guard`, which sets a short `lock_timeout` for the
/// rest of the statement (its transaction) before the first size is
/// measured.
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
-- each locked relation, and the table whose sizes it keeps from being
-- measured: itself, or the table of an index, of a TOAST table, of the
-- index of a TOAST table
locked_tbl AS MATERIALIZED (
  SELECT coalesce(owner.oid, h.heap) AS tbloid, lk.why
    FROM locked AS lk
    LEFT JOIN pg_catalog.pg_index AS i ON i.indexrelid = lk.oid
   CROSS JOIN LATERAL (SELECT coalesce(i.indrelid, lk.oid) AS heap) AS h
    LEFT JOIN pg_catalog.pg_class AS owner ON owner.reltoastrelid = h.heap
),
lock_guard AS MATERIALIZED (
  SELECT pg_catalog.set_config('lock_timeout', '500ms', true) IS NOT NULL AS ok
),";

/// A JSON object, from its keys (in the order given) and the SQL
/// expression of each.
fn json_object(fields: &[(&str, &str)]) -> String {
    let args: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("'{key}', {value}"))
        .collect();
    format!(
        "pg_catalog.json_build_object(\n    {})",
        args.join(",\n    ")
    )
}

/// [`json_object`] with an `unavailable` key, in its sorted place, when
/// `why` is not NULL (an answer without it has the reference's keys
/// exactly).
fn json_object_unavailable(fields: &[(&str, &str)], why: &str) -> String {
    let mut with: Vec<(&str, &str)> = fields.to_vec();
    with.push(("unavailable", why));
    with.sort_by_key(|(key, _)| *key);
    format!(
        "CASE WHEN {why} IS NULL THEN {}\n  ELSE {} END",
        json_object(fields),
        json_object(&with)
    )
}

/// A float8 as a JSON number that keeps its float form: `239.0`, as the
/// reference (and serde_json) write a row estimate, where PostgreSQL's
/// `to_json` would write `239`.
fn json_float(expr: &str) -> String {
    format!(
        "(CASE WHEN {expr} = trunc({expr}) AND abs({expr}) < 1e15
       THEN trunc({expr})::numeric::text || '.0' ELSE {expr}::text END)::json"
    )
}

/// `GET /maintenance`, in the default database: every database but
/// templates, whether it accepts connections, and the size of those that do
/// not (the entry of each other one measures it, [`database_entry`]): the
/// instance's total is over all of them, as the reference.
pub const DATABASES: &str = "
SELECT datname::text AS datname, datallowconn,
       CASE WHEN NOT datallowconn THEN pg_catalog.pg_database_size(oid) END AS bytes
  FROM pg_catalog.pg_database
 WHERE NOT datistemplate
 ORDER BY datname";

/// The instance's part of the answer, its total size `$1`. Column `body`.
pub const INSTANCE: &str = "
SELECT pg_catalog.json_build_object('total_bytes', $1::int8,
                                    'total_size', pg_catalog.pg_size_pretty($1::int8)) AS body";

/// Over the rows of `tbl_fig AS f`: which tables' sizes the sums leave out
/// and why, or NULL when none.
const UNAVAILABLE_SUM: &str = "CASE WHEN count(f.unavailable) > 0
           THEN 'sizes of ' || count(f.unavailable) || ' table(s) not counted: '
                || string_agg(pg_catalog.format('%I.%I (%s)', f.nspname, f.relname, f.unavailable),
                              '; ' ORDER BY f.nspname, f.relname)
                   FILTER (WHERE f.unavailable IS NOT NULL)
           END";

/// The sums over the rows of `tbl_fig AS f`, as columns of `g`.
const SUMS: &str = "count(f.oid)::int8 AS n_tables,
           coalesce(sum(f.n_indexes), 0)::int8 AS n_indexes,
           coalesce(sum(f.total_bytes), 0)::int8 AS total_bytes,
           coalesce(sum(f.table_bytes), 0)::int8 AS tables_bytes,
           coalesce(sum(f.index_bytes), 0)::int8 AS indexes_bytes,
           coalesce(sum(f.toast_bytes), 0)::int8 AS toast_bytes,
           coalesce(sum(f.bloat_bytes), 0)::int8 AS tables_bloat_bytes,
           coalesce(sum(f.index_bloat_bytes), 0)::int8 AS indexes_bloat_bytes";

/// The sums of a database or a schema (`g`, of [`SUMS`]), but `name`,
/// `total_bytes` and `total_size`, which differ.
const SUM_FIELDS: &[(&str, &str)] = &[
    ("indexes_bloat_bytes", "g.indexes_bloat_bytes"),
    (
        "indexes_bloat_size",
        "pg_catalog.pg_size_pretty(g.indexes_bloat_bytes)",
    ),
    ("indexes_bytes", "g.indexes_bytes"),
    ("indexes_size", "pg_catalog.pg_size_pretty(g.indexes_bytes)"),
    ("n_indexes", "g.n_indexes"),
    ("n_tables", "g.n_tables"),
    ("tables_bloat_bytes", "g.tables_bloat_bytes"),
    (
        "tables_bloat_size",
        "pg_catalog.pg_size_pretty(g.tables_bloat_bytes)",
    ),
    ("tables_bytes", "g.tables_bytes"),
    ("tables_size", "pg_catalog.pg_size_pretty(g.tables_bytes)"),
    ("toast_bytes", "g.toast_bytes"),
    ("toast_size", "pg_catalog.pg_size_pretty(g.toast_bytes)"),
];

/// [`SUM_FIELDS`] with `extra`, sorted by key.
fn sum_fields_with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields: Vec<(&str, &str)> = SUM_FIELDS.to_vec();
    fields.extend_from_slice(extra);
    fields.sort_by_key(|(key, _)| *key);
    fields
}

/// A database's entry in `GET /maintenance`, run in that database, whose
/// name is `$1`: its sums and its size. Columns `body`, and `bytes`, its
/// size, which the instance's total adds up.
pub fn database_entry(access: Access) -> String {
    let fields = sum_fields_with(&[
        ("datname", "$1::text"),
        ("total_bytes", "db.bytes"),
        ("total_size", "pg_catalog.pg_size_pretty(db.bytes)"),
    ]);
    format!(
        "{}
SELECT {} AS body, db.bytes
  FROM (
    SELECT {SUMS},
           {UNAVAILABLE_SUM} AS unavailable
      FROM tbl_fig AS f
  ) AS g
 CROSS JOIN {} AS db",
        figures(Scope::Database, access),
        json_object_unavailable(&fields, "g.unavailable"),
        database_size(access),
    )
}

/// The database's size, `pg_database_size`, as a table (`bytes`) to join:
/// with [`Sizes::Files`], `db_size`, which the figures of
/// [`Scope::Database`] have measured already.
fn database_size(access: Access) -> &'static str {
    match access.sizes {
        Sizes::Files => "db_size",
        Sizes::Functions => {
            "(SELECT pg_catalog.pg_database_size(pg_catalog.current_database()) AS bytes)"
        }
    }
}

/// `GET /maintenance/<db>`: the database's schemas with their sums, and its
/// size. No parameter; column `body`.
pub fn database(access: Access) -> String {
    let fields = sum_fields_with(&[
        ("name", "g.name"),
        ("total_bytes", "g.total_bytes"),
        ("total_size", "pg_catalog.pg_size_pretty(g.total_bytes)"),
    ]);
    format!(
        "{},
schema_sums AS (
  SELECT n.nspname::text AS name,
         {SUMS},
         {UNAVAILABLE_SUM} AS unavailable
    FROM pg_catalog.pg_namespace AS n
    LEFT JOIN tbl_fig AS f ON f.nspid = n.oid
   WHERE n.nspname !~ '^pg_(toast|temp_)'
   GROUP BY n.nspname
)
SELECT pg_catalog.json_build_object(
         'schemas', (SELECT coalesce(pg_catalog.json_agg({} ORDER BY g.name), '[]')
                       FROM schema_sums AS g),
         'total_bytes', db.bytes,
         'total_size', pg_catalog.pg_size_pretty(db.bytes)) AS body
  FROM {database_size} AS db",
        figures(Scope::Database, access),
        json_object_unavailable(&fields, "g.unavailable"),
        database_size = database_size(access),
    )
}

/// A table's entry in `GET /maintenance/<db>/schema/<schema>`, over
/// `tbl_fig AS f`.
const TABLE_FIELDS: &[(&str, &str)] = &[
    ("bloat_bytes", "f.bloat_bytes"),
    ("bloat_size", "pg_catalog.pg_size_pretty(f.bloat_bytes)"),
    ("index_bloat_bytes", "f.index_bloat_bytes"),
    (
        "index_bloat_size",
        "pg_catalog.pg_size_pretty(f.index_bloat_bytes)",
    ),
    ("index_bytes", "f.index_bytes"),
    ("index_size", "pg_catalog.pg_size_pretty(f.index_bytes)"),
    ("n_indexes", "f.n_indexes"),
    ("name", "f.relname::text"),
    ("row_estimate", "{ROW_ESTIMATE}"),
    ("table_bytes", "f.table_bytes"),
    ("table_size", "pg_catalog.pg_size_pretty(f.table_bytes)"),
    ("toast_bytes", "f.toast_bytes"),
    ("toast_size", "pg_catalog.pg_size_pretty(f.toast_bytes)"),
    ("total_bytes", "f.total_bytes"),
    ("total_size", "pg_catalog.pg_size_pretty(f.total_bytes)"),
];

/// An index's entry, in a schema's and in a table's answer, over
/// `idx_fig AS f` and `pg_tablespace AS ts`. The scan counters are those of
/// `pg_stat_all_indexes` (which lists the indexes of ordinary tables and
/// materialized views, not partitioned indexes), read for these indexes
/// only.
const INDEX_FIELDS: &[(&str, &str)] = &[
    ("bloat_bytes", "f.bloat_bytes"),
    ("bloat_size", "pg_catalog.pg_size_pretty(f.bloat_bytes)"),
    (
        "def",
        "CASE WHEN f.unavailable IS NULL AND (SELECT ok FROM lock_guard)
              THEN CASE WHEN d.plain_cols
                        THEN 'CREATE ' || CASE WHEN f.indisunique THEN 'UNIQUE ' ELSE '' END
                             || 'INDEX ' || pg_catalog.quote_ident(f.idxname) || ' ON '
                             || pg_catalog.quote_ident(f.nspname) || '.'
                             || pg_catalog.quote_ident(f.tblname) || ' USING btree ('
                             || d.keys || coalesce(') INCLUDE (' || d.included, '') || ')'
                             || CASE WHEN f.nulls_not_distinct THEN ' NULLS NOT DISTINCT' ELSE '' END
                        ELSE pg_catalog.pg_get_indexdef(f.oid) END
         END",
    ),
    (
        "idx_tup_fetch",
        "CASE WHEN f.relkind = 'i' THEN pg_catalog.pg_stat_get_tuples_fetched(f.oid) END",
    ),
    (
        "idx_tup_read",
        "CASE WHEN f.relkind = 'i' THEN pg_catalog.pg_stat_get_tuples_returned(f.oid) END",
    ),
    ("indexrelname", "f.idxname::text"),
    ("indisunique", "f.indisunique"),
    ("name", "f.idxname::text"),
    ("number_of_columns", "f.indnatts::int8"),
    (
        "scans",
        "CASE WHEN f.relkind = 'i' THEN pg_catalog.pg_stat_get_numscans(f.oid) END",
    ),
    ("tablename", "f.tblname::text"),
    ("tablespace", "ts.spcname::text"),
    ("total_bytes", "f.total_bytes"),
    ("total_size", "pg_catalog.pg_size_pretty(f.total_bytes)"),
    ("type", "f.amname::text"),
];

/// Where the indexes of an answer come from, as `f` (and what
/// [`INDEX_FIELDS`] reads).
const INDEX_SOURCE: &str = "idx_fig AS f
     LEFT JOIN idx_def AS d ON d.oid = f.oid
     LEFT JOIN pg_catalog.pg_tablespace AS ts ON ts.oid = f.reltablespace";

/// The JSON list of the indexes in `idx_fig`, by table and name, when some
/// has `unavailable` (see [`fast_list`] otherwise).
fn index_list() -> String {
    format!(
        "(SELECT coalesce(pg_catalog.json_agg({} ORDER BY f.tblname, f.idxname), '[]')
     FROM {INDEX_SOURCE})",
        json_object_unavailable(INDEX_FIELDS, "f.unavailable")
    )
}

/// The JSON list of one object per row of `source`, with `fields`, in the
/// order of `order_by` (over those fields, as `x`), when no row has
/// `unavailable`: `json_agg` of rows whose columns are the keys, which
/// PostgreSQL writes as JSON about half as fast again as it calls
/// `json_build_object` for each.
fn fast_list(fields: &[(&str, &str)], source: &str, order_by: &str) -> String {
    let columns: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{value} AS {key}"))
        .collect();
    format!(
        "(SELECT coalesce(pg_catalog.json_agg(x ORDER BY {order_by}), '[]')
     FROM (SELECT {}
             FROM {source}) AS x)",
        columns.join(",\n                  ")
    )
}

/// [`fast_list`] of the indexes in `idx_fig`.
fn fast_index_list() -> String {
    fast_list(
        INDEX_FIELDS,
        INDEX_SOURCE,
        "x.tablename COLLATE \"C\", x.name COLLATE \"C\"",
    )
}

/// `fields` with `{ROW_ESTIMATE}` replaced by the JSON form of
/// `f.reltuples`.
fn with_row_estimate(fields: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    fields
        .iter()
        .map(|(key, value)| {
            let value = if *value == "{ROW_ESTIMATE}" {
                json_float("f.reltuples")
            } else {
                (*value).to_string()
            };
            (*key, value)
        })
        .collect()
}

fn as_refs<'a>(fields: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// `GET /maintenance/<db>/schema/<schema>` for schema `$1`: its tables by
/// name, its indexes by table and name, the sum of its tables' sizes, and
/// `unavailable` when some could not be measured. Column `body`.
pub fn schema(access: Access) -> String {
    let tables = with_row_estimate(TABLE_FIELDS);
    let tables = as_refs(&tables);
    // A table or index is unavailable only when some table is: then the
    // lists say which, else they are written the fast way.
    let whole = json_object(&[
        ("indexes", &fast_index_list()),
        ("size", "pg_catalog.pg_size_pretty(g.bytes)"),
        (
            "tables",
            &fast_list(&tables, "tbl_fig AS f", "x.name COLLATE \"C\""),
        ),
        ("total_bytes", "g.bytes"),
    ]);
    let partial = json_object(&[
        ("indexes", &index_list()),
        ("size", "pg_catalog.pg_size_pretty(g.bytes)"),
        (
            "tables",
            &format!(
                "(SELECT coalesce(pg_catalog.json_agg({} ORDER BY f.relname), '[]')
     FROM tbl_fig AS f)",
                json_object_unavailable(&tables, "f.unavailable")
            ),
        ),
        ("total_bytes", "g.bytes"),
        ("unavailable", "g.unavailable"),
    ]);
    format!(
        "{}
SELECT CASE WHEN g.unavailable IS NULL THEN {whole}
            ELSE {partial} END AS body
  FROM (
    SELECT coalesce(sum(f.total_bytes), 0)::int8 AS bytes,
           {UNAVAILABLE_SUM} AS unavailable
      FROM tbl_fig AS f
  ) AS g",
        figures(Scope::Schema, access),
    )
}

/// `GET /maintenance/<db>/schema/<schema>/table/<table>`, but `indexes`,
/// over `tbl_fig AS f` and `pg_stat_all_tables AS st` (timestamps in
/// PostgreSQL's text form, as the reference).
const TABLE_DETAIL_FIELDS: &[(&str, &str)] = &[
    ("analyze_count", "st.analyze_count"),
    ("autoanalyze_count", "st.autoanalyze_count"),
    ("autovacuum_count", "st.autovacuum_count"),
    ("bloat_bytes", "f.bloat_bytes"),
    ("bloat_size", "pg_catalog.pg_size_pretty(f.bloat_bytes)"),
    ("fillfactor", "f.fillfactor::int8"),
    ("idx_scan", "st.idx_scan"),
    ("idx_tup_fetch", "st.idx_tup_fetch"),
    ("index_bloat_bytes", "f.index_bloat_bytes"),
    (
        "index_bloat_size",
        "pg_catalog.pg_size_pretty(f.index_bloat_bytes)",
    ),
    ("index_bytes", "f.index_bytes"),
    ("index_size", "pg_catalog.pg_size_pretty(f.index_bytes)"),
    ("last_analyze", "st.last_analyze::text"),
    ("last_autoanalyze", "st.last_autoanalyze::text"),
    ("last_autovacuum", "st.last_autovacuum::text"),
    ("last_vacuum", "st.last_vacuum::text"),
    ("n_dead_tup", "st.n_dead_tup"),
    ("n_live_tup", "st.n_live_tup"),
    ("n_mod_since_analyze", "st.n_mod_since_analyze"),
    ("n_tup_del", "st.n_tup_del"),
    ("n_tup_hot_upd", "st.n_tup_hot_upd"),
    ("n_tup_ins", "st.n_tup_ins"),
    ("n_tup_upd", "st.n_tup_upd"),
    ("name", "f.relname::text"),
    ("relid", "f.oid::text"),
    ("relname", "f.relname::text"),
    ("row_estimate", "{ROW_ESTIMATE}"),
    ("schemaname", "f.nspname::text"),
    ("seq_scan", "st.seq_scan"),
    ("seq_tup_read", "st.seq_tup_read"),
    ("table_bytes", "f.table_bytes"),
    ("table_size", "pg_catalog.pg_size_pretty(f.table_bytes)"),
    ("toast_bytes", "f.toast_bytes"),
    ("toast_size", "pg_catalog.pg_size_pretty(f.toast_bytes)"),
    ("total_bytes", "f.total_bytes"),
    ("total_size", "pg_catalog.pg_size_pretty(f.total_bytes)"),
    ("vacuum_count", "st.vacuum_count"),
];

/// `GET /maintenance/<db>/schema/<schema>/table/<table>` for table `$2` of
/// schema `$1`: its figures, its statistics and its indexes. No row when
/// the table is gone. Column `body`.
pub fn table(access: Access) -> String {
    let mut fields = with_row_estimate(TABLE_DETAIL_FIELDS);
    fields.push(("indexes", index_list()));
    fields.sort_by(|a, b| a.0.cmp(b.0));
    format!(
        "{}
SELECT {} AS body
  FROM tbl_fig AS f
  -- The view groups by table: asked for one, it reads that one only.
  -- (OFFSET 0 keeps the planner from turning this back into a join.)
  LEFT JOIN LATERAL (SELECT * FROM pg_catalog.pg_stat_all_tables AS s
                      WHERE s.relid = f.oid OFFSET 0) AS st ON true",
        figures(Scope::Table, access),
        json_object_unavailable(&as_refs(&fields), "f.unavailable"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of every object `json_object` builds in `sql`, object by
    /// object (the keys of nested objects are listed in their own).
    fn objects(sql: &str) -> Vec<Vec<String>> {
        let mut found = Vec::new();
        for (start, _) in sql.match_indices("json_build_object(") {
            let mut keys = Vec::new();
            let mut depth = 0usize;
            let rest = &sql[start + "json_build_object(".len()..];
            let mut chars = rest.char_indices().peekable();
            let mut expect_key = true;
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '(' => depth += 1,
                    ')' if depth == 0 => break,
                    ')' => depth -= 1,
                    ',' if depth == 0 => expect_key = !expect_key,
                    '\'' if depth == 0 && expect_key => {
                        let key: String =
                            rest[i + 1..].chars().take_while(|c| *c != '\'').collect();
                        for _ in 0..=key.len() {
                            chars.next();
                        }
                        keys.push(key);
                    }
                    '\'' => {
                        // Skip a string literal.
                        for (_, c) in chars.by_ref() {
                            if c == '\'' {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            found.push(keys);
        }
        found
    }

    const ALL_ACCESS: [Access; 4] = [
        Access {
            stats: Stats::Catalog,
            sizes: Sizes::Files,
            version: 150000,
        },
        Access {
            stats: Stats::Catalog,
            sizes: Sizes::Functions,
            version: 150000,
        },
        Access {
            stats: Stats::View,
            sizes: Sizes::Files,
            version: 150000,
        },
        Access {
            stats: Stats::View,
            sizes: Sizes::Functions,
            version: 150000,
        },
    ];

    fn all_queries() -> Vec<String> {
        let mut all = Vec::new();
        for access in ALL_ACCESS {
            all.push(database_entry(access));
            all.push(database(access));
            all.push(schema(access));
            all.push(table(access));
        }
        all
    }

    #[test]
    fn every_object_has_its_keys_sorted() {
        // The reference's examples list every object's keys sorted.
        for sql in all_queries() {
            let objects = objects(&sql);
            assert!(!objects.is_empty());
            for keys in objects {
                let mut sorted = keys.clone();
                sorted.sort_unstable();
                assert_eq!(keys, sorted, "{sql}");
            }
        }
    }

    fn has(sql: &str, keys: &[&str]) -> bool {
        objects(sql)
            .iter()
            .any(|object| object.iter().map(String::as_str).eq(keys.iter().copied()))
    }

    #[test]
    fn answers_have_the_references_keys() {
        let table_keys = [
            "bloat_bytes",
            "bloat_size",
            "index_bloat_bytes",
            "index_bloat_size",
            "index_bytes",
            "index_size",
            "n_indexes",
            "name",
            "row_estimate",
            "table_bytes",
            "table_size",
            "toast_bytes",
            "toast_size",
            "total_bytes",
            "total_size",
        ];
        let index_keys = [
            "bloat_bytes",
            "bloat_size",
            "def",
            "idx_tup_fetch",
            "idx_tup_read",
            "indexrelname",
            "indisunique",
            "name",
            "number_of_columns",
            "scans",
            "tablename",
            "tablespace",
            "total_bytes",
            "total_size",
            "type",
        ];
        let sql = schema(ALL_ACCESS[0]);
        assert!(has(&sql, &table_keys), "{sql}");
        assert!(has(&sql, &index_keys), "{sql}");
        assert!(has(&sql, &["indexes", "size", "tables", "total_bytes"]));
        assert!(has(
            &sql,
            &["indexes", "size", "tables", "total_bytes", "unavailable"]
        ));
        let sql = database(ALL_ACCESS[3]);
        assert!(has(&sql, &["schemas", "total_bytes", "total_size"]));
        let schema_keys = [
            "indexes_bloat_bytes",
            "indexes_bloat_size",
            "indexes_bytes",
            "indexes_size",
            "n_indexes",
            "n_tables",
            "name",
            "tables_bloat_bytes",
            "tables_bloat_size",
            "tables_bytes",
            "tables_size",
            "toast_bytes",
            "toast_size",
            "total_bytes",
            "total_size",
        ];
        assert!(has(&sql, &schema_keys), "{sql}");
        let mut database_keys = schema_keys.to_vec();
        database_keys.retain(|k| *k != "name");
        database_keys.insert(0, "datname");
        assert!(has(&database_entry(ALL_ACCESS[1]), &database_keys));
        let sql = table(ALL_ACCESS[0]);
        assert!(has(&sql, &index_keys), "{sql}");
        let detail = objects(&sql)
            .into_iter()
            .find(|keys| keys.iter().any(|k| k == "vacuum_count"))
            .expect("the table's object");
        assert_eq!(detail.len(), 38, "{detail:?}");
        assert!(detail.iter().any(|k| k == "indexes"));
    }

    #[test]
    fn unavailable_goes_in_its_sorted_place() {
        let sql = json_object_unavailable(&[("a", "1"), ("z", "2")], "w");
        assert!(sql.starts_with("CASE WHEN w IS NULL THEN"), "{sql}");
        assert_eq!(
            objects(&sql),
            [vec!["a", "z"], vec!["a", "unavailable", "z"]]
        );
    }

    /// Whether `sql` refers to a parameter (`$1`, `$2`...).
    fn has_parameters(sql: &str) -> bool {
        sql.match_indices('$')
            .any(|(i, _)| sql[i + 1..].starts_with(|c: char| c.is_ascii_digit()))
    }

    #[test]
    fn scopes_take_names_only_as_parameters() {
        for access in ALL_ACCESS {
            assert!(!has_parameters(&figures(Scope::Database, access)));
            assert!(!has_parameters(&database(access)));
            let schema = figures(Scope::Schema, access);
            assert!(schema.contains("n.nspname = $1") && !schema.contains("$2"));
            assert!(figures(Scope::Table, access).contains("c.relname = $2"));
        }
        // The one exception: a database's name, given back.
        assert!(database_entry(ALL_ACCESS[1]).contains("$1::text"));
        assert!(!database_entry(ALL_ACCESS[1]).contains("$2"));
    }

    #[test]
    fn statistics_come_from_one_place() {
        for sql in all_queries() {
            let catalog = sql.contains("pg_catalog.pg_statistic");
            let view = sql.contains("pg_catalog.pg_stats");
            assert!(catalog != view, "{sql}");
        }
    }

    #[test]
    fn sizes_are_measured_only_past_the_lock_guard() {
        for sql in all_queries() {
            assert!(sql.contains("unavailable"), "{sql}");
            // Every function that opens a relation is behind a CASE that
            // first reads lock_guard (which sets lock_timeout).
            let guards = sql.matches("(SELECT ok FROM lock_guard)").count();
            let measures = sql.matches("pg_get_indexdef(").count()
                + sql
                    .matches("CASE WHEN r.relkind IN ('p', 'I') THEN 0::int8")
                    .count();
            assert_eq!(measures, guards, "{sql}");
            assert_eq!(
                sql.matches("pg_relation_size(").count(),
                4 * sql.matches("pg_relation_size(r.oid, 'main')").count(),
                "{sql}"
            );
            for function in [
                "pg_total_relation_size(",
                "pg_table_size(",
                "pg_indexes_size(",
            ] {
                assert!(!sql.contains(function), "{sql}");
            }
        }
    }

    #[test]
    fn files_are_listed_only_for_many_relations() {
        let files = Access::new(true, true, 150000);
        assert!(schema(files).contains("pg_ls_dir("));
        assert!(database(files).contains("pg_ls_dir("));
        assert!(
            !database(files).contains("pg_database_size(pg_catalog.current_database()) AS bytes)")
        );
        assert!(!table(files).contains("pg_ls_dir("));
        let functions = Access::new(true, false, 150000);
        for sql in [schema(functions), database(functions), table(functions)] {
            assert!(!sql.contains("pg_ls_dir(") && !sql.contains("pg_stat_file("));
        }
    }

    #[test]
    fn fast_lists_have_the_keys_of_the_objects() {
        let list = fast_index_list();
        let aliases: Vec<&str> = list
            .match_indices(" AS ")
            .filter_map(|(i, _)| {
                let rest = &list[i + 4..];
                let end = rest.find(|c: char| !c.is_ascii_lowercase() && c != '_')?;
                Some(&rest[..end])
            })
            .filter(|alias| INDEX_FIELDS.iter().any(|(key, _)| key == alias))
            .collect();
        let keys: Vec<&str> = INDEX_FIELDS.iter().map(|(key, _)| *key).collect();
        assert_eq!(aliases, keys, "{list}");
        let sql = schema(ALL_ACCESS[0]);
        assert!(
            sql.contains("json_agg(x ORDER BY x.name COLLATE \"C\")"),
            "{sql}"
        );
    }

    #[test]
    fn floats_keep_their_form() {
        let sql = json_float("f.reltuples");
        assert!(sql.contains("|| '.0'") && sql.ends_with("::json"), "{sql}");
    }

    /// `cargo test -p maintenance --lib -- --ignored --nocapture print_sql`
    #[test]
    #[ignore]
    fn print_sql() {
        for access in ALL_ACCESS {
            println!("-- {access:?}\n{};\n", database_entry(access));
            println!("{};\n", database(access));
            println!("{};\n", schema(access));
            println!("{};\n", table(access));
        }
    }
}
