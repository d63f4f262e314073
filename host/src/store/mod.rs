//! The state store: what must survive a restart (sessions, notifications, plugin key-value
//! state, and later jobs and operations), in one SQLite database, `dbagent.db` under
//! `server.data_dir`.
//!
//! WAL mode, so readers never wait for the writer and a `kill -9` loses no committed
//! transaction. The schema is versioned with `PRAGMA user_version`: a store written by an older
//! dbagent is migrated forward on open; one written by a newer dbagent is refused, since this
//! binary cannot know what the newer schema means. A damaged or unwritable file is a start-up
//! error naming it, never something silently replaced.
//!
//! Methods are synchronous and short (one small transaction each); async callers may run them in
//! `spawn_blocking`.

use anyhow::{Context as _, bail};
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use serde::Serialize;
use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod jobs;
pub use jobs::{JobRow, NewJob};

pub const FILE_NAME: &str = "dbagent.db";

/// Schema steps, applied in order: step `i` brings `user_version` from `i` to `i + 1`. Append new
/// steps; never edit a released one, since stores out there already ran it.
const MIGRATIONS: &[&str] = &[
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
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a writer waits for another connection (e.g. an operator's `sqlite3` shell) before
/// giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// When sessions end: after `idle` without use, and `lifetime` after login whatever the use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub idle: Duration,
    pub lifetime: Duration,
}

/// One entry of the feed behind `GET /notifications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// UTC, `YYYY-MM-DDTHH:MM:SS`, as temBoard shows it.
    pub date: String,
    pub username: String,
    pub message: String,
}

