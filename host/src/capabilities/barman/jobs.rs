//! Backups and recovers run in the background: queued in the state store,
//! started when one of `max_running_jobs` slots is free, followed (a
//! recover's progress is the bytes its target holds over what it will
//! hold), stopped with their whole process group on cancel or past
//! `job_timeout_secs`. A job working when the agent stopped ends failed at
//! the next start; queued ones run then.

use super::command::{self, error, failure};
use crate::config::backups::{Backups, is_name};
use crate::store::{BarmanJobRow, NewBarmanJob, Store};
use crate::wit::barman::{BarmanError, ErrorKind};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// What a job working when the agent stopped ends with.
pub const INTERRUPTED: &str = "interrupted: the agent stopped while the job was working";
/// How long a stopped job's processes get between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often a working recover's progress is measured.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Jobs listed at most.
pub const MAX_LISTED: usize = 1000;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub struct Jobs {
    settings: Backups,
    store: Store,
    /// Barman's output of each job, `<id>.log`.
    log_dir: PathBuf,
    slots: Semaphore,
    /// Wakes the task of a job being cancelled.
    cancels: Mutex<HashMap<String, Arc<Notify>>>,
}

fn store_error(e: anyhow::Error) -> BarmanError {
    error(ErrorKind::Failed, format!("state store: {e:#}"))
}

fn checked<'a>(what: &str, name: &'a str) -> Result<&'a str, BarmanError> {
    if is_name(name) {
        Ok(name)
    } else {
        Err(error(
            ErrorKind::BadRequest,
            format!(
                "{what} {name:?} is not a name Barman uses (1-64 letters, digits, '-', '_', '.')"
            ),
        ))
    }
}

/// A recovery target time as Barman takes it (`2026-12-01 10:00:00+00`,
/// ISO 8601 with `T`, fractions, an offset or `Z`): digits and those
/// separators only, so it is never anything but one argument's value.
fn checked_time(time: &str) -> Result<&str, BarmanError> {
    let ok = (10..=40).contains(&time.len())
        && time.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && time
            .bytes()
            .all(|b| b.is_ascii_digit() || b" -:+.TZ".contains(&b));
    if ok {
        Ok(time)
    } else {
        Err(error(
            ErrorKind::BadRequest,
            format!("target time {time:?} is not a time such as \"2026-12-01 10:00:00+00\""),
        ))
    }
}

impl Jobs {
    /// Ends the jobs a stopped agent left working (stopping what of them
    /// may still run) and starts the queued ones.
    pub async fn start(settings: Backups, store: Store, data_dir: &Path) -> Arc<Jobs> {
        let jobs = Arc::new(Jobs {
            slots: Semaphore::new(settings.max_running_jobs),
            settings,
            store,
            log_dir: data_dir.join("barman-jobs"),
            cancels: Mutex::new(HashMap::new()),
        });
        let store = jobs.store.clone();
        let recovered = tokio::task::spawn_blocking(move || {
            let interrupted = store.fail_interrupted_barman_jobs(INTERRUPTED, now_ms())?;
            let queued: Vec<String> = store
                .barman_jobs(None, usize::MAX)?
                .into_iter()
                .rev()
                .filter(|job| job.status == "queued")
                .map(|job| job.id)
                .collect();
            Ok::<_, anyhow::Error>((interrupted, queued))
        })
        .await;
        match recovered {
            Ok(Ok((interrupted, queued))) => {
                for (id, pgid) in interrupted {
                    tracing::warn!(job = %id, "Barman job interrupted by the last stop ends failed");
                    if let Some(pgid) = pgid {
                        stop_orphan(pgid);
                    }
                }
                for id in queued {
                    tracing::info!(job = %id, "Barman job queued before the last stop runs now");
                    jobs.spawn(id);
                }
            }
            Ok(Err(e)) => tracing::error!("cannot recover Barman jobs: {e:#}"),
            Err(e) => tracing::error!("cannot recover Barman jobs: {e}"),
        }
        jobs
    }

