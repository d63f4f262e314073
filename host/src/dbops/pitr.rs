//! Point-in-time restore of the managed instance from its Barman backups.
//!
//! Checked before anything stops (the time, a backup that reaches it),
//! then: stop the server, keep its data directory aside, `barman recover
//! --target-time` into its place, start it and wait until it has replayed
//! to the target and opened, then drop the kept copy (or keep the newest
//! `pitr_keep_copies`). On any failure after the stop the kept directory is
//! put back and started again.

use super::{DbOps, Refusal, is_the_instance};
use crate::capabilities::barman::command;
use crate::config::databases::ManagedDatabase;
use crate::wit::control::Action;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What an operation of this kind is called.
pub const KIND: &str = "pitr-restore";
/// The suffix of a data directory kept aside by a restore.
const KEPT_SUFFIX: &str = ".pitr-";

/// The backup a restore to `time` starts from: the newest `DONE` one that
/// ended before it. `backups` is `list-backups`' JSON.
fn backup_before(backups: &serde_json::Value, time: DateTime<Utc>) -> Result<String, String> {
    let done: Vec<(&str, i64)> = backups
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|b| b["status"] == "DONE")
                .filter_map(|b| {
                    let end = b["end_time_timestamp"]
                        .as_str()
                        .and_then(|t| t.parse::<i64>().ok())
                        .or_else(|| b["end_time_timestamp"].as_i64())?;
                    Some((b["backup_id"].as_str()?, end))
                })
                .collect()
        })
        .unwrap_or_default();
    let target = time.timestamp();
    if let Some((id, _)) = done
        .iter()
        .filter(|(_, end)| *end <= target)
        .max_by_key(|(_, end)| *end)
    {
        return Ok((*id).to_string());
    }
    match done.iter().map(|(_, end)| *end).min() {
        Some(first) => Err(format!(
            "is before the end of the first backup ({}): no backup can reach it",
            DateTime::from_timestamp(first, 0).map_or_else(String::new, |t| t.to_rfc3339())
        )),
        None => Err("no backup of this database is done yet: nothing can reach it".into()),
    }
}

impl DbOps {
    /// Checks a restore of `db` to `restore_time` and starts it; the
    /// operation's id.
    pub async fn start_pitr(
        self: &Arc<Self>,
        db: &ManagedDatabase,
        database_id: &str,
        restore_time: &str,
    ) -> Result<String, Refusal> {
        let time = DateTime::parse_from_rfc3339(restore_time)
            .map_err(|_| {
                Refusal::BadRequest(format!(
                    "restore_time {restore_time:?} is not an RFC 3339 time such as \"2019-07-18T23:00:00Z\""
                ))
            })?
            .with_timezone(&Utc);
        if db.engine != "postgresql" {
            return Err(Refusal::Unprocessable(
                "restore_time",
                format!(
                    "point-in-time restore is only available for PostgreSQL databases, not {}",
                    db.engine
                ),
            ));
        }
        if !is_the_instance(db) {
            return Err(Refusal::Unprocessable(
                "restore_time",
                "point-in-time restore needs the managed instance (managed = true): the agent stops and starts it".into(),
            ));
        }
        let Some(server) = db.barman_server.clone() else {
            return Err(Refusal::Unprocessable(
                "restore_time",
                "no backups: the database has no barman_server in the agent's configuration".into(),
            ));
        };
        if time > Utc::now() {
            return Err(Refusal::Unprocessable(
                "restore_time",
                "is in the future".into(),
            ));
        }
        let listed = command::json(self.barman.settings(), &["list-backups", &server])
            .await
            .map_err(|e| Refusal::Failed(format!("barman list-backups: {}", e.message)))?;
        let backup = backup_before(&listed[server.as_str()], time)
            .map_err(|why| Refusal::Unprocessable("restore_time", why))?;
        let (data, _) = self.instance_paths()?;
        let Ok(guard) = Arc::clone(&self.instance).try_lock_owned() else {
            return Err(Refusal::Unprocessable(
                "database",
                "another restore or upgrade of this server is running".into(),
            ));
        };
        let op = self.create_operation(database_id, KIND).await?;
        let ops = Arc::clone(self);
        let id = op.clone();
        tokio::spawn(async move {
            let _one_at_a_time = guard;
            ops.set_status(&id, "running", None).await;
            tracing::info!(operation = %id, %time, backup = %backup, "point-in-time restore");
            match ops.restore(&id, &server, &backup, time, &data).await {
                Ok(()) => {
                    ops.set_status(&id, "finished", None).await;
                    ops.notify(&format!("PostgreSQL restored to {}", time.to_rfc3339()))
                        .await;
                }
                Err(why) => {
                    tracing::error!(operation = %id, "point-in-time restore failed: {why}");
                    ops.set_status(&id, "error", Some(&why)).await;
                    ops.notify(&format!(
                        "PostgreSQL restore to {} failed: {why}",
                        time.to_rfc3339()
                    ))
                    .await;
                }
            }
        });
        Ok(op)
    }

