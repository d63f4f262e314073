//! What the agent keeps about each managed database: the id it gave it,
//! when it first saw it, and its periodic backup settings.

use super::db::Store;
use rusqlite::{OptionalExtension as _, params};

/// A managed database's stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseRecord {
    pub resource_id: String,
    /// 24 lower-case hex characters.
    pub id: String,
    pub created_at: String,
    pub periodic_backups_enabled: bool,
    pub periodic_backups_hours: Vec<u8>,
}

impl Store {
    /// The record of `resource_id`, created with `new_id` and `now` the
    /// first time the agent sees it.
    pub fn database_record(
        &self,
        resource_id: &str,
        new_id: &str,
        now: &str,
    ) -> anyhow::Result<DatabaseRecord> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO databases (resource_id, id, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (resource_id) DO NOTHING",
            params![resource_id, new_id, now],
        )?;
        let record = conn.query_row(
            "SELECT resource_id, id, created_at, periodic_backups_enabled, periodic_backups_hours
               FROM databases WHERE resource_id = ?1",
            params![resource_id],
            |row| {
                let hours: String = row.get(4)?;
                Ok(DatabaseRecord {
                    resource_id: row.get(0)?,
                    id: row.get(1)?,
                    created_at: row.get(2)?,
                    periodic_backups_enabled: row.get(3)?,
                    periodic_backups_hours: serde_json::from_str(&hours).unwrap_or_default(),
                })
            },
        )?;
        Ok(record)
    }

    /// The resource id of the database whose id is `id`.
    pub fn database_resource_id(&self, id: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT resource_id FROM databases WHERE id = ?1",
                params![id],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Stores the periodic backup settings given; `None` keeps one as it is.
    pub fn set_periodic_backups(
        &self,
        resource_id: &str,
        enabled: Option<bool>,
        hours: Option<&[u8]>,
    ) -> anyhow::Result<()> {
        let conn = self.conn();
        if let Some(enabled) = enabled {
            conn.execute(
                "UPDATE databases SET periodic_backups_enabled = ?2 WHERE resource_id = ?1",
                params![resource_id, enabled],
            )?;
        }
        if let Some(hours) = hours {
            conn.execute(
                "UPDATE databases SET periodic_backups_hours = ?2 WHERE resource_id = ?1",
                params![resource_id, serde_json::to_string(hours)?],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_made_once_and_its_settings_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = store
            .database_record("main", "aaaaaaaaaaaaaaaaaaaaaaaa", "t1")
            .unwrap();
        let again = store
            .database_record("main", "bbbbbbbbbbbbbbbbbbbbbbbb", "t2")
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(
            (again.id.as_str(), again.created_at.as_str()),
            ("aaaaaaaaaaaaaaaaaaaaaaaa", "t1")
        );
        store
            .set_periodic_backups("main", Some(true), Some(&[3, 15]))
            .unwrap();
        store.set_periodic_backups("main", None, None).unwrap();
        let now = store.database_record("main", "c", "t3").unwrap();
        assert!(now.periodic_backups_enabled);
        assert_eq!(now.periodic_backups_hours, [3, 15]);
        assert_eq!(
            store
                .database_resource_id("aaaaaaaaaaaaaaaaaaaaaaaa")
                .unwrap()
                .as_deref(),
            Some("main")
        );
        assert_eq!(store.database_resource_id("nope").unwrap(), None);
    }
}
