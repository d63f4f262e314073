//! The schema of the state store, versioned with `PRAGMA user_version`: a store written by an
//! older dbagent is migrated forward on open; one written by a newer dbagent is refused, since
//! this binary cannot know what the newer schema means.

use anyhow::{Context as _, bail};
use rusqlite::{Connection, TransactionBehavior};

/// Schema steps, applied in order: step `i` brings `user_version` from `i` to `i + 1`. Append new
/// steps; never edit a released one, since stores out there already ran it.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: sessions and the notification feed.
    "CREATE TABLE sessions (
         token_sha256 TEXT PRIMARY KEY NOT NULL,
         username TEXT NOT NULL,
         created INTEGER NOT NULL,
         last_seen INTEGER NOT NULL
     );
     CREATE TABLE notifications (
         id INTEGER PRIMARY KEY,
         date INTEGER NOT NULL,
         username TEXT NOT NULL,
         message TEXT NOT NULL
     );",
    // 2: plugin key-value state; expiry sweeps by last use.
    "CREATE TABLE kv (
         plugin TEXT NOT NULL,
         key TEXT NOT NULL,
         value BLOB NOT NULL,
         PRIMARY KEY (plugin, key)
     ) WITHOUT ROWID;
     CREATE INDEX sessions_last_seen ON sessions (last_seen);",
    // 3: scheduled jobs; times in Unix milliseconds.
    "CREATE TABLE jobs (
         id TEXT PRIMARY KEY NOT NULL,
         plugin TEXT NOT NULL,
         name TEXT NOT NULL,
         every_ms INTEGER,
         payload TEXT NOT NULL,
         next_run INTEGER,
         status TEXT NOT NULL,
         last_run INTEGER,
         last_error TEXT,
         runs INTEGER NOT NULL DEFAULT 0,
         created INTEGER NOT NULL,
         UNIQUE (plugin, name)
     );
     CREATE INDEX jobs_next_run ON jobs (next_run);",
    // 4: which credential a session was opened with, so that changing or
    // removing it ends the session ('' for sessions opened before).
    "ALTER TABLE sessions ADD COLUMN credential TEXT NOT NULL DEFAULT '';
     CREATE INDEX sessions_username ON sessions (username);",
    // 5: the managed databases' ids and settings, and operations.
    "CREATE TABLE databases (
         resource_id TEXT PRIMARY KEY NOT NULL,
         id TEXT NOT NULL UNIQUE,
         created_at TEXT NOT NULL,
         periodic_backups_enabled INTEGER NOT NULL DEFAULT 0,
         periodic_backups_hours TEXT NOT NULL DEFAULT '[]'
     );
     CREATE TABLE operations (
         id TEXT PRIMARY KEY NOT NULL,
         database_id TEXT NOT NULL,
         kind TEXT NOT NULL,
         status TEXT NOT NULL,
         created_at TEXT NOT NULL,
         started_at TEXT,
         finished_at TEXT,
         error TEXT,
         seq INTEGER NOT NULL
     );
     CREATE INDEX operations_database ON operations (database_id, seq);",
    // 6: Barman backups and recovers run in the background; times in Unix
    // milliseconds; pgid the process group of a working one.
    "CREATE TABLE barman_jobs (
         id TEXT PRIMARY KEY NOT NULL,
         kind TEXT NOT NULL,
         server TEXT NOT NULL,
         target TEXT,
         backup_id TEXT,
         target_time TEXT,
         status TEXT NOT NULL,
         message TEXT NOT NULL DEFAULT '',
         pct_complete INTEGER NOT NULL DEFAULT 0,
         expected_bytes INTEGER NOT NULL DEFAULT 0,
         created_at INTEGER NOT NULL,
         started_at INTEGER,
         completed_at INTEGER,
         pgid INTEGER,
         seq INTEGER NOT NULL
     );
     CREATE INDEX barman_jobs_seq ON barman_jobs (seq);",
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn migrate(mut conn: Connection) -> anyhow::Result<Connection> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        bail!(
            "schema version {version} was written by a newer dbagent; this one knows up to version \
             {SCHEMA_VERSION}: run the newer dbagent, or use another server.data_dir"
        );
    }
    if version < 0 {
        bail!("schema version {version} is not a dbagent one");
    }
    for (step, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.execute_batch(sql)
            .with_context(|| format!("cannot migrate the schema to version {}", step + 1))?;
    }
    if version < SCHEMA_VERSION {
        // user_version lives in the database header and changes with this transaction, so a
        // crash midway leaves the old schema and the old version together.
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tracing::info!(
            from = version,
            to = SCHEMA_VERSION,
            "state store schema migrated"
        );
    }
    tx.commit()?;
    Ok(conn)
}
