//! Connections to the managed PostgreSQL instance: bounded pools per
//! database, with each connection's prepared statements kept.
//!
//! Plugins never see connection parameters: they name a database (or none,
//! for the configured one) and the pool connects with the operator's
//! credentials. Two pools serve each database:
//!
//! - requests share at most `[postgresql] pool_size` connections in all,
//!   whatever the database (a connection idle in one database is closed to
//!   make room for another), tagged `application_name = 'dbagent'`, with the
//!   configured statement timeout;
//! - jobs (a VACUUM at 03:00, the dashboard collector) share at most
//!   `job_pool_size` connections without a statement timeout (the job's
//!   deadline bounds them), each tagged `dbagent-job-<job id>` while a job
//!   holds it, so that a statement left running by an agent that died can
//!   be found at start-up.
//!
//! A request that finds every connection busy waits for one within its
//! plugin's deadline, never opening one past the bound: an agent must never
//! be what exhausts its server's connections. Connections idle for
//! `pool_idle_timeout_secs` are closed; a connection the server closed (a
//! restart) is replaced, its statement cache with it.

use crate::capabilities::system::sampler::Sampler;
use crate::config::Postgresql;
use crate::wit::postgres::PgError;
use deadpool::managed::{self, Metrics, Object, RecycleError, RecycleResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The application_name of the agent's own request connections (the
/// activity plugin leaves them out of its listings).
pub const APPLICATION_NAME: &str = "dbagent";

/// The application_name of a job's connection while the job holds it.
pub fn job_application_name(job: &str) -> String {
    format!("{APPLICATION_NAME}-job-{job}")
}

/// Database names are identifiers: PostgreSQL truncates them at 63 bytes.
const MAX_DATABASE_NAME: usize = 63;

/// Prepared statements kept per connection; past it the cache starts over.
const MAX_CACHED_STATEMENTS: usize = 256;

/// Pools kept for databases without connections before they are forgotten
/// at once rather than at the next sweep (database names come from URLs).
const MAX_IDLE_POOLS: usize = 64;

/// How often idle connections and unused pools are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Whose connections: requests' or jobs'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Use {
    Request,
    Job,
}

/// One open connection and what was prepared on it.
pub struct Connection {
    client: tokio_postgres::Client,
    statements: HashMap<String, tokio_postgres::Statement>,
    backend_pid: i32,
    /// The place this connection takes in its bound; freed when it closes.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }

    pub fn backend_pid(&self) -> i32 {
        self.backend_pid
    }

    /// `sql` prepared on this connection: once, then from the cache (one
    /// round trip per query instead of two).
    pub async fn prepare_cached(
        &mut self,
        sql: &str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        if self.statements.len() >= MAX_CACHED_STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Forgets a statement the server no longer knows the way it was
    /// prepared (its tables changed: "cached plan must not change result type").
    pub fn forget(&mut self, sql: &str) {
        self.statements.remove(sql);
    }
}

/// A connection borrowed from a pool; it goes back when dropped.
pub type PooledConnection = Object<Manager>;

pub struct Manager {
    database: String,
    usage: Use,
    shared: Weak<Shared>,
}

impl managed::Manager for Manager {
    type Type = Connection;
    type Error = PgError;

    async fn create(&self) -> Result<Connection, PgError> {
        let shared = self.shared.upgrade().ok_or_else(|| PgError {
            sqlstate: "08003".into(),
            message: "the agent is shutting down".into(),
            detail: None,
            hint: None,
        })?;
        let slots = match self.usage {
            Use::Request => &shared.request_slots,
            Use::Job => &shared.job_slots,
        };
        let slot = match Arc::clone(slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Every place is taken: connections idle in other databases
                // give theirs up, then wait (bounded by the caller's deadline).
                shared.close_idle_except(self.usage, &self.database);
                Arc::clone(slots)
                    .acquire_owned()
                    .await
                    .map_err(|_| busy(0))?
            }
        };
        let (statement_timeout, application_name) = match self.usage {
            Use::Request => (shared.settings.statement_timeout, APPLICATION_NAME),
            Use::Job => (Duration::ZERO, "dbagent-job"),
        };
        let client = shared
            .connect(&self.database, statement_timeout, application_name)
            .await?;
        let backend_pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| super::error::pg_error(&e))?
            .get(0);
        let sampler = Arc::clone(&shared.sampler);
        tokio::task::spawn_blocking(move || sampler.note_backend_pid(backend_pid));
        Ok(Connection {
            client,
            statements: HashMap::new(),
            backend_pid,
            _slot: slot,
        })
    }

    async fn recycle(&self, connection: &mut Connection, _: &Metrics) -> RecycleResult<PgError> {
        if connection.client.is_closed() {
            return Err(RecycleError::message("the server closed the connection"));
        }
        Ok(())
    }
}

type Pool = managed::Pool<Manager>;

/// The connections to one PostgreSQL instance (one target).
pub struct PgPool {
    shared: Arc<Shared>,
}

struct Shared {
    /// Handed to each pool's manager, which must not keep this alive.
    me: Weak<Shared>,
    settings: Postgresql,
    sampler: Arc<Sampler>,
    request_slots: Arc<Semaphore>,
    job_slots: Arc<Semaphore>,
    pools: Mutex<HashMap<(Use, String), Pool>>,
}

impl PgPool {
    pub fn new(settings: Postgresql, sampler: Arc<Sampler>) -> PgPool {
        let shared = Arc::new_cyclic(|me| Shared {
            me: me.clone(),
            request_slots: Arc::new(Semaphore::new(settings.pool_size)),
            job_slots: Arc::new(Semaphore::new(settings.job_pool_size)),
            settings,
            sampler,
            pools: Mutex::new(HashMap::new()),
        });
        PgPool { shared }
    }

