//! The state store: what must survive a restart (sessions, notifications, plugin key-value
//! state, jobs), in one SQLite database, `dbagent.db` under `server.data_dir`. Each family of
//! tables has its own module beside this one; this one opens, checks and migrates the file.
//!
//! WAL mode, so readers never wait for the writer and a `kill -9` loses no committed
//! transaction. A damaged or unwritable file is a start-up error naming it, never something
//! silently replaced.
//!
//! Methods are synchronous and short (one small transaction each); async callers may run them in
//! `spawn_blocking`.

use super::migrations::migrate;
use anyhow::{Context as _, bail};
use rusqlite::Connection;
#[cfg(test)]
use rusqlite::params;
use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const FILE_NAME: &str = "dbagent.db";

/// How long a writer waits for another connection (e.g. an operator's `sqlite3` shell) before
/// giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// Opens (creating if needed) `data_dir/dbagent.db`, checks it, and migrates it to the
    /// current schema version.
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

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
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

pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn duration_secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

pub(crate) fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations::{MIGRATIONS, SCHEMA_VERSION};
    use crate::store::sessions::SessionLimits;
    use std::os::unix::fs::PermissionsExt as _;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const T0: u64 = 1_700_000_000;
    const HOURS: SessionLimits = SessionLimits {
        idle: Duration::from_secs(3600),
        lifetime: Duration::from_secs(3600),
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
