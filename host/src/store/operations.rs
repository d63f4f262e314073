//! Operations: long work on a managed database (an upgrade, a restore, a
//! backup), followed by clients at `/api/operations/:id`.

use super::db::Store;
use rusqlite::{OptionalExtension as _, Row, params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRow {
    pub id: String,
    pub database_id: String,
    pub kind: String,
    /// pending, running, finished, error, user-error, cancelling, cancelled.
    pub status: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

/// The statuses after which an operation does not change any more.
pub const ENDED: &[&str] = &["finished", "error", "user-error", "cancelled"];

const COLUMNS: &str = "id, database_id, kind, status, created_at, started_at, finished_at, error";

fn operation_row(row: &Row<'_>) -> rusqlite::Result<OperationRow> {
    Ok(OperationRow {
        id: row.get(0)?,
        database_id: row.get(1)?,
        kind: row.get(2)?,
        status: row.get(3)?,
        created_at: row.get(4)?,
        started_at: row.get(5)?,
        finished_at: row.get(6)?,
        error: row.get(7)?,
    })
}

impl Store {
    pub fn create_operation(
        &self,
        id: &str,
        database_id: &str,
        kind: &str,
        now: &str,
    ) -> anyhow::Result<OperationRow> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO operations (id, database_id, kind, status, created_at, seq)
             VALUES (?1, ?2, ?3, 'pending', ?4, COALESCE((SELECT max(seq) FROM operations), 0) + 1)",
            params![id, database_id, kind, now],
        )?;
        Ok(conn.query_row(
            &format!("SELECT {COLUMNS} FROM operations WHERE id = ?1"),
            params![id],
            operation_row,
        )?)
    }

    /// Moves an operation to `status`; `running` records its start, an
    /// ended status its end. An ended operation stays as it is: false.
    pub fn update_operation(
        &self,
        id: &str,
        status: &str,
        error: Option<&str>,
        now: &str,
    ) -> anyhow::Result<bool> {
        let ended = ENDED.contains(&status);
        let changed = self.conn().execute(
            "UPDATE operations
                SET status = ?2,
                    error = COALESCE(?3, error),
                    started_at = CASE WHEN ?2 = 'running' THEN COALESCE(started_at, ?4) ELSE started_at END,
                    finished_at = CASE WHEN ?5 THEN ?4 ELSE finished_at END
              WHERE id = ?1 AND status NOT IN ('finished', 'error', 'user-error', 'cancelled')",
            params![id, status, error, now, ended],
        )?;
        Ok(changed > 0)
    }

    pub fn operation(&self, id: &str) -> anyhow::Result<Option<OperationRow>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM operations WHERE id = ?1"),
                params![id],
                operation_row,
            )
            .optional()?)
    }

    /// The operations of a database, newest first (at most `limit`).
    pub fn operations_of(
        &self,
        database_id: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<OperationRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM operations WHERE database_id = ?1 ORDER BY seq DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            params![database_id, i64::try_from(limit).unwrap_or(i64::MAX)],
            operation_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Operations an agent that stopped left unfinished end as `error`
    /// with `reason`; returns how many.
    pub fn fail_interrupted_operations(&self, reason: &str, now: &str) -> anyhow::Result<usize> {
        Ok(self.conn().execute(
            "UPDATE operations SET status = 'error', error = ?1, finished_at = ?2
              WHERE status IN ('pending', 'running', 'cancelling')",
            params![reason, now],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn life_of_an_operation_and_interruptions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let op = store
            .create_operation("o1", "main", "upgrade", "t0")
            .unwrap();
        assert_eq!(
            (op.status.as_str(), op.started_at.as_deref()),
            ("pending", None)
        );
        assert!(store.update_operation("o1", "running", None, "t1").unwrap());
        assert!(store.update_operation("o1", "running", None, "t2").unwrap());
        assert_eq!(
            store
                .operation("o1")
                .unwrap()
                .unwrap()
                .started_at
                .as_deref(),
            Some("t1")
        );
        assert!(
            store
                .update_operation("o1", "error", Some("boom"), "t3")
                .unwrap()
        );
        let ended = store.operation("o1").unwrap().unwrap();
        assert_eq!(
            (ended.error.as_deref(), ended.finished_at.as_deref()),
            (Some("boom"), Some("t3"))
        );
        assert!(
            !store.update_operation("o1", "running", None, "t4").unwrap(),
            "ended stays ended"
        );

        store
            .create_operation("o2", "main", "backup", "t5")
            .unwrap();
        store.update_operation("o2", "running", None, "t6").unwrap();
        store
            .create_operation("o3", "other", "backup", "t7")
            .unwrap();
        assert_eq!(
            store
                .fail_interrupted_operations("interrupted", "t8")
                .unwrap(),
            2
        );
        let listed: Vec<String> = store
            .operations_of("main", 10)
            .unwrap()
            .into_iter()
            .map(|o| format!("{} {}", o.id, o.status))
            .collect();
        assert_eq!(listed, ["o2 error", "o1 error"]);
        assert_eq!(store.operation("nope").unwrap(), None);
    }
}