    pub fn settings(&self) -> &Backups {
        &self.settings
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, BarmanError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| error(ErrorKind::Failed, e.to_string()))?
            .map_err(store_error)
    }

    /// A server Barman knows, or not-found naming it.
    async fn known_server(&self, server: &str) -> Result<(), BarmanError> {
        checked("server", server)?;
        let servers = command::json(&self.settings, &["list-servers"]).await?;
        if servers.get(server).is_some() {
            Ok(())
        } else {
            Err(error(
                ErrorKind::NotFound,
                format!("Unknown server '{server}'"),
            ))
        }
    }

    pub async fn start_backup(self: &Arc<Self>, server: &str) -> Result<BarmanJobRow, BarmanError> {
        self.known_server(server).await?;
        self.queue(server, "backup", None, None, None, 0).await
    }

    pub async fn start_recover(
        self: &Arc<Self>,
        server: &str,
        target: &str,
        backup_id: &str,
        target_time: Option<&str>,
    ) -> Result<BarmanJobRow, BarmanError> {
        checked("server", server)?;
        checked("target", target)?;
        checked("backup", backup_id)?;
        if let Some(time) = target_time {
            checked_time(time)?;
        }
        self.known_server(server).await?;
        if !self
            .settings
            .servers
            .get(server)
            .is_some_and(|targets| targets.contains_key(target))
        {
            return Err(error(
                ErrorKind::NotFound,
                format!("Unknown target '{target}' for server '{server}'"),
            ));
        }
        let shown = command::json(&self.settings, &["show-backup", server, backup_id]).await?;
        let backup = shown.get(server).cloned().unwrap_or_default();
        let status = backup["status"].as_str().unwrap_or_default();
        if status != "DONE" {
            return Err(error(
                ErrorKind::Conflict,
                format!("backup '{backup_id}' is {status}: only a DONE backup can be recovered"),
            ));
        }
        let size = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        let info = &backup["base_backup_information"];
        let expected = size(&info["backup_size_bytes"])
            + size(&info["wal_size_bytes"])
            + size(&backup["wal_information"]["disk_usage_bytes"]);
        self.queue(
            server,
            "recover",
            Some(target),
            Some(backup_id),
            target_time,
            expected,
        )
        .await
    }

    async fn queue(
        self: &Arc<Self>,
        server: &str,
        kind: &'static str,
        target: Option<&str>,
        backup_id: Option<&str>,
        target_time: Option<&str>,
        expected_bytes: u64,
    ) -> Result<BarmanJobRow, BarmanError> {
        let id = new_id()?;
        let (server, target, backup_id, target_time) = (
            server.to_string(),
            target.map(str::to_string),
            backup_id.map(str::to_string),
            target_time.map(str::to_string),
        );
        let job_id = id.clone();
        let created = self
            .blocking(move |store| {
                store.create_barman_job(&NewBarmanJob {
                    id: &job_id,
                    kind,
                    server: &server,
                    target: target.as_deref(),
                    backup_id: backup_id.as_deref(),
                    target_time: target_time.as_deref(),
                    expected_bytes,
                    now: now_ms(),
                })
            })
            .await?;
        let Some(job) = created else {
            return Err(error(
                ErrorKind::Conflict,
                "a recover to this target is already queued or working: cancel it or wait",
            ));
        };
        tracing::info!(job = %job.id, kind, server = %job.server, target = ?job.target, backup = ?job.backup_id, "Barman job queued");
        self.spawn(id);
        Ok(job)
    }

    pub async fn list(&self, kind: Option<&'static str>) -> Result<Vec<BarmanJobRow>, BarmanError> {
        self.blocking(move |store| store.barman_jobs(kind, MAX_LISTED))
            .await
    }

    pub async fn get(&self, id: &str) -> Result<Option<BarmanJobRow>, BarmanError> {
        let id = id.to_string();
        self.blocking(move |store| store.barman_job(&id)).await
    }

    /// A queued job ends cancelled at once; a working one is stopped by its
    /// task, which ends it cancelled once its processes are gone.
    pub async fn cancel(&self, id: &str) -> Result<BarmanJobRow, BarmanError> {
        let Some(job) = self.get(id).await? else {
            return Err(error(ErrorKind::NotFound, format!("no job '{id}'")));
        };
        match job.status.as_str() {
            "queued" => {
                let job_id = id.to_string();
                self.blocking(move |store| {
                    store.end_barman_job(
                        &job_id,
                        "cancelled",
                        "cancelled before it started",
                        None,
                        now_ms(),
                    )
                })
                .await?;
                self.wake(id);
            }
            "working" => {
                self.wake(id);
                // The task ends it once everything it started is gone.
                for _ in 0..(STOP_GRACE.as_millis() / 50 + 40) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if self.get(id).await?.is_some_and(|j| j.status != "working") {
                        break;
                    }
                }
            }
            _ => {}
        }
        self.get(id)
            .await?
            .ok_or_else(|| error(ErrorKind::NotFound, format!("no job '{id}'")))
    }

    fn notify_of(&self, id: &str) -> Arc<Notify> {
        let mut cancels = self.cancels.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(cancels.entry(id.to_string()).or_default())
    }

    fn wake(&self, id: &str) {
        self.notify_of(id).notify_one();
    }

    fn spawn(self: &Arc<Self>, id: String) {
        let jobs = Arc::clone(self);
        tokio::spawn(async move {
            let cancelled = jobs.notify_of(&id);
            if let Err(e) = jobs.run(&id, &cancelled).await {
                tracing::error!(job = %id, "Barman job: {}", e.message);
                let message = e.message.clone();
                let job_id = id.clone();
                let _ = jobs
                    .blocking(move |store| {
                        store.end_barman_job(&job_id, "failed", &message, None, now_ms())
                    })
                    .await;
            }
            jobs.cancels
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
        });
    }

    /// The command line of a job, from its row and the configuration.
    fn arguments(&self, job: &BarmanJobRow) -> Result<(Vec<String>, Option<PathBuf>), BarmanError> {
        match job.kind.as_str() {
            "backup" => Ok((vec!["backup".into(), job.server.clone()], None)),
            "recover" => {
                let target_id = job.target.as_deref().unwrap_or_default();
                let Some(target) = self
                    .settings
                    .servers
                    .get(&job.server)
                    .and_then(|targets| targets.get(target_id))
                else {
                    return Err(error(
                        ErrorKind::NotFound,
                        format!("target '{target_id}' is no longer configured"),
                    ));
                };
                let mut args = vec!["recover".to_string()];
                if let Some(time) = &job.target_time {
                    args.extend(["--target-time".into(), time.clone()]);
                    args.extend(["--target-action".into(), "promote".into()]);
                }
                if let Some(ssh) = &target.remote_ssh_cmd {
                    args.extend(["--remote-ssh-command".into(), ssh.clone()]);
                }
                let path = target.path.to_string_lossy().into_owned();
                args.extend([
                    job.server.clone(),
                    job.backup_id.clone().unwrap_or_default(),
                    path,
                ]);
                // Progress is measured on local targets only.
                let local = target.remote_ssh_cmd.is_none().then(|| target.path.clone());
                Ok((args, local))
            }
            other => Err(error(
                ErrorKind::Failed,
                format!("unknown job kind {other:?}"),
            )),
        }
    }

    async fn run(&self, id: &str, cancelled: &Notify) -> Result<(), BarmanError> {
        let _slot = tokio::select! {
            slot = self.slots.acquire() => slot.map_err(|e| error(ErrorKind::Failed, e.to_string()))?,
            () = cancelled.notified() => return Ok(()),
        };
        let Some(job) = self.get(id).await? else {
            return Ok(());
        };
        if job.status != "queued" {
            return Ok(());
        }
        let (args, measured) = self.arguments(&job)?;
        std::fs::create_dir_all(&self.log_dir).map_err(|e| {
            error(
                ErrorKind::Failed,
                format!("cannot create {}: {e}", self.log_dir.display()),
            )
        })?;
        let log_path = self.log_dir.join(format!("{id}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| {
            error(
                ErrorKind::Failed,
                format!("cannot create {}: {e}", log_path.display()),
            )
        })?;
        let log_err = log
            .try_clone()
            .map_err(|e| error(ErrorKind::Failed, e.to_string()))?;
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = command::command(&self.settings, &arg_refs)?;
        cmd.stdout(Stdio::from(log)).stderr(Stdio::from(log_err));
        let baseline = match &measured {
            Some(path) => directory_bytes(path.clone()).await,
            None => 0,
        };
        // Barman recovers only into an empty directory: what a stopped
        // recover leaves there is all its own, and useless half-written.
        let clean_on_stop = measured.as_ref().filter(|path| is_empty_dir(path)).cloned();
        let mut child = cmd.spawn().map_err(|e| {
            error(
                ErrorKind::Unavailable,
                format!("cannot run {}: {e}", self.settings.barman.display()),
            )
        })?;
        let pgid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .unwrap_or(0);
        let job_id = id.to_string();
        let started = self
            .blocking(move |store| store.start_barman_job(&job_id, pgid, now_ms()))
            .await?;
        if !started {
            // Cancelled between the check above and now.
            stop_group(pgid, &mut child).await;
            return Ok(());
        }
        tracing::info!(job = %id, pgid, "barman {}", args.join(" "));
        let deadline = tokio::time::Instant::now() + self.settings.job_timeout;
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        let (status, message) = loop {
            tokio::select! {
                exit = child.wait() => {
                    let output = std::fs::read(&log_path).unwrap_or_default();
                    let output = String::from_utf8_lossy(&output);
                    break match exit {
                        Ok(exit) if exit.success() => ("completed", String::new()),
                        Ok(exit) => ("failed", format!("barman {} failed ({exit}): {}", job.kind, failure(&output))),
                        Err(e) => ("failed", format!("barman {}: {e}", job.kind)),
                    };
                }
                () = cancelled.notified() => {
                    stop_group(pgid, &mut child).await;
                    let mut message = "cancelled while working".to_string();
                    message.push_str(&emptied(clean_on_stop.as_deref()).await);
                    break ("cancelled", message);
                }
                () = tokio::time::sleep_until(deadline) => {
                    stop_group(pgid, &mut child).await;
                    let mut message = format!(
                        "barman {} did not finish within {} s ([backups] job_timeout_secs) and was stopped",
                        job.kind, self.settings.job_timeout.as_secs()
                    );
                    message.push_str(&emptied(clean_on_stop.as_deref()).await);
                    break ("failed", message);
                }
                _ = tick.tick() => {
                    if let Some(path) = &measured {
                        let written = directory_bytes(path.clone()).await.saturating_sub(baseline);
                        let pct = percent(written, job.expected_bytes);
                        let job_id = id.to_string();
                        self.blocking(move |store| store.set_barman_job_progress(&job_id, pct, None)).await?;
                    }
                }
            }
        };
        let made = if job.kind == "backup" && status == "completed" {
            let output = std::fs::read(&log_path).unwrap_or_default();
            backup_id_of(&String::from_utf8_lossy(&output))
        } else {
            None
        };
        tracing::info!(job = %id, status, "Barman job ended {message}");
        let job_id = id.to_string();
        self.blocking(move |store| {
            store.end_barman_job(&job_id, status, &message, made.as_deref(), now_ms())
        })
        .await?;
        Ok(())
    }
}

