//! Runs plugins' jobs when they are due.
//!
//! The schedule lives in the state store, so jobs survive restarts: a job
//! due while the agent was down runs at start-up, and one interrupted by a
//! crash runs again. A job that traps or overruns its deadline is recorded
//! as failed with the reason; the scheduler carries on.

use super::capability::{job_of, now_ms};
use super::service::Service;
use super::store::JobRow;
use crate::capabilities::postgres;
use crate::wit::job_types::Job;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Runs plugins' code for the scheduler (the plugin runtime does).
pub trait Runner: Send + Sync + 'static {
    /// Calls the start-up hook of every plugin that has one.
    fn init_all(&self) -> impl Future<Output = ()> + Send;
    /// Runs `job` of the plugin named `plugin`.
    fn run(&self, plugin: &str, job: Job) -> impl Future<Output = Outcome> + Send;
}

/// How one run of a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed {
        reason: String,
        /// It ran past its deadline (what it started on the server may still run).
        timed_out: bool,
    },
}

/// The longest the scheduler sleeps without looking at the store again.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// How long one-shot jobs that ended stay listed (e.g. by the maintenance
/// plugin's `/scheduled` routes) before they are forgotten.
const KEEP_FINISHED: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often ended jobs are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub fn spawn<R: Runner>(service: Arc<Service>, runner: Arc<R>) {
    tokio::spawn(async move {
        let store = service.store.clone();
        match tokio::task::spawn_blocking(move || store.interrupted_job_ids()).await {
            Ok(Ok(ids)) if !ids.is_empty() => settle_orphans(&service.postgres, &ids).await,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("cannot list interrupted jobs: {e:#}"),
            Err(e) => tracing::error!("cannot list interrupted jobs: {e}"),
        }
        let store = service.store.clone();
        match tokio::task::spawn_blocking(move || store.requeue_interrupted_jobs(now_ms())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::warn!(jobs = n, "jobs interrupted by the last stop run again"),
            Ok(Err(e)) => tracing::error!("cannot requeue interrupted jobs: {e:#}"),
            Err(e) => tracing::error!("cannot requeue interrupted jobs: {e}"),
        }
        runner.init_all().await;
        let mut last_prune: Option<std::time::Instant> = None;
        loop {
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                prune(&service).await;
                last_prune = Some(std::time::Instant::now());
            }
            let sleep = match run_due(&service, &runner).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!("scheduler: {e:#}");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = service.changed.notified() => {}
            }
        }
    });
}

/// How long an orphaned statement may take to end after its cancel, then after its termination.
const ORPHAN_GRACE: Duration = Duration::from_secs(10);

/// Ends the statements that jobs of a dead agent left running on the
/// server (PostgreSQL runs a VACUUM to its end even once its client is
/// gone), so that running those jobs again never runs them twice at once.
/// Each is cancelled, then terminated if it outlives [`ORPHAN_GRACE`].
async fn settle_orphans(postgres: &postgres::Service, job_ids: &[String]) {
    let names: Vec<String> = job_ids
        .iter()
        .map(|id| postgres::pool::job_application_name(id))
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let connection = match postgres.managed().get(None, deadline).await {
        Ok(connection) => connection,
        Err(e) => {
            // A server that is down runs none of their statements either.
            tracing::warn!(
                "cannot look for statements of interrupted jobs: {}",
                e.message
            );
            return;
        }
    };
    let client = connection.client();
    const FIND: &str =
        "SELECT pid, application_name FROM pg_stat_activity WHERE application_name = ANY($1)";
    for signal in ["pg_cancel_backend", "pg_terminate_backend"] {
        let orphans = match client.query(FIND, &[&names]).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!("cannot look for statements of interrupted jobs: {e}");
                return;
            }
        };
        if orphans.is_empty() {
            return;
        }
        for row in &orphans {
            let (pid, name): (i32, String) = (row.get(0), row.get(1));
            tracing::warn!(pid, application_name = %name, "a job interrupted by the last stop still runs on the server: {signal}");
            let sql = format!("SELECT {signal}($1)");
            if let Err(e) = client.query_one(sql.as_str(), &[&pid]).await {
                tracing::warn!(pid, "{signal} failed: {e}");
            }
        }
        let gone_by = std::time::Instant::now() + ORPHAN_GRACE;
        while std::time::Instant::now() < gone_by {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match client.query(FIND, &[&names]).await {
                Ok(rows) if rows.is_empty() => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("cannot look for statements of interrupted jobs: {e}");
                    return;
                }
            }
        }
    }
    tracing::error!(
        "statements of interrupted jobs are still running on the server; their jobs run again beside them"
    );
}

