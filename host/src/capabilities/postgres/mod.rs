//! The `postgres` interface: typed queries on a PostgreSQL instance, on a
//! pooled connection with its statements prepared once.
//!
//! The capability serves named targets, each with its own pool and the
//! operator's credentials: today `managed`, the `[postgresql]` instance.
//! The host binds a plugin call to one target; the guest only names a
//! database in it, never a server or a credential.

pub mod error;
pub mod pool;
pub mod values;

use super::call::Call;
use crate::config::databases::Connection;
use crate::config::{Config, Postgresql};
use crate::wit::postgres::{Host, PgError, RowSet, Statement as BatchStatement, Value};
use error::{pg_error, source_message};
use pool::{PgPool, PooledConnection};
use postgres_types::ToSql;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_postgres::Statement;
use values::{Cell, Param};
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "postgres";

/// The target of the `[postgresql]` instance, which the temBoard areas serve.
pub const MANAGED: &str = "managed";

/// The pools of every target, and the backends jobs run on.
pub struct Service {
    targets: HashMap<String, Arc<PgPool>>,
    /// The backend pids of each running job, to cancel what it runs.
    running: RunningBackends,
}

impl Service {
    /// The targets of `config`: `managed` (`[postgresql]`), and each
    /// PostgreSQL database of `[databases]` with a connection of its own,
    /// named by its resource id (one that is `managed` shares that pool).
    pub fn new(config: &Config, sampler: &Arc<super::system::sampler::Sampler>) -> Service {
        let pool = |settings: &Postgresql| {
            let pool = Arc::new(PgPool::new(settings.clone(), Arc::clone(sampler)));
            pool.spawn_sweeper();
            pool
        };
        let managed = pool(&config.postgresql);
        let mut targets = HashMap::from([(MANAGED.to_string(), Arc::clone(&managed))]);
        for db in config
            .databases
            .iter()
            .filter(|db| db.engine == "postgresql")
        {
            let target = match &db.connection {
                Connection::Managed => Arc::clone(&managed),
                Connection::Server {
                    host,
                    port,
                    user,
                    password,
                    dbname,
                } => pool(&Postgresql {
                    host: host.clone(),
                    port: *port,
                    user: user
                        .clone()
                        .unwrap_or_else(|| config.postgresql.user.clone()),
                    password: password.clone(),
                    dbname: dbname.clone().unwrap_or_else(|| "postgres".into()),
                    ..config.postgresql.clone()
                }),
            };
            targets.insert(db.resource_id.clone(), target);
        }
        Service {
            targets,
            running: RunningBackends::default(),
        }
    }

    /// The pool of target `name`.
    pub fn target(&self, name: &str) -> Option<&Arc<PgPool>> {
        self.targets.get(name)
    }

    /// The pool of the `[postgresql]` instance.
    pub fn managed(&self) -> &Arc<PgPool> {
        self.targets
            .get(MANAGED)
            .unwrap_or_else(|| unreachable!("the managed target is made in Service::new"))
    }

    /// Forgets a finished job; returns the backends it ran on.
    pub fn job_finished(&self, job: &str) -> Vec<i32> {
        self.running.remove(job)
    }

    /// Cancels, with `pg_cancel_backend`, the statements job `job` runs now.
    pub async fn cancel_job(&self, job: &str) {
        let pids = self.running.pids(job);
        self.cancel_backends(job, &pids).await;
    }

    /// Cancels the statements running on `pids` of the managed instance.
    pub async fn cancel_backends(&self, job: &str, pids: &[i32]) {
        for &pid in pids {
            let deadline = Instant::now() + Duration::from_secs(10);
            let cancelled = match self.managed().get(None, deadline).await {
                Ok(connection) => connection
                    .client()
                    .query_one("SELECT pg_cancel_backend($1)", &[&pid])
                    .await
                    .map(|row| row.get::<_, bool>(0))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.message),
            };
            match cancelled {
                Ok(done) => tracing::info!(job, pid, done, "cancelled the job's statement"),
                Err(e) => tracing::warn!(job, pid, "cannot cancel the job's statement: {e}"),
            }
        }
    }
}

/// The PostgreSQL backend pids of each running job: cancelling a job, or
/// its deadline passing, cancels what it runs on the server too.
#[derive(Default)]
struct RunningBackends {
    backends: Mutex<HashMap<String, Vec<i32>>>,
}

