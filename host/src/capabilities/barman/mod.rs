//! The `barman` interface: the configured Barman's servers and backups, and
//! backups and recovers as background jobs ([`jobs`]). Every command line
//! is built here from `[backups]` and names checked against what Barman and
//! the configuration know; the plugin picks a subcommand and names.

pub mod command;
pub mod jobs;

use crate::store::BarmanJobRow;
use crate::wit::barman::{BarmanError, ErrorKind, Host, Job, JobKind, JobStatus, Target};
use command::error;
use jobs::Jobs;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "barman";

/// The one plugin that may have this capability, and only bundled.
pub const RESERVED_TO: &str = "backups";

pub struct State {
    jobs: Arc<Jobs>,
}

impl State {
    pub fn new(jobs: &Arc<Jobs>) -> State {
        State {
            jobs: Arc::clone(jobs),
        }
    }

    /// `barman -f json ARGS`, the object under `server`.
    async fn of_server(&self, server: &str, args: &[&str]) -> Result<String, BarmanError> {
        checked(server)?;
        let value = command::json(self.jobs.settings(), args).await?;
        match value.get(server) {
            Some(v) => Ok(v.to_string()),
            None => Err(error(
                ErrorKind::NotFound,
                format!("Unknown server '{server}'"),
            )),
        }
    }
}

fn checked(name: &str) -> Result<&str, BarmanError> {
    if crate::config::backups::is_name(name) {
        Ok(name)
    } else {
        Err(error(
            ErrorKind::BadRequest,
            format!("{name:?} is not a name Barman uses (1-64 letters, digits, '-', '_', '.')"),
        ))
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::barman::add_to_linker::<T, HasSelf<State>>(linker, get)
}

fn job_of(row: BarmanJobRow) -> Job {
    Job {
        kind: if row.kind == "backup" {
            JobKind::Backup
        } else {
            JobKind::Recover
        },
        status: match row.status.as_str() {
            "queued" => JobStatus::Queued,
            "working" => JobStatus::Working,
            "completed" => JobStatus::Completed,
            "cancelled" => JobStatus::Cancelled,
            _ => JobStatus::Failed,
        },
        id: row.id,
        server: row.server,
        target: row.target,
        backup_id: row.backup_id,
        target_time: row.target_time,
        message: row.message,
        pct_complete: row.pct_complete,
        created_at: row.created_at,
        started_at: row.started_at,
        completed_at: row.completed_at,
    }
}

impl Host for State {
    async fn servers(&mut self) -> Result<Vec<String>, BarmanError> {
        let value = command::json(self.jobs.settings(), &["list-servers"]).await?;
        Ok(value
            .as_object()
            .map(|servers| servers.keys().cloned().collect())
            .unwrap_or_default())
    }

    async fn show_server(&mut self, server: String) -> Result<String, BarmanError> {
        self.of_server(&server, &["show-server", &server]).await
    }

    async fn check(&mut self, server: String) -> Result<String, BarmanError> {
        self.of_server(&server, &["check", &server]).await
    }

    async fn list_backups(&mut self, server: String) -> Result<String, BarmanError> {
        self.of_server(&server, &["list-backups", &server]).await
    }

    async fn show_backup(
        &mut self,
        server: String,
        backup_id: String,
    ) -> Result<String, BarmanError> {
        checked(&backup_id)?;
        self.of_server(&server, &["show-backup", &server, &backup_id])
            .await
    }

    async fn targets(&mut self, server: String) -> Vec<Target> {
        self.jobs
            .settings()
            .servers
            .get(&server)
            .map(|targets| {
                targets
                    .iter()
                    .map(|(id, t)| Target {
                        id: id.clone(),
                        path: t.path.to_string_lossy().into_owned(),
                        remote_ssh_cmd: t.remote_ssh_cmd.clone(),
                        recover_job_name: t.recover_job_name.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn start_backup(&mut self, server: String) -> Result<Job, BarmanError> {
        self.jobs.start_backup(&server).await.map(job_of)
    }

    async fn start_recover(
        &mut self,
        server: String,
        target: String,
        backup_id: String,
        target_time: Option<String>,
    ) -> Result<Job, BarmanError> {
        self.jobs
            .start_recover(&server, &target, &backup_id, target_time.as_deref())
            .await
            .map(job_of)
    }

    async fn list_jobs(&mut self, kind: Option<JobKind>) -> Result<Vec<Job>, BarmanError> {
        let kind = kind.map(|k| match k {
            JobKind::Backup => "backup",
            JobKind::Recover => "recover",
        });
        Ok(self
            .jobs
            .list(kind)
            .await?
            .into_iter()
            .map(job_of)
            .collect())
    }

    async fn get_job(&mut self, id: String) -> Result<Option<Job>, BarmanError> {
        Ok(self.jobs.get(&id).await?.map(job_of))
    }

    async fn cancel_job(&mut self, id: String) -> Result<Job, BarmanError> {
        self.jobs.cancel(&id).await.map(job_of)
    }

    async fn format_time(&mut self, unix_seconds: i64) -> String {
        use chrono::TimeZone as _;
        match chrono::Local.timestamp_opt(unix_seconds, 0).single() {
            Some(time) => time.format("%Y-%m-%d %H:%M:%S %z").to_string(),
            None => String::new(),
        }
    }
}
