//! Login sessions: the SHA-256 of each token, its user and credential, and when it was last
//! used.

use super::db::{Store, duration_secs, unix_secs};
use anyhow::Context as _;
use rusqlite::{OptionalExtension as _, TransactionBehavior, params};
use std::time::{Duration, SystemTime};

/// When sessions end: after `idle` without use, and `lifetime` after login whatever the use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub idle: Duration,
    pub lifetime: Duration,
}

impl Store {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const T0: u64 = 1_700_000_000;
    const HOUR: Duration = Duration::from_secs(3600);

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
}