#[derive(Clone)]
pub struct Store {
    path: Arc<PathBuf>,
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) `data_dir/dbagent.db`, checks it, and migrates it to
    /// [`SCHEMA_VERSION`].
    pub fn open(data_dir: &Path) -> anyhow::Result<Store> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let path = data_dir.join(FILE_NAME);
        let conn =
            open_checked(&path).with_context(|| format!("state store {}", path.display()))?;
        Ok(Store {
            path: Arc::new(path),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    // ---- sessions ----

    /// Records a new session under the SHA-256 (hex) of its token; the token itself is never
    /// stored. `credential` is a fingerprint of the password hash the user logged in with.
    pub fn create_session(
        &self,
        token_sha256: &str,
        username: &str,
        credential: &str,
        now: SystemTime,
    ) -> anyhow::Result<()> {
        let now = unix_secs(now);
        self.conn()
            .execute(
                "INSERT INTO sessions (token_sha256, username, credential, created, last_seen) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![token_sha256, username, credential, now],
            )
            .context("cannot record the session")?;
        Ok(())
    }

    /// The user of a live session, sliding its expiry forward; None (and the session deleted)
    /// when it is unknown, has been idle longer than `limits.idle`, or was opened longer than
    /// `limits.lifetime` ago.
    pub fn touch_session(
        &self,
        token_sha256: &str,
        now: SystemTime,
        limits: SessionLimits,
    ) -> anyhow::Result<Option<String>> {
        let now = unix_secs(now);
        let idle = duration_secs(limits.idle);
        let lifetime = duration_secs(limits.lifetime);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: Option<(String, i64, i64)> = tx
            .query_row(
                "SELECT username, last_seen, created FROM sessions WHERE token_sha256 = ?1",
                params![token_sha256],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        let Some((username, last_seen, created)) = found else {
            return Ok(None);
        };
        if last_seen.saturating_add(idle) < now || created.saturating_add(lifetime) < now {
            tx.execute(
                "DELETE FROM sessions WHERE token_sha256 = ?1",
                params![token_sha256],
            )?;
            tx.commit()?;
            return Ok(None);
        }
        // At most one write per session per second however many requests it makes.
        if now > last_seen {
            tx.execute(
                "UPDATE sessions SET last_seen = ?2 WHERE token_sha256 = ?1",
                params![token_sha256, now],
            )?;
        }
        tx.commit()?;
        Ok(Some(username))
    }

    /// Ends a session (logout); false when there was none.
    pub fn delete_session(&self, token_sha256: &str) -> anyhow::Result<bool> {
        let deleted = self.conn().execute(
            "DELETE FROM sessions WHERE token_sha256 = ?1",
            params![token_sha256],
        )?;
        Ok(deleted > 0)
    }

    /// Deletes expired sessions, so that sessions nobody logs out of do not pile up; returns
    /// how many.
    pub fn purge_expired_sessions(
        &self,
        now: SystemTime,
        limits: SessionLimits,
    ) -> anyhow::Result<usize> {
        let deleted = self.conn().execute(
            "DELETE FROM sessions WHERE last_seen + ?2 < ?1 OR created + ?3 < ?1",
            params![
                unix_secs(now),
                duration_secs(limits.idle),
                duration_secs(limits.lifetime)
            ],
        )?;
        Ok(deleted)
    }

    /// Ends every session of `username` (removed, or given a new password); returns how many.
    pub fn delete_sessions_of(&self, username: &str) -> anyhow::Result<usize> {
        Ok(self.conn().execute(
            "DELETE FROM sessions WHERE username = ?1",
            params![username],
        )?)
    }

    /// Ends the sessions whose user is no longer in `credentials` (user name → fingerprint of
    /// the password hash), or whose user's password changed since login; returns how many.
    pub fn revoke_stale_sessions(
        &self,
        credentials: &std::collections::HashMap<String, String>,
    ) -> anyhow::Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let sessions: Vec<(String, String, String)> = {
            let mut stmt = tx.prepare("SELECT token_sha256, username, credential FROM sessions")?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut revoked = 0;
        for (token, username, credential) in sessions {
            let stale = match credentials.get(&username) {
                None => true,
                // Sessions from before fingerprints were kept end only with their user.
                Some(current) => !credential.is_empty() && *current != credential,
            };
            if stale {
                revoked += tx.execute(
                    "DELETE FROM sessions WHERE token_sha256 = ?1",
                    params![token],
                )?;
            }
        }
        tx.commit()?;
        Ok(revoked)
    }

    // ---- notifications ----

    /// Appends to the feed and keeps only its `keep_last` newest entries, so the feed never
    /// grows without bound.
    pub fn add_notification(
        &self,
        username: &str,
        message: &str,
        now: SystemTime,
        keep_last: usize,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO notifications (date, username, message) VALUES (?1, ?2, ?3)",
            params![unix_secs(now), username, message],
        )
        .context("cannot record the notification")?;
        prune(&tx, keep_last)?;
        tx.commit()?;
        Ok(())
    }

    /// The `limit` newest entries, newest first.
    pub fn notifications(&self, limit: usize) -> anyhow::Result<Vec<Notification>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT date, username, message FROM notifications ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![count(limit)], |row| {
            Ok(Notification {
                date: format_date(row.get(0)?),
                username: row.get(1)?,
                message: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keeps the `keep_last` newest entries; returns how many were deleted.
    #[cfg(test)]
    pub fn prune_notifications(&self, keep_last: usize) -> anyhow::Result<usize> {
        prune(&self.conn(), keep_last)
    }

    // ---- plugin key-value state ----

    pub fn kv_get(&self, plugin: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT value FROM kv WHERE plugin = ?1 AND key = ?2",
                params![plugin, key],
                |row| row.get(0),
            )
            .optional()?)
    }

    pub fn kv_put(&self, plugin: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        self.conn().execute(
            "INSERT INTO kv (plugin, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
            params![plugin, key, value],
        )?;
        Ok(())
    }

    /// False when there was no such key.
    pub fn kv_delete(&self, plugin: &str, key: &str) -> anyhow::Result<bool> {
        let deleted = self.conn().execute(
            "DELETE FROM kv WHERE plugin = ?1 AND key = ?2",
            params![plugin, key],
        )?;
        Ok(deleted > 0)
    }

    /// A plugin's keys that start with `prefix`, in byte order.
    pub fn kv_list(&self, plugin: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
        let conn = self.conn();
        // Keys with a common prefix are contiguous in the primary key's (byte) order, so start
        // there and stop at the first key past them instead of scanning the plugin's keys.
        let mut stmt =
            conn.prepare_cached("SELECT key FROM kv WHERE plugin = ?1 AND key >= ?2 ORDER BY key")?;
        let mut rows = stmt.query(params![plugin, prefix])?;
        let mut keys = Vec::new();
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            if !key.starts_with(prefix) {
                break;
            }
            keys.push(key);
        }
        Ok(keys)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held left at most an open transaction, which rusqlite rolls
        // back when it is dropped; the connection itself is fine to keep using.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn open_checked(path: &Path) -> anyhow::Result<Connection> {
    // Create the file ourselves so that it starts private: it names users and their sessions.
    // SQLite gives its -wal and -shm files the same permissions.
    if !path.exists() {
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .context("cannot create the file")?;
    }
    let conn = Connection::open(path).context("cannot open")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let check: Vec<String> = {
        let mut stmt = conn
            .prepare("PRAGMA quick_check")
            .context("not a readable SQLite database (corrupt, or not a dbagent store)")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()
            .context("not a readable SQLite database (corrupt, or not a dbagent store)")?
    };
    if check != ["ok"] {
        bail!(
            "the database is corrupt (PRAGMA quick_check: {}); restore it from a backup or move it aside",
            check.join("; ")
        );
    }
    if conn.is_readonly(rusqlite::MAIN_DB)? {
        bail!("the file is not writable by this process");
    }
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .context("cannot switch to WAL mode")?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("cannot switch to WAL mode (journal_mode is {mode})");
    }
    // Writes are few (logins, notifications, job state); pay for an fsync per commit so that
    // not even a power cut loses one.
    conn.pragma_update(None, "synchronous", "FULL")?;
    migrate(conn)
}

fn migrate(mut conn: Connection) -> anyhow::Result<Connection> {
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

fn prune(conn: &Connection, keep_last: usize) -> anyhow::Result<usize> {
    let deleted = match keep_last {
        0 => conn.execute("DELETE FROM notifications", [])?,
        n => conn.execute(
            "DELETE FROM notifications WHERE id <=
                 (SELECT id FROM notifications ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            params![count(n)],
        )?,
    };
    Ok(deleted)
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn duration_secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn format_date(unix_secs: i64) -> String {
    chrono::DateTime::from_timestamp(unix_secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const T0: u64 = 1_700_000_000;
    const HOUR: Duration = Duration::from_secs(3600);
    const HOURS: SessionLimits = SessionLimits {
        idle: HOUR,
        lifetime: HOUR,
    };

    fn user_version(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_store_is_private_in_wal_mode_at_the_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let store = Store::open(&data_dir).unwrap();
        let _ = &store;
        let mode = fs::metadata(data_dir.join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let journal: String = store
            .conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        drop(store);
        assert_eq!(user_version(&data_dir.join(FILE_NAME)), SCHEMA_VERSION);
    }

    #[test]
    fn data_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.create_session("aa", "alice", "c", at(T0)).unwrap();
            store
                .add_notification("alice", "Login", at(T0), 100)
                .unwrap();
            store.kv_put("dashboard", "history/1", b"\x00\x01").unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store
                .touch_session("aa", at(T0 + 1), HOURS)
                .unwrap()
                .as_deref(),
            Some("alice")
        );
        assert_eq!(store.notifications(10).unwrap().len(), 1);
        assert_eq!(
            store.kv_get("dashboard", "history/1").unwrap().as_deref(),
            Some(&b"\x00\x01"[..])
        );
    }

    #[test]
    fn a_version_1_store_is_migrated_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        {
            // What a dbagent knowing only version 1 left behind.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute(
                "INSERT INTO sessions (token_sha256, username, created, last_seen) VALUES ('bb', 'bob', ?1, ?1)",
                params![T0 as i64],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO notifications (date, username, message) VALUES (?1, 'bob', 'PostgreSQL reload')",
                params![T0 as i64],
            )
            .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store
                .touch_session("bb", at(T0 + 5), HOURS)
                .unwrap()
                .as_deref(),
            Some("bob")
        );
        assert_eq!(
            store.notifications(10).unwrap()[0].message,
            "PostgreSQL reload"
        );
        store.kv_put("p", "k", b"v").unwrap();
        assert_eq!(store.kv_get("p", "k").unwrap().as_deref(), Some(&b"v"[..]));
        drop(store);
        assert_eq!(user_version(&path), SCHEMA_VERSION);
    }

    #[test]
    fn a_store_from_a_newer_dbagent_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE future (x INTEGER)")
                .unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let e = format!("{:#}", Store::open(dir.path()).unwrap_err());
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("newer dbagent"), "{e}");
        assert_eq!(user_version(&path), SCHEMA_VERSION + 1);
    }

    #[test]
    fn a_garbage_file_is_an_error_naming_it_and_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let garbage: Vec<u8> = (0..8192u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        fs::write(&path, &garbage).unwrap();
        let e = format!("{:#}", Store::open(dir.path()).unwrap_err());
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert_eq!(fs::read(&path).unwrap(), garbage);
    }

    #[test]
    fn damaged_pages_are_caught_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        {
            let store = Store::open(dir.path()).unwrap();
            for i in 0..200 {
                store
                    .kv_put("p", &format!("key-{i:04}"), &[7u8; 200])
                    .unwrap();
            }
            // Fold the WAL into the main file so the damage below hits real data.
            store
                .conn()
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
                .unwrap();
        }
        let mut bytes = fs::read(&path).unwrap();
        assert!(bytes.len() > 4096 * 4);
        for b in &mut bytes[4096 * 2..4096 * 4] {
            *b = 0xA5;
        }
        fs::write(&path, &bytes).unwrap();
        let e = format!("{:#}", Store::open(dir.path()).unwrap_err());
        assert!(e.contains(&path.display().to_string()), "{e}");
    }

    #[test]
    fn a_data_dir_that_cannot_be_created_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, "").unwrap();
        let e = format!("{:#}", Store::open(&file).unwrap_err());
        assert!(e.contains(&file.display().to_string()), "{e}");
    }

    #[test]
    fn sessions_slide_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let idle = SessionLimits {
            idle: Duration::from_secs(100),
            lifetime: Duration::MAX,
        };
        store.create_session("s1", "alice", "c", at(T0)).unwrap();

        // Each use pushes expiry forward: 90 s steps outlive the 100 s timeout.
        for step in 1..=5 {
            let now = at(T0 + 90 * step);
            assert_eq!(
                store.touch_session("s1", now, idle).unwrap().as_deref(),
                Some("alice")
            );
        }
        // Exactly at the limit is still alive; past it, gone for good.
        let last = T0 + 450;
        assert!(
            store
                .touch_session("s1", at(last + 100), idle)
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .touch_session("s1", at(last + 100 + 101), idle)
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .touch_session("s1", at(last + 1), idle)
                .unwrap()
                .is_none(),
            "deleted, not just expired"
        );

        assert!(
            store
                .touch_session("unknown", at(T0), idle)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn logout_and_purge() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let idle = SessionLimits {
            idle: Duration::from_secs(100),
            lifetime: Duration::MAX,
        };
        store.create_session("old", "alice", "c", at(T0)).unwrap();
        store
            .create_session("new", "bob", "c", at(T0 + 150))
            .unwrap();
        store
            .create_session("gone", "carol", "c", at(T0 + 150))
            .unwrap();
        assert!(store.delete_session("gone").unwrap());
        assert!(!store.delete_session("gone").unwrap());
        assert_eq!(store.purge_expired_sessions(at(T0 + 200), idle).unwrap(), 1);
        assert!(
            store
                .touch_session(
                    "old",
                    at(T0 + 200),
                    SessionLimits {
                        idle: Duration::MAX,
                        lifetime: Duration::MAX
                    }
                )
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .touch_session("new", at(T0 + 200), idle)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn sessions_end_at_their_lifetime_however_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let limits = SessionLimits {
            idle: Duration::from_secs(100),
            lifetime: Duration::from_secs(250),
        };
        store.create_session("s", "alice", "c", at(T0)).unwrap();
        for step in 1..=2 {
            assert!(
                store
                    .touch_session("s", at(T0 + 90 * step), limits)
                    .unwrap()
                    .is_some()
            );
        }
        assert!(
            store
                .touch_session("s", at(T0 + 251), limits)
                .unwrap()
                .is_none()
        );
        store.create_session("t", "alice", "c", at(T0)).unwrap();
        assert_eq!(
            store
                .purge_expired_sessions(
                    at(T0 + 251),
                    SessionLimits {
                        idle: Duration::MAX,
                        lifetime: limits.lifetime
                    }
                )
                .unwrap(),
            1
        );
    }

    #[test]
    fn sessions_of_removed_users_and_changed_passwords_are_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_session("a", "alice", "pw1", at(T0)).unwrap();
        store.create_session("b", "bob", "pw2", at(T0)).unwrap();
        store.create_session("c", "carol", "pw3", at(T0)).unwrap();
        store.create_session("old", "carol", "", at(T0)).unwrap();
        let current: std::collections::HashMap<String, String> = [
            ("alice".to_string(), "pw1".to_string()),
            ("carol".to_string(), "pw3-changed".to_string()),
        ]
        .into();
        assert_eq!(store.revoke_stale_sessions(&current).unwrap(), 2);
        let limits = SessionLimits {
            idle: HOUR,
            lifetime: HOUR,
        };
        assert!(store.touch_session("a", at(T0), limits).unwrap().is_some());
        assert!(store.touch_session("b", at(T0), limits).unwrap().is_none());
        assert!(store.touch_session("c", at(T0), limits).unwrap().is_none());
        assert!(
            store
                .touch_session("old", at(T0), limits)
                .unwrap()
                .is_some()
        );
        assert_eq!(store.delete_sessions_of("carol").unwrap(), 1);
    }

    #[test]
    fn a_session_cannot_be_created_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_session("dup", "alice", "c", at(T0)).unwrap();
        assert!(store.create_session("dup", "mallory", "c", at(T0)).is_err());
        assert_eq!(
            store
                .touch_session(
                    "dup",
                    at(T0),
                    SessionLimits {
                        idle: HOUR,
                        lifetime: HOUR
                    }
                )
                .unwrap()
                .as_deref(),
            Some("alice")
        );
    }

    #[test]
    fn notifications_are_newest_first_in_utc_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // 2016-04-11T16:12:38Z, the example in the temBoard API documentation.
        let base = 1_460_391_158;
        for i in 0..10u64 {
            store
                .add_notification("alice", &format!("event {i}"), at(base + i), 4)
                .unwrap();
        }
        let feed = store.notifications(100).unwrap();
        let messages: Vec<&str> = feed.iter().map(|n| n.message.as_str()).collect();
        assert_eq!(messages, ["event 9", "event 8", "event 7", "event 6"]);
        assert_eq!(feed[3].date, "2016-04-11T16:12:44");
        assert_eq!(feed[3].username, "alice");
        assert_eq!(store.notifications(2).unwrap().len(), 2);

        assert_eq!(store.prune_notifications(1).unwrap(), 3);
        assert_eq!(store.notifications(100).unwrap()[0].message, "event 9");
        assert_eq!(store.prune_notifications(0).unwrap(), 1);
        assert!(store.notifications(100).unwrap().is_empty());

        let json = serde_json::to_value(Notification {
            date: "2016-04-11T16:12:38".into(),
            username: "alice".into(),
            message: "Login".into(),
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"date": "2016-04-11T16:12:38", "username": "alice", "message": "Login"})
        );
    }

    #[test]
    fn kv_is_per_plugin_and_lists_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.kv_get("a", "k").unwrap(), None);
        store.kv_put("a", "k", b"1").unwrap();
        store.kv_put("a", "k", b"2").unwrap();
        store.kv_put("b", "k", b"other plugin").unwrap();
        assert_eq!(store.kv_get("a", "k").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(
            store.kv_get("b", "k").unwrap().as_deref(),
            Some(&b"other plugin"[..])
        );

        for key in ["h/2", "h/1", "h0", "g", "h/10", "i"] {
            store.kv_put("a", key, b"").unwrap();
        }
        store.kv_put("b", "h/x", b"").unwrap();
        assert_eq!(store.kv_list("a", "h/").unwrap(), ["h/1", "h/10", "h/2"]);
        assert_eq!(store.kv_list("a", "").unwrap().len(), 7);
        assert!(store.kv_list("a", "zz").unwrap().is_empty());

        assert!(store.kv_delete("a", "k").unwrap());
        assert!(!store.kv_delete("a", "k").unwrap());
        assert_eq!(store.kv_get("a", "k").unwrap(), None);
        assert_eq!(
            store.kv_get("b", "k").unwrap().as_deref(),
            Some(&b"other plugin"[..])
        );
    }

    #[test]
    fn the_store_is_shared_across_threads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        store.kv_put("p", &format!("{t}-{i}"), b"x").unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(store.kv_list("p", "").unwrap().len(), 100);
    }
}
