//! Barman jobs: the backups and recovers the agent runs in the background,
//! followed by clients at `/api/recover_jobs`. Times in Unix milliseconds.

use super::db::Store;
use rusqlite::{OptionalExtension as _, Row, params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarmanJobRow {
    pub id: String,
    /// `backup` or `recover`.
    pub kind: String,
    pub server: String,
    pub target: Option<String>,
    pub backup_id: Option<String>,
    pub target_time: Option<String>,
    /// queued, working, completed, failed, cancelled.
    pub status: String,
    pub message: String,
    pub pct_complete: u8,
    /// What a recover will write: the backup with its WAL.
    pub expected_bytes: u64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    /// The process group of a working job.
    pub pgid: Option<i32>,
}

const COLUMNS: &str = "id, kind, server, target, backup_id, target_time, status, message, \
                       pct_complete, expected_bytes, created_at, started_at, completed_at, pgid";

fn job_row(row: &Row<'_>) -> rusqlite::Result<BarmanJobRow> {
    Ok(BarmanJobRow {
        id: row.get(0)?,
        kind: row.get(1)?,
        server: row.get(2)?,
        target: row.get(3)?,
        backup_id: row.get(4)?,
        target_time: row.get(5)?,
        status: row.get(6)?,
        message: row.get(7)?,
        pct_complete: row.get::<_, i64>(8)?.clamp(0, 100) as u8,
        expected_bytes: row.get::<_, i64>(9)?.max(0) as u64,
        created_at: row.get(10)?,
        started_at: row.get(11)?,
        completed_at: row.get(12)?,
        pgid: row.get(13)?,
    })
}

/// What a new job is.
pub struct NewBarmanJob<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub server: &'a str,
    pub target: Option<&'a str>,
    pub backup_id: Option<&'a str>,
    pub target_time: Option<&'a str>,
    pub expected_bytes: u64,
    pub now: i64,
}

