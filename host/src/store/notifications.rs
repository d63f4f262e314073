//! The notification feed: what was done, by whom, newest first and bounded.

use super::db::{Store, count, unix_secs};
use anyhow::Context as _;
use rusqlite::{Connection, TransactionBehavior, params};
use serde::Serialize;
use std::time::SystemTime;

/// One entry of the feed behind `GET /notifications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// UTC, `YYYY-MM-DDTHH:MM:SS`, as temBoard shows it.
    pub date: String,
    pub username: String,
    pub message: String,
}

impl Store {
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

fn format_date(unix_secs: i64) -> String {
    chrono::DateTime::from_timestamp(unix_secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
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
}