    /// The steps after the checks; Err names the step that failed, and
    /// says whether the old data is back.
    async fn restore(
        &self,
        id: &str,
        server: &str,
        backup: &str,
        time: DateTime<Utc>,
        data: &Path,
    ) -> Result<(), String> {
        self.control
            .pg_ctl(Action::Stop)
            .await
            .map_err(|e| format!("stop: {e}"))?;
        let kept = kept_path(data, id);
        if let Err(e) = std::fs::rename(data, &kept) {
            let back = self.start_again().await;
            return Err(format!("keeping {} aside: {e}; {back}", data.display()));
        }
        let target = time.to_rfc3339();
        let path = data.to_string_lossy().into_owned();
        let recovered = command::run(
            self.barman.settings(),
            &[
                "recover",
                "--target-time",
                &target,
                "--target-action",
                "promote",
                server,
                backup,
                &path,
            ],
            self.barman.settings().job_timeout,
        )
        .await;
        let failed = match recovered {
            Err(e) => Some(format!("recover: {}", e.message)),
            Ok(_) => match self.control.pg_ctl(Action::Start).await {
                Err(e) => Some(format!("start: {e}")),
                Ok(_) => self
                    .wait_until_primary(self.barman.settings().job_timeout)
                    .await
                    .err()
                    .map(|e| format!("recovery: {e}")),
            },
        };
        if let Some(why) = failed {
            let back = self.put_back(data, &kept).await;
            return Err(format!("{why}; {back}"));
        }
        self.drop_kept_copies(data).await;
        Ok(())
    }

    /// Starts the instance as it is; what to tell about it.
    async fn start_again(&self) -> String {
        match self.control.pg_ctl(Action::Start).await {
            Ok(_) => "the server was started again on its old data".into(),
            Err(e) => format!("the server could not be started again: {e}"),
        }
    }

    /// Stops whatever runs on `data`, removes it and puts `kept` back in
    /// its place, then starts it; what to tell about it.
    async fn put_back(&self, data: &Path, kept: &Path) -> String {
        let _ = self.control.pg_ctl(Action::Stop).await;
        let (data_buf, kept_buf) = (data.to_path_buf(), kept.to_path_buf());
        let moved = tokio::task::spawn_blocking(move || {
            if data_buf.exists() {
                std::fs::remove_dir_all(&data_buf)?;
            }
            std::fs::rename(&kept_buf, &data_buf)
        })
        .await;
        match moved {
            Ok(Ok(())) => self.start_again().await,
            Ok(Err(e)) => format!(
                "the old data could not be put back from {}: {e}",
                kept.display()
            ),
            Err(e) => format!("the old data could not be put back: {e}"),
        }
    }

    /// Keeps the newest `pitr_keep_copies` directories set aside by
    /// restores beside `data`, and removes the others.
    async fn drop_kept_copies(&self, data: &Path) {
        let keep = self.settings.pitr_keep_copies;
        let data = data.to_path_buf();
        let removed = tokio::task::spawn_blocking(move || {
            let (Some(parent), Some(name)) = (data.parent(), data.file_name()) else {
                return Ok::<_, std::io::Error>(());
            };
            let prefix = format!("{}{KEPT_SUFFIX}", name.to_string_lossy());
            let mut kept: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(parent)?
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
                .collect();
            kept.sort_by_key(|k| std::cmp::Reverse(k.0));
            for (_, old) in kept.into_iter().skip(keep) {
                std::fs::remove_dir_all(&old)?;
            }
            Ok(())
        })
        .await;
        if !matches!(removed, Ok(Ok(()))) {
            tracing::warn!("cannot remove data directories kept by restores: {removed:?}");
        }
    }
}

/// Where a restore keeps `data` aside: beside it, named after the operation.
fn kept_path(data: &Path, operation: &str) -> PathBuf {
    let name = data
        .file_name()
        .map_or_else(|| "data".into(), |n| n.to_string_lossy().into_owned());
    data.with_file_name(format!("{name}{KEPT_SUFFIX}{operation}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_newest_backup_before_the_time_is_chosen() {
        let backups = json!([
            {"backup_id": "B3", "status": "DONE", "end_time_timestamp": "300"},
            {"backup_id": "B2", "status": "FAILED", "end_time_timestamp": "200"},
            {"backup_id": "B1", "status": "DONE", "end_time_timestamp": "100"},
        ]);
        let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap();
        assert_eq!(backup_before(&backups, at(250)).unwrap(), "B1");
        assert_eq!(backup_before(&backups, at(300)).unwrap(), "B3");
        assert!(
            backup_before(&backups, at(50))
                .unwrap_err()
                .contains("first backup")
        );
        assert!(
            backup_before(&json!([]), at(50))
                .unwrap_err()
                .contains("no backup")
        );
    }

    #[test]
    fn kept_copies_sit_beside_the_data() {
        assert_eq!(
            kept_path(Path::new("/var/lib/pg/data"), "abc"),
            PathBuf::from("/var/lib/pg/data.pitr-abc")
        );
    }
}