impl RunningBackends {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<i32>>> {
        self.backends.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, job: &str, pid: i32) {
        self.lock().entry(job.to_string()).or_default().push(pid);
    }

    fn pids(&self, job: &str) -> Vec<i32> {
        self.lock().get(job).cloned().unwrap_or_default()
    }

    fn remove(&self, job: &str) -> Vec<i32> {
        self.lock().remove(job).unwrap_or_default()
    }
}

/// What one plugin call holds: the target it is bound to and the
/// connection it uses now.
pub struct State {
    service: Arc<Service>,
    pool: Arc<PgPool>,
    job: Option<String>,
    deadline: Instant,
    /// The connection the call holds now, with its database.
    connection: Option<(String, PooledConnection)>,
}

impl State {
    /// A call bound to the target served by `pool`.
    pub fn new(service: &Arc<Service>, pool: &Arc<PgPool>, call: &Call) -> State {
        State {
            service: Arc::clone(service),
            pool: Arc::clone(pool),
            job: call.job.clone(),
            deadline: call.deadline,
            connection: None,
        }
    }

    /// Gives the call's connection back to its pool (the call is over).
    pub fn release(&mut self) {
        self.connection = None;
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::postgres::add_to_linker::<T, HasSelf<State>>(linker, get)
}

/// Longest SQL text a plugin may send; guards the server against runaway strings.
const MAX_SQL_BYTES: usize = 1024 * 1024;
/// Most parameters PostgreSQL accepts in one statement.
const MAX_PARAMS: usize = 65_535;
/// Most statements in one batch.
const MAX_BATCH: usize = 256;

impl Host for State {
    async fn query(
        &mut self,
        database: Option<String>,
        sql: String,
        params: Vec<Value>,
    ) -> Result<RowSet, PgError> {
        check_statement(&sql, &params)?;
        let mut attempt = 0;
        loop {
            let connection = self.connection(database.as_deref()).await?;
            let outcome = match connection.prepare_cached(&sql).await {
                Ok(statement) => run_query(connection.client(), &statement, &params).await,
                Err(e) => Err(QueryError::Server(e)),
            };
            match outcome {
                Ok(rows) => return Ok(rows),
                Err(QueryError::Decode(e)) => return Err(e),
                Err(QueryError::Server(e)) => {
                    attempt += 1;
                    if attempt > 1 || !self.recover(&sql, &e) {
                        return Err(pg_error(&e));
                    }
                }
            }
        }
    }

    async fn execute(
        &mut self,
        database: Option<String>,
        sql: String,
        params: Vec<Value>,
    ) -> Result<u64, PgError> {
        check_statement(&sql, &params)?;
        let mut attempt = 0;
        loop {
            let connection = self.connection(database.as_deref()).await?;
            let outcome = match connection.prepare_cached(&sql).await {
                Ok(statement) => {
                    let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
                    // The extended protocol runs exactly one statement outside
                    // any explicit transaction block, so VACUUM and ALTER
                    // SYSTEM work here.
                    connection
                        .client()
                        .execute(&statement, &as_sql(&bound))
                        .await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(n) => return Ok(n),
                Err(e) => {
                    attempt += 1;
                    // Only a statement that never reached the server runs again.
                    if attempt > 1 || !(e.is_closed() || is_stale_statement(&e)) {
                        return Err(pg_error(&e));
                    }
                    self.recover(&sql, &e);
                }
            }
        }
    }

    async fn query_batch(
        &mut self,
        database: Option<String>,
        statements: Vec<BatchStatement>,
    ) -> Result<Vec<Result<RowSet, PgError>>, PgError> {
        if statements.len() > MAX_BATCH {
            return Err(PgError {
                sqlstate: "54000".into(),
                message: format!("a batch holds at most {MAX_BATCH} statements"),
                detail: None,
                hint: None,
            });
        }
        for statement in &statements {
            check_statement(&statement.sql, &statement.params)?;
        }
        let connection = self.connection(database.as_deref()).await?;
        // Statements not yet prepared are prepared together, then every
        // query is sent at once: tokio-postgres pipelines requests issued
        // concurrently on one connection, so the batch costs one round trip
        // (two the first time) however many statements it holds.
        let mut prepared = Vec::with_capacity(statements.len());
        for statement in &statements {
            prepared.push(connection.prepare_cached(&statement.sql).await);
        }
        let client = connection.client();
        let runs = statements
            .iter()
            .zip(&prepared)
            .map(|(statement, prepared)| async move {
                match prepared {
                    Ok(prepared) => match run_query(client, prepared, &statement.params).await {
                        Ok(rows) => Ok(rows),
                        Err(QueryError::Server(e)) => Err(pg_error(&e)),
                        Err(QueryError::Decode(e)) => Err(e),
                    },
                    Err(e) => Err(pg_error(e)),
                }
            });
        let results = futures::future::join_all(runs).await;
        for (statement, result) in statements.iter().zip(&results) {
            if let Err(e) = result
                && (e.sqlstate == "0A000" || e.sqlstate == "26000")
            {
                connection.forget(&statement.sql);
            }
        }
        Ok(results)
    }
}

fn as_sql<'a>(bound: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// Why a query gave no rows: the server's error, or a column the host
/// cannot carry (which running it again would not change).
enum QueryError {
    Server(tokio_postgres::Error),
    Decode(PgError),
}

/// Runs a prepared query and turns its rows into WIT values.
async fn run_query(
    client: &tokio_postgres::Client,
    statement: &Statement,
    params: &[Value],
) -> Result<RowSet, QueryError> {
    let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
    let rows = client
        .query(statement, &as_sql(&bound))
        .await
        .map_err(QueryError::Server)?;
    let columns: Vec<String> = statement
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut values = Vec::with_capacity(columns.len());
        for (i, name) in columns.iter().enumerate() {
            let Cell(value) = row.try_get::<_, Cell>(i).map_err(|e| {
                QueryError::Decode(PgError {
                    sqlstate: "0A000".into(),
                    message: format!("column \"{name}\": {}", source_message(&e)),
                    detail: None,
                    hint: Some("cast the column to a supported type in SQL, e.g. col::text".into()),
                })
            })?;
            values.push(value);
        }
        out.push(values);
    }
    Ok(RowSet { columns, rows: out })
}

/// The server replanned a cached statement whose tables changed, or lost it.
fn is_stale_statement(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        let code = db.code().code();
        code == "26000" || (code == "0A000" && db.message().contains("cached plan"))
    })
}

