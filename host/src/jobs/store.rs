//! Scheduled jobs in the state store: what the scheduler runs and what
//! plugins list. Times are Unix milliseconds.

use crate::store::Store;
use rusqlite::{OptionalExtension, Row, params};

/// One job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: String,
    pub plugin: String,
    pub name: String,
    pub every_ms: Option<i64>,
    pub payload: String,
    pub next_run: Option<i64>,
    pub status: String,
    pub last_run: Option<i64>,
    pub last_error: Option<String>,
    pub runs: i64,
}

const COLUMNS: &str =
    "id, plugin, name, every_ms, payload, next_run, status, last_run, last_error, runs";

fn job_row(row: &Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: row.get(0)?,
        plugin: row.get(1)?,
        name: row.get(2)?,
        every_ms: row.get(3)?,
        payload: row.get(4)?,
        next_run: row.get(5)?,
        status: row.get(6)?,
        last_run: row.get(7)?,
        last_error: row.get(8)?,
        runs: row.get(9)?,
    })
}

/// A job to schedule.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub plugin: &'a str,
    pub name: &'a str,
    pub every_ms: Option<i64>,
    pub payload: &'a str,
    pub next_run: i64,
    /// The id it gets if no job of that name exists yet.
    pub id: &'a str,
}

impl Store {
    /// Schedules a job, replacing the plugin's job of that name (keeping its
    /// id), and returns the id.
    pub fn upsert_job(&self, job: &NewJob<'_>, now: i64) -> anyhow::Result<String> {
        let NewJob {
            plugin,
            name,
            every_ms,
            payload,
            next_run,
            id: new_id,
        } = *job;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT id FROM jobs WHERE plugin = ?1 AND name = ?2",
                params![plugin, name],
                |r| r.get(0),
            )
            .optional()?;
        let id = match existing {
            Some(id) => {
                tx.execute(
                    "UPDATE jobs SET every_ms = ?2, payload = ?3, next_run = ?4,
                            status = CASE WHEN status = 'doing' THEN status ELSE 'todo' END,
                            last_error = NULL
                      WHERE id = ?1",
                    params![id, every_ms, payload, next_run],
                )?;
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO jobs (id, plugin, name, every_ms, payload, next_run, status, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'todo', ?7)",
                    params![new_id, plugin, name, every_ms, payload, next_run, now],
                )?;
                new_id.to_string()
            }
        };
        tx.commit()?;
        Ok(id)
    }

    /// Cancels a job of `plugin` that has not finished; false when there was
    /// no such job still to run.
    pub fn cancel_job(&self, plugin: &str, id: &str) -> anyhow::Result<bool> {
        let changed = self.conn().execute(
            "UPDATE jobs SET status = 'canceled', next_run = NULL
              WHERE plugin = ?1 AND id = ?2 AND status IN ('todo', 'doing')",
            params![plugin, id],
        )?;
        Ok(changed > 0)
    }

    #[cfg(test)]
    pub fn job(&self, id: &str) -> anyhow::Result<Option<JobRow>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                params![id],
                job_row,
            )
            .optional()?)
    }

    /// The jobs of `plugin`, most recently created first.
    pub fn jobs_of(&self, plugin: &str) -> anyhow::Result<Vec<JobRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE plugin = ?1 ORDER BY created DESC, rowid DESC"
        ))?;
        let rows = stmt.query_map(params![plugin], job_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Jobs due at `now` that are not running, earliest first.
    pub fn due_jobs(&self, now: i64) -> anyhow::Result<Vec<JobRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs
              WHERE next_run IS NOT NULL AND next_run <= ?1 AND status <> 'doing'
              ORDER BY next_run"
        ))?;
        let rows = stmt.query_map(params![now], job_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the next job is due, if any is scheduled.
    pub fn next_job_due(&self) -> anyhow::Result<Option<i64>> {
        Ok(self.conn().query_row(
            "SELECT min(next_run) FROM jobs WHERE status <> 'doing'",
            [],
            |r| r.get(0),
        )?)
    }

    /// Marks a job as running, unless it was cancelled meanwhile: returns
    /// whether it should run.
    pub fn start_job(&self, id: &str, now: i64) -> anyhow::Result<bool> {
        let changed = self.conn().execute(
            "UPDATE jobs SET status = 'doing', last_run = ?2
              WHERE id = ?1 AND status <> 'canceled' AND status <> 'doing'",
            params![id, now],
        )?;
        Ok(changed > 0)
    }

    /// Records the outcome of a run and when the job runs next (none for a
    /// finished one-shot job). A job cancelled while it ran stays cancelled.
    pub fn finish_job(
        &self,
        id: &str,
        error: Option<&str>,
        next_run: Option<i64>,
    ) -> anyhow::Result<()> {
        let status = if error.is_some() { "failed" } else { "done" };
        self.conn().execute(
            "UPDATE jobs SET status = CASE WHEN status = 'canceled' THEN 'canceled' ELSE ?2 END,
                    last_error = ?3,
                    runs = runs + 1,
                    next_run = CASE WHEN status = 'canceled' THEN NULL ELSE ?4 END
              WHERE id = ?1",
            params![id, status, error, next_run],
        )?;
        Ok(())
    }

    /// Forgets one-shot jobs that ended (done, failed, canceled) and were
    /// created before `before`; returns how many.
    pub fn prune_finished_jobs(&self, before: i64) -> anyhow::Result<usize> {
        Ok(self.conn().execute(
            "DELETE FROM jobs
              WHERE every_ms IS NULL AND next_run IS NULL
                AND status IN ('done', 'failed', 'canceled') AND created < ?1",
            params![before],
        )?)
    }

    /// The jobs left running by an agent that stopped (a crash, `kill -9`).
    pub fn interrupted_job_ids(&self) -> anyhow::Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id FROM jobs WHERE status = 'doing'")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Jobs left running by an agent that stopped run again at once.
    pub fn requeue_interrupted_jobs(&self, now: i64) -> anyhow::Result<usize> {
        Ok(self.conn().execute(
            "UPDATE jobs SET status = 'todo', next_run = ?1 WHERE status = 'doing'",
            params![now],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn schedule_run_and_finish() {
        let (_dir, store) = store();
        let job = |every, next, id| NewJob {
            plugin: "dash",
            name: "collect",
            every_ms: Some(every),
            payload: "{}",
            next_run: next,
            id,
        };
        let id = store.upsert_job(&job(2000, 1000, "aaaaaaaa"), 0).unwrap();
        assert_eq!(id, "aaaaaaaa");
        // Scheduling the name again replaces the job and keeps its id.
        let again = store.upsert_job(&job(3000, 1500, "bbbbbbbb"), 0).unwrap();
        assert_eq!(again, "aaaaaaaa");
        assert_eq!(store.next_job_due().unwrap(), Some(1500));
        assert!(store.due_jobs(1499).unwrap().is_empty());
        assert_eq!(store.due_jobs(1500).unwrap().len(), 1);
        assert!(store.start_job(&id, 1500).unwrap());
        assert!(
            !store.start_job(&id, 1500).unwrap(),
            "a running job is not started twice"
        );
        assert!(store.due_jobs(9999).unwrap().is_empty());
        store.finish_job(&id, Some("boom"), Some(4500)).unwrap();
        let job = store.job(&id).unwrap().unwrap();
        assert_eq!(
            (job.status.as_str(), job.last_error.as_deref(), job.runs),
            ("failed", Some("boom"), 1)
        );
        assert_eq!(job.next_run, Some(4500));
    }

    #[test]
    fn cancel_and_requeue() {
        let (_dir, store) = store();
        let once = |name, id| NewJob {
            plugin: "m",
            name,
            every_ms: None,
            payload: "x",
            next_run: 10,
            id,
        };
        let id = store.upsert_job(&once("vacuum", "cccccccc"), 0).unwrap();
        assert!(store.cancel_job("m", &id).unwrap());
        assert!(!store.cancel_job("m", &id).unwrap());
        assert!(!store.cancel_job("other", &id).unwrap());
        assert!(!store.start_job(&id, 20).unwrap());
        assert!(store.due_jobs(100).unwrap().is_empty());

        let id = store.upsert_job(&once("analyze", "dddddddd"), 0).unwrap();
        assert!(store.start_job(&id, 10).unwrap());
        assert_eq!(store.requeue_interrupted_jobs(50).unwrap(), 1);
        assert_eq!(store.due_jobs(50).unwrap()[0].id, id);
        assert_eq!(store.jobs_of("m").unwrap().len(), 2);
    }

    #[test]
    fn only_old_finished_one_shot_jobs_are_pruned() {
        let (_dir, store) = store();
        let job = |name, every_ms, id| NewJob {
            plugin: "m",
            name,
            every_ms,
            payload: "",
            next_run: 10,
            id,
        };
        let done = store.upsert_job(&job("done", None, "00000001"), 0).unwrap();
        assert!(store.start_job(&done, 10).unwrap());
        store.finish_job(&done, None, None).unwrap();
        let todo = store.upsert_job(&job("todo", None, "00000002"), 0).unwrap();
        let periodic = store
            .upsert_job(&job("every", Some(1000), "00000003"), 0)
            .unwrap();
        assert!(store.start_job(&periodic, 10).unwrap());
        store
            .finish_job(&periodic, Some("boom"), Some(1010))
            .unwrap();
        let recent = store
            .upsert_job(&job("recent", None, "00000004"), 500)
            .unwrap();
        assert!(store.cancel_job("m", &recent).unwrap());

        assert_eq!(store.prune_finished_jobs(100).unwrap(), 1);
        let left: Vec<String> = store
            .jobs_of("m")
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(left.len(), 3);
        assert!(!left.contains(&done) && left.contains(&todo));
    }
}
