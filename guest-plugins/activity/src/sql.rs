//! The catalog queries. The three listings take their row limit as `$1`.
//!
//! The agent's own connections are never listed nor terminated: the query's
//! own backend is `pg_backend_pid()`, and the host tags every connection of
//! its pool `application_name = 'dbagent'`, so the other pooled connections
//! (idle, or busy serving another plugin) are recognised by that tag. A
//! client that sets the same application name hides itself; that is the
//! price of not asking the host for its pool's pids.
//!
//! `client` is `host(client_addr)`, the bare address: `client_addr::text`
//! would append a netmask (`127.0.0.1/32`). It is null for Unix sockets.
//!
//! `duration` is clamped at 0 because `now()` is the start of this query's
//! transaction, which can be later than another backend's `query_start`.
//!
//! The lock listings show the locked relation by name when it lives in the
//! database this query runs in, or is a shared catalog (`database = 0`):
//! `regclass` only resolves there. Other databases' relations show as their
//! OID, and locks on no relation as `' '`, as temBoard does.

pub const ACTIVITY: &str = "
SELECT a.pid,
       a.datname::text AS database,
       a.usename::text AS user,
       host(a.client_addr) AS client,
       COALESCE(a.wait_event_type = 'Lock', false) AS wait,
       a.state,
       GREATEST(COALESCE(EXTRACT(EPOCH FROM (now() - a.query_start))::float8, 0), 0) AS duration,
       a.query
  FROM pg_stat_activity a
 WHERE a.backend_type = 'client backend'
   AND a.pid <> pg_backend_pid()
   AND a.application_name IS DISTINCT FROM 'dbagent'
 ORDER BY a.query_start ASC NULLS LAST, a.pid
 LIMIT $1";

pub const WAITING: &str = "
SELECT a.pid,
       a.datname::text AS database,
       a.usename::text AS user,
       CASE WHEN l.relation IS NULL THEN ' '
            WHEN l.database IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
            THEN l.relation::regclass::text
            ELSE l.relation::text END AS relation,
       l.locktype AS type,
       l.mode,
       a.state,
       GREATEST(COALESCE(EXTRACT(EPOCH FROM (now() - a.query_start))::float8, 0), 0) AS duration,
       a.query
  FROM pg_locks l
  JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE NOT l.granted
   AND a.pid <> pg_backend_pid()
 ORDER BY a.query_start ASC NULLS LAST, a.pid
 LIMIT $1";

/// Holders of a granted lock on an object that another backend waits to
/// lock: the same transaction id, the same relation of the same database,
/// and likewise for tuples, advisory locks and the other lock types (every
/// identifying column of `pg_locks` equal). One row per (pid, type,
/// relation, mode) even when several backends wait. `pg_locks` is read once
/// so that holders and waiters come from the same snapshot of the lock table.
/// `"user"` is quoted outside its `AS`: bare, it would mean `current_user`.
pub const BLOCKING: &str = r#"
WITH locks AS MATERIALIZED (SELECT * FROM pg_locks)
SELECT pid, database, "user", relation, type, mode, state, duration, query
  FROM (SELECT DISTINCT ON (a.pid, l.locktype, l.relation, l.mode)
               a.pid,
               a.datname::text AS database,
               a.usename::text AS user,
               CASE WHEN l.relation IS NULL THEN ' '
                    WHEN l.database IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
                    THEN l.relation::regclass::text
                    ELSE l.relation::text END AS relation,
               l.locktype AS type,
               l.mode,
               a.state,
               GREATEST(COALESCE(EXTRACT(EPOCH FROM (now() - a.query_start))::float8, 0), 0) AS duration,
               a.query,
               a.query_start
          FROM locks l
          JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.granted
           AND a.pid <> pg_backend_pid()
           AND EXISTS (
               SELECT 1
                 FROM locks w
                WHERE NOT w.granted
                  AND w.pid <> l.pid
                  AND w.locktype = l.locktype
                  AND w.database IS NOT DISTINCT FROM l.database
                  AND w.relation IS NOT DISTINCT FROM l.relation
                  AND w.page IS NOT DISTINCT FROM l.page
                  AND w.tuple IS NOT DISTINCT FROM l.tuple
                  AND w.virtualxid IS NOT DISTINCT FROM l.virtualxid
                  AND w.transactionid IS NOT DISTINCT FROM l.transactionid
                  AND w.classid IS NOT DISTINCT FROM l.classid
                  AND w.objid IS NOT DISTINCT FROM l.objid
                  AND w.objsubid IS NOT DISTINCT FROM l.objsubid)
         ORDER BY a.pid, l.locktype, l.relation, l.mode) AS holders
 ORDER BY query_start ASC NULLS LAST, pid
 LIMIT $1"#;

/// Terminates each pid of `$1` (an int4 array literal such as `{1,2,3}`:
/// the host has no array parameter) that is a client backend other than the
/// agent's own, and answers one row per pid in request order. The check is
/// inside CASE because CASE, unlike AND, guarantees it runs first.
pub const KILL: &str = "
SELECT p.pid,
       CASE WHEN EXISTS (SELECT 1
                           FROM pg_stat_activity a
                          WHERE a.pid = p.pid
                            AND a.backend_type = 'client backend'
                            AND a.pid <> pg_backend_pid()
                            AND a.application_name IS DISTINCT FROM 'dbagent')
            THEN pg_terminate_backend(p.pid)
            ELSE false END AS killed
  FROM unnest($1::text::int4[]) WITH ORDINALITY AS p(pid, n)
 ORDER BY p.n";
