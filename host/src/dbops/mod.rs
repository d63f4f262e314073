//! Long operations on the managed PostgreSQL instance, run by the host and
//! followed as operations (`/api/operations/:id`): point-in-time restore
//! ([`pitr`]), periodic backups ([`periodic`]) and major upgrades
//! ([`upgrade`]). Each ends `finished` or `error` with the step that failed,
//! and leaves the server running — on its old data when something failed.

pub mod periodic;
pub mod pitr;
pub mod upgrade;

use crate::capabilities::barman::jobs::Jobs;
use crate::capabilities::control::Control;
use crate::capabilities::databases::Operations;
use crate::capabilities::notifications::Notifier;
use crate::capabilities::operations::{new_id, now};
use crate::capabilities::postgres::pool::PgPool;
use crate::config::Postgresql;
use crate::config::databases::{Connection, ManagedDatabase};
use crate::store::Store;
use crate::wit::databases::UpgradePlan;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::capabilities::databases::OpRefusal as Refusal;

/// The user operations are notified as.
const NOTIFY_AS: &str = "dbagent";

pub struct DbOps {
    control: Arc<Control>,
    barman: Arc<Jobs>,
    store: Store,
    /// The managed instance's pool.
    pool: Arc<PgPool>,
    settings: Postgresql,
    notifier: Arc<Notifier>,
    /// One restore or upgrade of the instance at a time.
    instance: Arc<tokio::sync::Mutex<()>>,
}

impl DbOps {
    pub fn new(
        control: Arc<Control>,
        barman: Arc<Jobs>,
        store: Store,
        pool: Arc<PgPool>,
        settings: Postgresql,
        notifier: Arc<Notifier>,
    ) -> Arc<DbOps> {
        Arc::new(DbOps {
            control,
            barman,
            store,
            pool,
            settings,
            notifier,
            instance: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// A new `pending` operation of `kind` on the database `database_id`.
    async fn create_operation(&self, database_id: &str, kind: &str) -> Result<String, Refusal> {
        let id = new_id().map_err(Refusal::Failed)?;
        let store = self.store.clone();
        let (op, db, kind) = (id.clone(), database_id.to_string(), kind.to_string());
        tokio::task::spawn_blocking(move || store.create_operation(&op, &db, &kind, &now()))
            .await
            .map_err(|e| Refusal::Failed(e.to_string()))?
            .map_err(|e| Refusal::Failed(format!("state store: {e:#}")))?;
        Ok(id)
    }

    /// Moves operation `id` to `status`; failures to write are logged (the
    /// work itself went on).
    async fn set_status(&self, id: &str, status: &str, error: Option<&str>) {
        let store = self.store.clone();
        let (op, status, error) = (
            id.to_string(),
            status.to_string(),
            error.map(str::to_string),
        );
        let written = tokio::task::spawn_blocking(move || {
            store.update_operation(&op, &status, error.as_deref(), &now())
        })
        .await;
        if !matches!(written, Ok(Ok(_))) {
            tracing::error!(
                operation = id,
                "cannot record the operation's status: {written:?}"
            );
        }
    }

    async fn notify(&self, message: &str) {
        self.notifier.notify(NOTIFY_AS, message).await;
    }

    /// The data directory and the `pg_ctl` of the managed instance, which
    /// an operation that stops and starts it needs.
    fn instance_paths(&self) -> Result<(std::path::PathBuf, std::path::PathBuf), Refusal> {
        let settings = self.control.settings();
        let Some(data) = settings.data_directory else {
            return Err(Refusal::Unprocessable(
                "database",
                "the agent needs [postgresql] data_directory to stop and start the server".into(),
            ));
        };
        let pg_ctl = self
            .control
            .program()
            .map_err(|e| Refusal::Unprocessable("database", e))?;
        Ok((data, pg_ctl))
    }

    /// Waits until the instance accepts connections and is out of
    /// recovery, within `within`.
    async fn wait_until_primary(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            match self
                .pool
                .get(None, Instant::now() + Duration::from_secs(5))
                .await
            {
                Ok(conn) => match conn
                    .client()
                    .query_one("SELECT pg_is_in_recovery()", &[])
                    .await
                {
                    Ok(row) if !row.get::<_, bool>(0) => return Ok(()),
                    Ok(_) => last = "still in recovery".into(),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.message,
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(format!(
            "the server did not open within {} s: {last}",
            within.as_secs()
        ))
    }
}

/// Whether a managed database is the `[postgresql]` instance the agent
/// stops and starts.
fn is_the_instance(db: &ManagedDatabase) -> bool {
    db.engine == "postgresql" && matches!(db.connection, Connection::Managed)
}

/// What the databases capability calls: the operations of a shared `DbOps`.
impl Operations for Arc<DbOps> {
    fn backup_method(&self, db: &ManagedDatabase) -> Result<(), Refusal> {
        periodic::backup_method(db)
    }

    fn reschedule(&self, db: &ManagedDatabase) {
        DbOps::reschedule(self, db);
    }

    fn start_pitr<'a>(
        &'a self,
        db: &'a ManagedDatabase,
        database_id: &'a str,
        restore_time: &'a str,
    ) -> BoxFuture<'a, Result<String, Refusal>> {
        Box::pin(DbOps::start_pitr(self, db, database_id, restore_time))
    }

    fn start_upgrade<'a>(
        &'a self,
        db: &'a ManagedDatabase,
        database_id: &'a str,
    ) -> BoxFuture<'a, Result<UpgradePlan, Refusal>> {
        Box::pin(async move {
            let plan = DbOps::start_upgrade(self, db, database_id).await?;
            Ok(UpgradePlan {
                operation_id: plan.operation_id,
                version: plan.version,
                major: plan.major,
                minor: plan.minor,
                patch: plan.patch,
                created_at: plan.created_at,
            })
        })
    }
}