    /// Closes idle connections and forgets unused pools every little while.
    pub fn spawn_sweeper(&self) {
        let shared = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            loop {
                every.tick().await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                shared.sweep();
            }
        });
    }

    /// A request connection to `database` (the configured one when `None`),
    /// waiting for one to be free until `deadline`.
    pub async fn get(
        &self,
        database: Option<&str>,
        deadline: Instant,
    ) -> Result<PooledConnection, PgError> {
        self.checkout(Use::Request, database, deadline).await
    }

    /// A job connection to `database`, without a statement timeout, named
    /// after `job` while the job holds it; its backend pid is what
    /// cancelling the job cancels.
    pub async fn get_for_job(
        &self,
        database: Option<&str>,
        job: &str,
        deadline: Instant,
    ) -> Result<PooledConnection, PgError> {
        let connection = self.checkout(Use::Job, database, deadline).await?;
        connection
            .client
            .execute(
                "SELECT set_config('application_name', $1, false)",
                &[&job_application_name(job)],
            )
            .await
            .map_err(|e| super::error::pg_error(&e))?;
        Ok(connection)
    }

    async fn checkout(
        &self,
        usage: Use,
        database: Option<&str>,
        deadline: Instant,
    ) -> Result<PooledConnection, PgError> {
        let database = self.database_name(database);
        check_database_name(database)?;
        let pool = self.shared.pool(usage, database)?;
        match tokio::time::timeout_at(deadline.into(), pool.get()).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(managed::PoolError::Backend(e))) => Err(e),
            Ok(Err(e)) => Err(PgError {
                sqlstate: "08006".into(),
                message: format!("cannot get a PostgreSQL connection: {e}"),
                detail: None,
                hint: None,
            }),
            Err(_) => Err(busy(match usage {
                Use::Request => self.shared.settings.pool_size,
                Use::Job => self.shared.settings.job_pool_size,
            })),
        }
    }

    /// Each open pool's use: (requests or jobs, database, connections open,
    /// of which idle, bound, callers waiting).
    pub fn usage(&self) -> Vec<(&'static str, String, usize, usize, usize, usize)> {
        let pools = self
            .shared
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pools
            .iter()
            .map(|((usage, database), pool)| {
                let status = pool.status();
                (
                    match usage {
                        Use::Request => "requests",
                        Use::Job => "jobs",
                    },
                    database.clone(),
                    status.size,
                    status.available,
                    status.max_size,
                    status.waiting,
                )
            })
            .collect()
    }

    /// The port of the server this pool connects to.
    pub fn port(&self) -> u16 {
        self.shared.settings.port
    }

    /// The database a plugin means by `database` (the configured one when `None`).
    pub fn database_name<'a>(&'a self, database: Option<&'a str>) -> &'a str {
        database.unwrap_or(&self.shared.settings.dbname)
    }
}

impl Shared {
    fn pool(&self, usage: Use, database: &str) -> Result<Pool, PgError> {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (usage, database.to_string());
        if let Some(pool) = pools.get(&key) {
            return Ok(pool.clone());
        }
        if pools.len() >= MAX_IDLE_POOLS {
            pools.retain(|_, pool| in_use(pool));
        }
        let manager = Manager {
            database: database.to_string(),
            usage,
            shared: self.weak_self(),
        };
        let max_size = match usage {
            Use::Request => self.settings.pool_size,
            Use::Job => self.settings.job_pool_size,
        };
        let pool = Pool::builder(manager)
            .max_size(max_size)
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| PgError {
                sqlstate: "58000".into(),
                message: format!("cannot create a connection pool: {e}"),
                detail: None,
                hint: None,
            })?;
        pools.insert(key, pool.clone());
        Ok(pool)
    }

    /// Closes the idle connections of `usage` held for databases other than
    /// `database`, so that their places can serve it.
    fn close_idle_except(&self, usage: Use, database: &str) {
        let pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        for ((u, db), pool) in pools.iter() {
            if *u == usage && db != database {
                pool.retain(|_, _| false);
            }
        }
    }

    /// Closes connections idle too long and forgets pools left empty.
    fn sweep(&self) {
        let idle = self.settings.pool_idle_timeout;
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        for pool in pools.values() {
            pool.retain(|_, metrics| metrics.last_used() < idle);
        }
        pools.retain(|_, pool| in_use(pool));
    }

    fn weak_self(&self) -> Weak<Shared> {
        self.me.clone()
    }

    async fn connect(
        &self,
        database: &str,
        statement_timeout: Duration,
        application_name: &str,
    ) -> Result<tokio_postgres::Client, PgError> {
        let s = &self.settings;
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
            // JIT compiles plans for seconds on big catalogs; the agent's
            // catalog queries gain nothing from it.
            .options(format!(
                "-c statement_timeout={} -c jit=off",
                statement_timeout.as_millis()
            ));
        if let Some(password) = &s.password {
            config.password(password);
        }
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
            let mut error = super::error::pg_error(&e);
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
        tracing::debug!(database, application_name, "connected to PostgreSQL");
        Ok(client)
    }
}

/// A pool that holds a connection or has someone waiting for one.
fn in_use(pool: &Pool) -> bool {
    let status = pool.status();
    status.size > 0 || status.waiting > 0
}

/// Every connection of the pool stayed busy until the caller's deadline.
fn busy(bound: usize) -> PgError {
    PgError {
        sqlstate: "53300".into(),
        message: format!(
            "all {bound} connections of the agent to PostgreSQL are busy; try again later"
        ),
        detail: None,
        hint: Some("[postgresql] pool_size bounds them".into()),
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