impl Store {
    /// Queues a job; `Ok(None)` when `job.target` already has a queued or
    /// working recover (checked and written in one transaction).
    pub fn create_barman_job(
        &self,
        job: &NewBarmanJob<'_>,
    ) -> anyhow::Result<Option<BarmanJobRow>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if let Some(target) = job.target {
            let busy: Option<String> = tx
                .query_row(
                    "SELECT id FROM barman_jobs WHERE kind = 'recover' AND server = ?1 AND target = ?2
                       AND status IN ('queued', 'working') LIMIT 1",
                    params![job.server, target],
                    |row| row.get(0),
                )
                .optional()?;
            if busy.is_some() {
                return Ok(None);
            }
        }
        tx.execute(
            "INSERT INTO barman_jobs (id, kind, server, target, backup_id, target_time, status,
                                      expected_bytes, created_at, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8,
                     COALESCE((SELECT max(seq) FROM barman_jobs), 0) + 1)",
            params![
                job.id,
                job.kind,
                job.server,
                job.target,
                job.backup_id,
                job.target_time,
                i64::try_from(job.expected_bytes).unwrap_or(i64::MAX),
                job.now
            ],
        )?;
        let row = tx.query_row(
            &format!("SELECT {COLUMNS} FROM barman_jobs WHERE id = ?1"),
            params![job.id],
            job_row,
        )?;
        tx.commit()?;
        Ok(Some(row))
    }

    pub fn barman_job(&self, id: &str) -> anyhow::Result<Option<BarmanJobRow>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM barman_jobs WHERE id = ?1"),
                params![id],
                job_row,
            )
            .optional()?)
    }

    /// Newest first, of one kind or all, at most `limit`.
    pub fn barman_jobs(
        &self,
        kind: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<BarmanJobRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM barman_jobs WHERE ?1 IS NULL OR kind = ?1 ORDER BY seq DESC LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(
                params![kind, i64::try_from(limit).unwrap_or(i64::MAX)],
                job_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// A queued job starts working in process group `pgid`; false when it
    /// was no longer queued (cancelled meanwhile).
    pub fn start_barman_job(&self, id: &str, pgid: i32, now: i64) -> anyhow::Result<bool> {
        let changed = self.conn().execute(
            "UPDATE barman_jobs SET status = 'working', started_at = ?2, pgid = ?3
              WHERE id = ?1 AND status = 'queued'",
            params![id, now, pgid],
        )?;
        Ok(changed == 1)
    }

    /// Progress of a working job.
    pub fn set_barman_job_progress(
        &self,
        id: &str,
        pct: u8,
        backup_id: Option<&str>,
    ) -> anyhow::Result<()> {
        self.conn().execute(
            "UPDATE barman_jobs SET pct_complete = ?2, backup_id = COALESCE(?3, backup_id)
              WHERE id = ?1 AND status = 'working'",
            params![id, pct, backup_id],
        )?;
        Ok(())
    }

    /// Ends a job that has not ended yet; false when it had (an ended job
    /// never changes).
    pub fn end_barman_job(
        &self,
        id: &str,
        status: &str,
        message: &str,
        backup_id: Option<&str>,
        now: i64,
    ) -> anyhow::Result<bool> {
        let pct = if status == "completed" {
            Some(100)
        } else {
            None
        };
        let changed = self.conn().execute(
            "UPDATE barman_jobs SET status = ?2, message = ?3, completed_at = ?4, pgid = NULL,
                    pct_complete = COALESCE(?5, pct_complete), backup_id = COALESCE(?6, backup_id)
              WHERE id = ?1 AND status NOT IN ('completed', 'failed', 'cancelled')",
            params![id, status, message, now, pct, backup_id],
        )?;
        Ok(changed == 1)
    }

    /// Jobs left working by an agent that stopped: their process groups
    /// (to stop what may still run) and ids, ended as failed with `reason`.
    pub fn fail_interrupted_barman_jobs(
        &self,
        reason: &str,
        now: i64,
    ) -> anyhow::Result<Vec<(String, Option<i32>)>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let interrupted = {
            let mut stmt =
                tx.prepare("SELECT id, pgid FROM barman_jobs WHERE status = 'working'")?;
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<Vec<(String, Option<i32>)>>>()?
        };
        tx.execute(
            "UPDATE barman_jobs SET status = 'failed', message = ?1, completed_at = ?2, pgid = NULL
              WHERE status = 'working'",
            params![reason, now],
        )?;
        tx.commit()?;
        Ok(interrupted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job<'a>(id: &'a str, target: Option<&'a str>) -> NewBarmanJob<'a> {
        NewBarmanJob {
            id,
            kind: if target.is_some() {
                "recover"
            } else {
                "backup"
            },
            server: "pg",
            target,
            backup_id: Some("20261201T000000"),
            target_time: None,
            expected_bytes: 1000,
            now: 1,
        }
    }

    #[test]
    fn one_recover_per_target_and_ended_jobs_stay_ended() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = store
            .create_barman_job(&job("a", Some("local")))
            .unwrap()
            .unwrap();
        assert_eq!(first.status, "queued");
        assert!(
            store
                .create_barman_job(&job("b", Some("local")))
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .create_barman_job(&job("c", Some("other")))
                .unwrap()
                .is_some()
        );
        assert!(store.create_barman_job(&job("d", None)).unwrap().is_some());

        assert!(store.start_barman_job("a", 4242, 2).unwrap());
        assert!(!store.start_barman_job("a", 4242, 2).unwrap());
        store.set_barman_job_progress("a", 40, None).unwrap();
        assert_eq!(store.barman_job("a").unwrap().unwrap().pct_complete, 40);
        assert!(store.end_barman_job("a", "completed", "", None, 3).unwrap());
        assert!(
            !store
                .end_barman_job("a", "failed", "late", None, 4)
                .unwrap()
        );
        let ended = store.barman_job("a").unwrap().unwrap();
        assert_eq!(
            (
                ended.status.as_str(),
                ended.pct_complete,
                ended.completed_at
            ),
            ("completed", 100, Some(3))
        );
        assert_eq!(ended.pgid, None);
        // The target is free again.
        assert!(
            store
                .create_barman_job(&job("e", Some("local")))
                .unwrap()
                .is_some()
        );

        assert!(store.start_barman_job("c", 77, 5).unwrap());
        let interrupted = store
            .fail_interrupted_barman_jobs("interrupted", 6)
            .unwrap();
        assert_eq!(interrupted, vec![("c".to_string(), Some(77))]);
        assert_eq!(store.barman_job("c").unwrap().unwrap().status, "failed");

        let ids: Vec<String> = store
            .barman_jobs(None, 10)
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(ids, ["e", "d", "c", "a"]);
        assert_eq!(store.barman_jobs(Some("backup"), 10).unwrap().len(), 1);
    }
}