async fn prune(service: &Service) {
    let store = service.store.clone();
    let before = now_ms() - i64::try_from(KEEP_FINISHED.as_millis()).unwrap_or(i64::MAX);
    match tokio::task::spawn_blocking(move || store.prune_finished_jobs(before)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(jobs = n, "forgot one-shot jobs that ended over 30 days ago"),
        Ok(Err(e)) => tracing::error!("cannot prune ended jobs: {e:#}"),
        Err(e) => tracing::error!("cannot prune ended jobs: {e}"),
    }
}

/// Starts every due job; returns how long to wait for the next one.
async fn run_due<R: Runner>(service: &Arc<Service>, runner: &Arc<R>) -> anyhow::Result<Duration> {
    let store = service.store.clone();
    let now = now_ms();
    let due = tokio::task::spawn_blocking(move || store.due_jobs(now)).await??;
    for job in due {
        let store = service.store.clone();
        let id = job.id.clone();
        let started = tokio::task::spawn_blocking(move || store.start_job(&id, now)).await??;
        if !started {
            continue;
        }
        let (service, runner) = (Arc::clone(service), Arc::clone(runner));
        tokio::spawn(async move { run_one(&service, &*runner, job).await });
    }
    let store = service.store.clone();
    let next = tokio::task::spawn_blocking(move || store.next_job_due()).await??;
    Ok(match next {
        Some(at) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(MAX_SLEEP),
        None => MAX_SLEEP,
    })
}

async fn run_one<R: Runner>(service: &Service, runner: &R, job: JobRow) {
    let started = std::time::Instant::now();
    let outcome = runner.run(&job.plugin, job_of(job.clone())).await;
    crate::telemetry::get().job(
        &job.plugin,
        &job.name,
        if matches!(outcome, Outcome::Done) {
            "done"
        } else {
            "failed"
        },
        started.elapsed(),
    );
    // The run is over, but a statement it started may still run on the
    // server (its deadline passed while PostgreSQL worked): cancel it.
    let pids = service.postgres.job_finished(&job.id);
    let error = match outcome {
        Outcome::Done => None,
        Outcome::Failed { reason, timed_out } => {
            if timed_out && !pids.is_empty() {
                service.postgres.cancel_backends(&job.id, &pids).await;
            }
            Some(reason)
        }
    };
    if let Some(reason) = &error {
        tracing::warn!(plugin = %job.plugin, job = %job.name, id = %job.id, "job failed: {reason}");
    } else {
        tracing::debug!(plugin = %job.plugin, job = %job.name, id = %job.id, "job done");
    }
    // A periodic job keeps its cadence, but never catches up on missed runs.
    let next_run = job
        .every_ms
        .map(|every| (job.next_run.unwrap_or_else(now_ms) + every).max(now_ms()));
    let store = service.store.clone();
    let id = job.id.clone();
    match tokio::task::spawn_blocking(move || store.finish_job(&id, error.as_deref(), next_run))
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(id = %job.id, "cannot record the job's outcome: {e:#}"),
        Err(e) => tracing::error!(id = %job.id, "cannot record the job's outcome: {e}"),
    }
    service.changed.notify_one();
}
