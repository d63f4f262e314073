//! The catalog queries. Every query takes its row limit as `$1`.
//!
//! Only client backends are listed, never the agent's own connections:
//! the host tags every connection of its pool `application_name = 'dbagent'`,
//! and the query's own backend is `pg_backend_pid()`.

pub const ACTIVITY: &str = "
SELECT a.pid,
       a.datname::text AS database,
       a.usename::text AS user,
       a.client_addr::text AS client,
       COALESCE(a.wait_event_type = 'Lock', false) AS wait,
       a.state,
       COALESCE(EXTRACT(EPOCH FROM (now() - a.query_start))::float8, 0) AS duration,
       a.query
  FROM pg_stat_activity a
 WHERE a.backend_type = 'client backend'
   AND a.pid <> pg_backend_pid()
   AND a.application_name IS DISTINCT FROM 'dbagent'
 ORDER BY a.query_start ASC NULLS LAST, a.pid
 LIMIT $1";

/// The locked relation by name when it is in the database we are connected
/// to (regclass only resolves there), by OID otherwise, `' '` for locks on
/// no relation, as temBoard shows it. A macro so `concat!` can share it.
macro_rules! relation {
    () => {
        "
       CASE WHEN l.relation IS NULL THEN ' '
            WHEN l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            THEN l.relation::regclass::text
            ELSE l.relation::text END AS relation,"
    };
}

pub const WAITING: &str = concat!(
    "
SELECT a.pid,
       a.datname::text AS database,
       a.usename::text AS user,",
    relation!(),
    "
       l.locktype AS type,
       l.mode,
       a.state,
       COALESCE(EXTRACT(EPOCH FROM (now() - a.query_start))::float8, 0) AS duration,
       a.query
  FROM pg_locks l
  JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE NOT l.granted
   AND a.pid <> pg_backend_pid()
 ORDER BY a.query_start ASC NULLS LAST, a.pid
 LIMIT $1"
);

/// Holders of a granted lock that another backend waits for on the same
/// transaction id, or on the same relation of the same database.
pub const BLOCKING: &str = concat!(
    "
SELECT * FROM (
SELECT DISTINCT ON (a.pid, l.locktype, l.relation, l.mode)
       a.pid,
       a.datname::text AS database,
       a.usename::text AS user,",
    relation!(),
    "
       l.locktype AS type,
       l.mode,
       a.state,
       COALESCE(EXTRACT(EPOCH FROM (now() - a.query_start))::float8, 0) AS duration,
       a.query,
       a.query_start
  FROM pg_locks l
  JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.granted
   AND a.pid <> pg_backend_pid()
   AND EXISTS (
       SELECT 1 FROM pg_locks w
        WHERE NOT w.granted
          AND w.pid <> l.pid
          AND ((w.locktype = 'transactionid' AND l.locktype = 'transactionid'
                AND w.transactionid = l.transactionid)
            OR (w.locktype = 'relation' AND l.locktype = 'relation'
                AND w.database IS NOT DISTINCT FROM l.database
                AND w.relation = l.relation)))
 ORDER BY a.pid, l.locktype, l.relation, l.mode
) AS holders
 ORDER BY query_start ASC NULLS LAST, pid
 LIMIT $1"
);

/// Terminates each listed pid that is a client backend other than the
/// agent's own, in request order. CASE, unlike AND, guarantees the check
/// runs before the termination.
pub const KILL: &str = "
SELECT p.pid,
       CASE WHEN EXISTS (SELECT 1 FROM pg_stat_activity a
                          WHERE a.pid = p.pid
                            AND a.backend_type = 'client backend'
                            AND a.pid <> pg_backend_pid()
                            AND a.application_name IS DISTINCT FROM 'dbagent')
            THEN pg_terminate_backend(p.pid)
            ELSE false END AS killed
  FROM unnest($1::text::int4[]) WITH ORDINALITY AS p(pid, n)
 ORDER BY p.n";