/// 32 lower-case hex, as barmaid's job ids.
fn new_id() -> Result<String, BarmanError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| error(ErrorKind::Failed, format!("cannot draw a job id: {e}")))?;
    Ok(hex::encode(bytes))
}

/// Progress while working: never 100 before the job is done.
fn percent(written: u64, expected: u64) -> u8 {
    if expected == 0 {
        return 0;
    }
    let pct = written.saturating_mul(100) / expected;
    u8::try_from(pct.min(99)).unwrap_or(99)
}

/// The bytes of the regular files under `path` (0 when it does not exist).
async fn directory_bytes(path: PathBuf) -> u64 {
    tokio::task::spawn_blocking(move || {
        let mut total = 0u64;
        let mut pending = vec![path];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                match entry.file_type() {
                    Ok(t) if t.is_dir() => pending.push(entry.path()),
                    Ok(t) if t.is_file() => {
                        total += entry.metadata().map_or(0, |m| m.len());
                    }
                    _ => {}
                }
            }
        }
        total
    })
    .await
    .unwrap_or(0)
}

/// A directory that does not exist or holds nothing.
fn is_empty_dir(path: &Path) -> bool {
    match std::fs::read_dir(path) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Empties a stopped recover's target (`path`, when it was empty before
/// the recover); what to add to the job's message.
async fn emptied(path: Option<&Path>) -> String {
    let Some(path) = path.map(Path::to_path_buf) else {
        return String::new();
    };
    let shown = path.display().to_string();
    let removed = tokio::task::spawn_blocking(move || {
        for entry in std::fs::read_dir(&path)?.flatten() {
            let child = entry.path();
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(&child)?;
            } else {
                std::fs::remove_file(&child)?;
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    match removed {
        Ok(Ok(())) => format!("; what it had written to {shown} was removed"),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Ok(Err(e)) => {
            tracing::warn!("cannot empty {shown} after a stopped recover: {e}");
            format!("; {shown} holds what it had written (cannot remove it: {e})")
        }
        Err(e) => format!("; {shown} may hold what it had written ({e})"),
    }
}

/// "Starting backup using postgres method for server pg in …/base/ID".
fn backup_id_of(output: &str) -> Option<String> {
    output
        .lines()
        .find(|l| l.starts_with("Starting backup using"))
        .and_then(|l| l.rsplit('/').next())
        .map(|id| id.trim().to_string())
        .filter(|id| is_name(id))
}

/// SIGTERM to the process group, SIGKILL after the grace period; waits
/// for the leader.
async fn stop_group(pgid: i32, child: &mut tokio::process::Child) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    // What the leader started and left behind.
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// A process group a stopped agent left running, if it is still Barman's.
fn stop_orphan(pgid: i32) {
    if pgid <= 1 {
        return;
    }
    let cmdline = std::fs::read(format!("/proc/{pgid}/cmdline")).unwrap_or_default();
    if String::from_utf8_lossy(&cmdline).contains("barman") {
        tracing::warn!(
            pgid,
            "stopping a Barman job's processes left by the last stop"
        );
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_stays_below_100_while_working() {
        assert_eq!(percent(0, 0), 0);
        assert_eq!(percent(50, 100), 50);
        assert_eq!(percent(150, 100), 99);
        assert_eq!(percent(u64::MAX, 1), 99);
    }

    #[test]
    fn target_times_are_one_value() {
        for good in [
            "2026-12-01 10:00:00+00",
            "2026-12-01T10:00:00.123Z",
            "2026-12-01 10:00:00",
        ] {
            assert!(checked_time(good).is_ok(), "{good}");
        }
        for bad in ["now", "2026-12-01; rm -rf /", "--target-xid=3", "2026"] {
            assert!(checked_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn outputs_are_read() {
        assert_eq!(
            backup_id_of(
                "x\nStarting backup using postgres method for server pg in /b/pg/base/20261201T055425\n"
            ),
            Some("20261201T055425".into())
        );
        assert_eq!(failure("a\nERROR: boom\nb\n"), "ERROR: boom");
        assert_eq!(failure("a\nb\n"), "a\nb");
        assert_eq!(new_id().unwrap().len(), 32);
    }
}
