//! Periodic backups: the `periodic_backups_enabled` and
//! `periodic_backups_scheduled_at` settings of a database with a Barman
//! server, read from the state store every half minute (a change applies
//! at once, and survives a restart), start one Barman backup per scheduled
//! hour (UTC), each followed as an operation.

use super::{DbOps, Refusal};
use crate::config::databases::ManagedDatabase;
use chrono::{Timelike, Utc};
use std::sync::Arc;
use std::time::Duration;

/// What an operation of this kind is called.
pub const KIND: &str = "backup";
/// How often the schedules are looked at.
const TICK: Duration = Duration::from_secs(30);
/// The store's namespace for the last hour each database was backed up in.
const LAST_RUN: &str = "@dbops";

/// Whether a database can have periodic backups: PostgreSQL ones can
/// (Barman); other engines have no backup method, a 422 on enabling.
pub fn backup_method(db: &ManagedDatabase) -> Result<(), Refusal> {
    if db.engine == "postgresql" {
        Ok(())
    } else {
        Err(Refusal::Unprocessable(
            "periodic_backups_enabled",
            format!("no backup method for {} databases", db.engine),
        ))
    }
}

impl DbOps {
    /// Runs the schedules of `databases` for as long as the agent runs.
    pub fn spawn_periodic_backups(self: &Arc<Self>, databases: Vec<ManagedDatabase>) {
        let with_backups: Vec<ManagedDatabase> = databases
            .into_iter()
            .filter(|db| backup_method(db).is_ok())
            .collect();
        if with_backups.is_empty() {
            return;
        }
        let ops = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            loop {
                tick.tick().await;
                for db in &with_backups {
                    ops.backup_if_due(db).await;
                }
            }
        });
    }

    /// Looks at `db`'s schedule now (its settings changed).
    pub fn reschedule(self: &Arc<Self>, db: &ManagedDatabase) {
        if backup_method(db).is_err() {
            return;
        }
        let ops = Arc::clone(self);
        let db = db.clone();
        tokio::spawn(async move { ops.backup_if_due(&db).await });
    }

    /// Starts the backup of `db` when this hour is scheduled and has none.
    async fn backup_if_due(self: &Arc<Self>, db: &ManagedDatabase) {
        if backup_method(db).is_err() {
            return;
        }
        let now = Utc::now();
        let slot = now.format("%Y-%m-%dT%H").to_string();
        let store = self.store.clone();
        let resource_id = db.resource_id.clone();
        let due = tokio::task::spawn_blocking(move || {
            let record = store.database_record(
                &resource_id,
                &crate::capabilities::operations::new_id().map_err(anyhow::Error::msg)?,
                &crate::capabilities::operations::now(),
            )?;
            let hour = u8::try_from(now.hour()).unwrap_or(0);
            if !record.periodic_backups_enabled || !record.periodic_backups_hours.contains(&hour) {
                return Ok(None);
            }
            let last = store.kv_get(LAST_RUN, &format!("periodic:{resource_id}"))?;
            if last.as_deref() == Some(slot.as_bytes()) {
                return Ok(None);
            }
            // Marked before it runs: a failing backup is not retried in a
            // loop within its hour.
            store.kv_put(
                LAST_RUN,
                &format!("periodic:{resource_id}"),
                slot.as_bytes(),
            )?;
            Ok::<_, anyhow::Error>(Some(record.id))
        })
        .await;
        let database_id = match due {
            Ok(Ok(Some(id))) => id,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                tracing::error!(database = %db.resource_id, "periodic backups: {e:#}");
                return;
            }
            Err(e) => {
                tracing::error!(database = %db.resource_id, "periodic backups: {e}");
                return;
            }
        };
        let Ok(op) = self.create_operation(&database_id, KIND).await else {
            return;
        };
        let ops = Arc::clone(self);
        let resource_id = db.resource_id.clone();
        let server = db.barman_server.clone();
        tokio::spawn(async move {
            ops.set_status(&op, "running", None).await;
            tracing::info!(operation = %op, database = %resource_id, "periodic backup");
            let backed_up = match &server {
                Some(server) => ops.backup_and_wait(server).await,
                None => Err("no barman_server is configured for this database in the agent's configuration: nothing to back up with".into()),
            };
            match backed_up {
                Ok(backup) => {
                    ops.set_status(&op, "finished", None).await;
                    tracing::info!(operation = %op, backup = %backup, "periodic backup done");
                }
                Err(why) => {
                    ops.set_status(&op, "error", Some(&why)).await;
                    ops.notify(&format!("Periodic backup of {resource_id} failed: {why}"))
                        .await;
                }
            }
        });
    }

    /// A Barman backup job of `server`, waited for; the backup's id.
    async fn backup_and_wait(&self, server: &str) -> Result<String, String> {
        let job = self
            .barman
            .start_backup(server)
            .await
            .map_err(|e| e.message)?;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(now) = self.barman.get(&job.id).await.map_err(|e| e.message)? else {
                return Err(format!("backup job {} vanished", job.id));
            };
            match now.status.as_str() {
                "completed" => return Ok(now.backup_id.unwrap_or_default()),
                "failed" | "cancelled" => {
                    return Err(format!(
                        "backup job {} {}: {}",
                        job.id, now.status, now.message
                    ));
                }
                _ => {}
            }
        }
    }
}