impl State {
    /// The connection this call runs on. A call holds one connection at a
    /// time, kept from one statement to the next while they name the same
    /// database and given back before it waits for another (so that no call
    /// waits while holding one). A job's connection has no statement timeout
    /// and its backend is registered, so that cancelling the job cancels
    /// its statement.
    async fn connection(
        &mut self,
        database: Option<&str>,
    ) -> Result<&mut PooledConnection, PgError> {
        let pool = &self.pool;
        let name = pool.database_name(database);
        if self.connection.as_ref().is_some_and(|(db, _)| db != name) {
            self.connection = None;
        }
        if self.connection.is_none() {
            let name = name.to_string();
            let connection = match &self.job {
                None => pool.get(Some(&name), self.deadline).await?,
                Some(job) => {
                    let connection = pool.get_for_job(Some(&name), job, self.deadline).await?;
                    self.service.running.add(job, connection.backend_pid());
                    connection
                }
            };
            self.connection = Some((name, connection));
        }
        match &mut self.connection {
            Some((_, connection)) => Ok(connection),
            None => Err(PgError {
                sqlstate: "08003".into(),
                message: "the connection is gone".into(),
                detail: None,
                hint: None,
            }),
        }
    }

    /// Makes a failed statement worth one more try: drops a connection the
    /// server closed (a restart), or forgets a statement the server
    /// replanned. False when the failure is the statement's own.
    fn recover(&mut self, sql: &str, e: &tokio_postgres::Error) -> bool {
        if e.is_closed() {
            tracing::debug!("pooled PostgreSQL connection was closed; reconnecting");
            if let Some((_, closed)) = self.connection.take() {
                // Not back to the pool: it is dead.
                drop(deadpool::managed::Object::take(closed));
            }
            return true;
        }
        if is_stale_statement(e) {
            if let Some((_, connection)) = &mut self.connection {
                connection.forget(sql);
            }
            return true;
        }
        false
    }
}

fn check_statement(sql: &str, params: &[Value]) -> Result<(), PgError> {
    let problem = if sql.len() > MAX_SQL_BYTES {
        "statement text exceeds 1 MiB"
    } else if sql.contains('\0') {
        "statement text contains a NUL byte"
    } else if params.len() > MAX_PARAMS {
        "too many parameters"
    } else {
        return Ok(());
    };
    Err(PgError {
        sqlstate: "54000".into(),
        message: problem.into(),
        detail: None,
        hint: None,
    })
}
