//! Connections to the managed PostgreSQL instance, pooled per database.
//!
//! Plugins never see connection parameters: they name a database (or none,
//! for the configured one) and the pool connects with the operator's
//! credentials. Every connection is tagged `application_name = 'dbagent'` and
//! runs with the configured statement timeout.

use super::proc_sampler::Sampler;
use crate::config::Postgresql;
use crate::runtime::bindings::dbagent::api::postgres::PgError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The application_name of the agent's own connections (the activity plugin
/// leaves them out of its listings).
pub const APPLICATION_NAME: &str = "dbagent";

/// The application_name of a job's connections: `dbagent-job-<job id>`, so
/// that a statement left running by an agent that died can be found.
pub fn job_application_name(job: &str) -> String {
    format!("{APPLICATION_NAME}-job-{job}")
}

/// Database names are identifiers: PostgreSQL truncates them at 63 bytes.
const MAX_DATABASE_NAME: usize = 63;

#[derive(Clone)]
pub struct PgPool {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Postgresql,
    idle: Mutex<HashMap<String, Vec<tokio_postgres::Client>>>,
    sampler: Arc<Sampler>,
}

/// A connection borrowed from the pool; it goes back when dropped unless it broke.
pub struct PooledClient {
    client: Option<tokio_postgres::Client>,
    database: String,
    pool: Arc<Inner>,
}

impl std::ops::Deref for PooledClient {
    type Target = tokio_postgres::Client;
    fn deref(&self) -> &Self::Target {
        // Only `drop` takes the client out.
        self.client
            .as_ref()
            .unwrap_or_else(|| unreachable!("client taken before drop"))
    }
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if client.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.pool.idle.lock() {
            let list = idle.entry(std::mem::take(&mut self.database)).or_default();
            if list.len() < self.pool.settings.pool_size {
                list.push(client);
            }
        }
    }
}

impl PgPool {
    pub fn new(settings: Postgresql, sampler: Arc<Sampler>) -> PgPool {
        PgPool {
            inner: Arc::new(Inner {
                settings,
                idle: Mutex::new(HashMap::new()),
                sampler,
            }),
        }
    }

    /// A connection to `database` (the configured one when `None`).
    pub async fn get(&self, database: Option<&str>) -> Result<PooledClient, PgError> {
        let database = database.unwrap_or(&self.inner.settings.dbname);
        check_database_name(database)?;
        let reused = self
            .inner
            .idle
            .lock()
            .ok()
            .and_then(|mut idle| idle.get_mut(database).and_then(Vec::pop));
        let client = match reused {
            Some(client) if !client.is_closed() => client,
            _ => self.connect(database).await?,
        };
        Ok(PooledClient {
            client: Some(client),
            database: database.to_string(),
            pool: Arc::clone(&self.inner),
        })
    }

    /// A connection to `database` with `sql` prepared on it. A pooled
    /// connection found closed at that point (the server restarted since it
    /// was last used) is replaced by a new one once: nothing had been sent
    /// on it, so nothing runs twice.
    pub async fn prepare(
        &self,
        database: Option<&str>,
        sql: &str,
    ) -> Result<(PooledClient, tokio_postgres::Statement), PgError> {
        let client = self.get(database).await?;
        match client.prepare(sql).await {
            Ok(statement) => Ok((client, statement)),
            Err(e) if e.is_closed() => {
                tracing::debug!("pooled PostgreSQL connection was closed; reconnecting");
                drop(client);
                let client = self.get(database).await?;
                let statement = client
                    .prepare(sql)
                    .await
                    .map_err(|e| super::postgres::pg_error(&e))?;
                Ok((client, statement))
            }
            Err(e) => Err(super::postgres::pg_error(&e)),
        }
    }

    /// The database a plugin means by `database` (the configured one when `None`).
    pub fn database_name<'a>(&'a self, database: Option<&'a str>) -> &'a str {
        database.unwrap_or(&self.inner.settings.dbname)
    }

    /// A connection of its own for a job, outside the pool, with no
    /// statement timeout (the job's deadline bounds it), and its backend pid
    /// so that the job can be cancelled.
    pub async fn connect_for_job(
        &self,
        database: &str,
        job: &str,
    ) -> Result<(tokio_postgres::Client, i32), PgError> {
        check_database_name(database)?;
        let client = self
            .connect_with(database, Duration::ZERO, &job_application_name(job))
            .await?;
        let pid = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| super::postgres::pg_error(&e))?
            .get(0);
        Ok((client, pid))
    }

    async fn connect(&self, database: &str) -> Result<tokio_postgres::Client, PgError> {
        let client = self
            .connect_with(
                database,
                self.inner.settings.statement_timeout,
                APPLICATION_NAME,
            )
            .await?;
        if let Ok(row) = client.query_one("SELECT pg_backend_pid()", &[]).await {
            let pid: i32 = row.get(0);
            let sampler = Arc::clone(&self.inner.sampler);
            tokio::task::spawn_blocking(move || sampler.note_backend_pid(pid));
        }
        Ok(client)
    }

    async fn connect_with(
        &self,
        database: &str,
        statement_timeout: Duration,
        application_name: &str,
    ) -> Result<tokio_postgres::Client, PgError> {
        let s = &self.inner.settings;
        let mut config = tokio_postgres::Config::new();
        if s.host.starts_with('/') {
            config.host_path(&s.host);
        } else {
            config.host(&s.host);
        }
        config
            .port(s.port)
            .user(&s.user)
            .dbname(database)
            .application_name(application_name)
            .connect_timeout(s.connect_timeout)
            .options(format!(
                "-c statement_timeout={}",
                statement_timeout.as_millis()
            ));
        if let Some(password) = &s.password {
            config.password(password);
        }
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
            let mut error = super::postgres::pg_error(&e);
            if e.as_db_error().is_none() {
                error.sqlstate = "08001".into();
                error.message = format!(
                    "cannot connect to PostgreSQL at {}:{}: {}",
                    s.host, s.port, error.message
                );
            }
            error
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("PostgreSQL connection ended: {e}");
            }
        });
        tracing::debug!(database, "connected to PostgreSQL");
        Ok(client)
    }
}

/// A name PostgreSQL could hold: anything else is "does not exist" without
/// asking the server.
fn check_database_name(database: &str) -> Result<(), PgError> {
    if database.is_empty() || database.len() > MAX_DATABASE_NAME || database.contains('\0') {
        return Err(PgError {
            sqlstate: "3D000".into(),
            message: format!("database \"{}\" does not exist", database.replace('\0', "")),
            detail: None,
            hint: None,
        });
    }
    Ok(())
}
