//! The `databases` interface: the databases of `[databases.<id>]` as the
//! database-service API shows them (with a live status), their stored
//! settings, and their engine's actions, run by action modules bound to the
//! addressed database. Only the bundled database-service plugin may have it.
//!
//! Credentials stay in the host: a call names a database, the host finds its
//! connection and binds the action module's engine capability to it.

use super::operations::{new_id, now};
use super::postgres::pool::PgPool;
use super::{influxdb, mysql, postgres, redis};
use crate::config::Config;
use crate::config::databases::{Connection, ManagedDatabase};
use crate::store::{DatabaseRecord, Store};
use crate::wit::action_types::{ActionError, ActionInfo, ErrorKind};
use crate::wit::databases::{Database, Feature, Host, Instance, Refusal, UpgradePlan};
use futures::future::BoxFuture;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "databases";

/// The one plugin that may have this capability, and only bundled.
pub const RESERVED_TO: &str = "databases";

/// How long a status probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What an action module's engine capability is bound to for one call.
#[derive(Clone)]
pub enum Target {
    Postgres(Arc<PgPool>),
    Mysql(Arc<mysql::Target>),
    Redis(Arc<redis::Target>),
    Influxdb(Arc<influxdb::Target>),
    /// An engine the host has no capability for: its modules get nothing.
    None,
}

/// The engine services whose targets a managed database may use.
pub struct Engines<'a> {
    pub postgres: &'a postgres::Service,
    pub mysql: &'a mysql::Service,
    pub redis: &'a redis::Service,
    pub influxdb: &'a influxdb::Service,
}

/// Runs action modules; the plugin runtime does (it is set once the
/// modules are loaded).
pub trait ActionRunner: Send + Sync {
    /// The actions the modules of `engine` offer.
    fn actions(&self, engine: &str) -> Vec<ActionInfo>;
    /// Runs `name` of `engine` with `params`, bound to `target`.
    fn run<'a>(
        &'a self,
        engine: &'a str,
        target: Target,
        name: &'a str,
        params: &'a str,
    ) -> BoxFuture<'a, Result<String, ActionError>>;
}

/// Why an operation cannot start; the HTTP status follows the variant.
#[derive(Debug, Clone, PartialEq)]
pub enum OpRefusal {
    /// 400.
    BadRequest(String),
    /// 422: the field it is about and why.
    Unprocessable(&'static str, String),
    /// 500.
    Failed(String),
}

/// Long operations on the managed instance (`crate::dbops` runs them; it is
/// set once at start-up).
pub trait Operations: Send + Sync {
    /// Whether `db` can be backed up periodically (Err: why not).
    fn backup_method(&self, db: &ManagedDatabase) -> Result<(), OpRefusal>;
    /// Looks at `db`'s backup schedule now: its settings changed.
    fn reschedule(&self, db: &ManagedDatabase);
    /// Starts a point-in-time restore; the operation's id.
    fn start_pitr<'a>(
        &'a self,
        db: &'a ManagedDatabase,
        database_id: &'a str,
        restore_time: &'a str,
    ) -> BoxFuture<'a, Result<String, OpRefusal>>;
    /// Starts an upgrade to the next major version.
    fn start_upgrade<'a>(
        &'a self,
        db: &'a ManagedDatabase,
        database_id: &'a str,
    ) -> BoxFuture<'a, Result<UpgradePlan, OpRefusal>>;
}

pub struct Service {
    databases: Vec<Managed>,
    store: Store,
    /// The host name of the machine, for a database that lists no instances.
    hostname: String,
    runner: OnceLock<Weak<dyn ActionRunner>>,
    /// Restores, upgrades and periodic backups of the managed instance.
    ops: OnceLock<Arc<dyn Operations>>,
}

/// One managed database and what reaches it.
struct Managed {
    config: ManagedDatabase,
    target: Target,
}

impl Service {
    /// The managed databases of `config`; PostgreSQL ones get a target in
    /// `postgres` (the managed instance's pool, or a pool of their own).
    pub fn new(config: &Config, store: &Store, engines: &Engines<'_>, hostname: String) -> Service {
        let databases = config
            .databases
            .iter()
            .map(|db| Managed {
                target: target_of(db, engines),
                config: db.clone(),
            })
            .collect();
        Service {
            databases,
            store: store.clone(),
            hostname,
            runner: OnceLock::new(),
            ops: OnceLock::new(),
        }
    }

    /// Hands the service what runs long operations (once, at start-up).
    pub fn set_ops(&self, ops: Arc<dyn Operations>) {
        let _ = self.ops.set(ops);
    }

    fn ops(&self) -> Result<&Arc<dyn Operations>, Refusal> {
        self.ops
            .get()
            .ok_or_else(|| Refusal::Failed("database operations are not ready".into()))
    }

    /// The managed databases as configured.
    pub fn configured(&self) -> Vec<ManagedDatabase> {
        self.databases.iter().map(|d| d.config.clone()).collect()
    }

    /// Hands the service what runs action modules (once, after loading).
    pub fn set_runner(&self, runner: Weak<dyn ActionRunner>) {
        let _ = self.runner.set(runner);
    }

    fn runner(&self) -> Option<Arc<dyn ActionRunner>> {
        self.runner.get().and_then(Weak::upgrade)
    }

    /// The managed database named `id`: its resource id, or the id the
    /// agent gave it.
    async fn find(&self, id: &str) -> Option<&Managed> {
        if let Some(found) = self.databases.iter().find(|d| d.config.resource_id == id) {
            return Some(found);
        }
        let store = self.store.clone();
        let id = id.to_string();
        let resource_id = tokio::task::spawn_blocking(move || store.database_resource_id(&id))
            .await
            .ok()?
            .ok()??;
        self.databases
            .iter()
            .find(|d| d.config.resource_id == resource_id)
    }

    async fn record(&self, resource_id: &str) -> Result<DatabaseRecord, String> {
        let store = self.store.clone();
        let resource_id = resource_id.to_string();
        let fresh = new_id()?;
        tokio::task::spawn_blocking(move || store.database_record(&resource_id, &fresh, &now()))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("state store: {e:#}"))
    }

    /// The database as the API shows it, probed now.
    async fn describe(&self, db: &Managed) -> Result<Database, String> {
        let record = self.record(&db.config.resource_id).await?;
        let (status, version) = probe(&db.target).await;
        let instances = self.instances(db, &status).await;
        let engine = &db.config.engine;
        Ok(Database {
            id: record.id,
            resource_id: db.config.resource_id.clone(),
            app_name: db.config.app_name.clone(),
            created_at: record.created_at,
            encryption_at_rest: db.config.encryption_at_rest,
            features: db
                .config
                .features
                .iter()
                .map(|f| Feature {
                    name: f.name.clone(),
                    status: f.status.clone(),
                })
                .collect(),
            plan: db.config.plan.clone(),
            status,
            engine: engine.clone(),
            type_id: stable_id(&format!("type:{engine}")),
            version_id: if version.is_empty() {
                String::new()
            } else {
                stable_id(&format!("version:{engine}:{version}"))
            },
            readable_version: version,
            instances,
            periodic_backups_enabled: record.periodic_backups_enabled,
            periodic_backups_scheduled_at: record.periodic_backups_hours,
        })
    }

    /// The configured instances, each probed by a TCP connection; or, when
    /// none is configured, the server the connection reaches, with the
    /// database's own status.
    async fn instances(&self, db: &Managed, status: &str) -> Vec<Instance> {
        if db.config.instances.is_empty() {
            let (hostname, port) = match &db.config.connection {
                Connection::Server { host, port, .. } if !host.starts_with('/') => {
                    (host.clone(), *port)
                }
                Connection::Server { port, .. } => (self.hostname.clone(), *port),
                Connection::Managed => (self.hostname.clone(), self.managed_port(db)),
            };
            return vec![Instance {
                id: stable_id(&format!(
                    "instance:{}:{hostname}:{port}",
                    db.config.resource_id
                )),
                hostname,
                port,
                kind: "db-node".into(),
                status: if status == "running" {
                    "running".into()
                } else {
                    "unreachable".into()
                },
            }];
        }
        let probes = db.config.instances.iter().map(|i| async move {
            let reachable = tokio::time::timeout(
                PROBE_TIMEOUT,
                tokio::net::TcpStream::connect((i.hostname.as_str(), i.port)),
            )
            .await
            .is_ok_and(|c| c.is_ok());
            Instance {
                id: stable_id(&format!(
                    "instance:{}:{}:{}",
                    db.config.resource_id, i.hostname, i.port
                )),
                hostname: i.hostname.clone(),
                port: i.port,
                kind: i.kind.clone(),
                status: if reachable { "running" } else { "unreachable" }.into(),
            }
        });
        futures::future::join_all(probes).await
    }

    fn managed_port(&self, db: &Managed) -> u16 {
        match &db.target {
            Target::Postgres(pool) => pool.port(),
            _ => 0,
        }
    }
}

/// The target a managed database's actions run against.
fn target_of(db: &ManagedDatabase, engines: &Engines<'_>) -> Target {
    let id = db.resource_id.as_str();
    let found = match db.engine.as_str() {
        "postgresql" => engines
            .postgres
            .target(id)
            .map(|t| Target::Postgres(Arc::clone(t))),
        mysql::NAME => engines
            .mysql
            .target(id)
            .map(|t| Target::Mysql(Arc::clone(t))),
        redis::NAME => engines
            .redis
            .target(id)
            .map(|t| Target::Redis(Arc::clone(t))),
        influxdb::NAME => engines
            .influxdb
            .target(id)
            .map(|t| Target::Influxdb(Arc::clone(t))),
        _ => None,
    };
    found.unwrap_or(Target::None)
}

/// (status, readable version) of the server behind `target`, asked now.
async fn probe(target: &Target) -> (String, String) {
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let running = |version: String| ("running".to_string(), version);
    let unreachable = || ("unreachable".to_string(), String::new());
    let refused = || ("refused".to_string(), String::new());
    let asked = async {
        match target {
            Target::Postgres(pool) => {
                let asked = async {
                    let connection = pool.get(None, deadline).await?;
                    connection
                        .client()
                        .query_one("SELECT current_setting('server_version')", &[])
                        .await
                        .map(|row| row.get::<_, String>(0))
                        .map_err(|e| postgres::error::pg_error(&e))
                };
                match asked.await {
                    Ok(version) => running(version),
                    Err(e) if e.sqlstate.starts_with("28") || e.sqlstate == "42501" => refused(),
                    Err(_) => unreachable(),
                }
            }
            Target::Mysql(server) => match server.version(deadline).await {
                Ok(version) => running(version),
                // Access denied (1044, 1045), a missing privilege (1142, 1227).
                Err(e) if matches!(e.code, 1044 | 1045 | 1142 | 1227) => refused(),
                Err(_) => unreachable(),
            },
            Target::Redis(server) => match server.version(deadline).await {
                Ok(version) => running(version),
                Err(e) if e.code == "NOAUTH" || e.code == "WRONGPASS" || e.code == "NOPERM" => {
                    refused()
                }
                Err(_) => unreachable(),
            },
            Target::Influxdb(server) => match server.ping(deadline).await {
                Ok(version) => running(version),
                Err(e) if e.status == 401 || e.status == 403 => refused(),
                Err(_) => unreachable(),
            },
            Target::None => ("unknown".to_string(), String::new()),
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, asked)
        .await
        .unwrap_or_else(|_| unreachable())
}

/// A stable 24-hex id derived from `seed` (the reference shows ids of that
/// shape for types and versions).
fn stable_id(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(seed.as_bytes())[..12])
}

pub struct State {
    service: Arc<Service>,
}

impl State {
    pub fn new(service: &Arc<Service>) -> State {
        State {
            service: Arc::clone(service),
        }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::databases::add_to_linker::<T, HasSelf<State>>(linker, get)
}

fn refusal(r: OpRefusal) -> Refusal {
    match r {
        OpRefusal::BadRequest(m) => Refusal::BadRequest(m),
        OpRefusal::Unprocessable(field, m) => Refusal::Unprocessable((field.into(), m)),
        OpRefusal::Failed(m) => Refusal::Failed(m),
    }
}

fn failed(message: String) -> ActionError {
    ActionError {
        kind: ErrorKind::Failed,
        message,
    }
}

impl Host for State {
    async fn all(&mut self) -> Vec<Database> {
        let service = &self.service;
        let all = service.databases.iter().map(|db| service.describe(db));
        futures::future::join_all(all)
            .await
            .into_iter()
            .filter_map(|described| {
                described
                    .map_err(|e| tracing::error!("cannot describe a managed database: {e}"))
                    .ok()
            })
            .collect()
    }

    async fn get(&mut self, id: String) -> Option<Database> {
        let db = self.service.find(&id).await?;
        match self.service.describe(db).await {
            Ok(database) => Some(database),
            Err(e) => {
                tracing::error!(database = id, "cannot describe a managed database: {e}");
                None
            }
        }
    }

    async fn set_periodic_backups(
        &mut self,
        id: String,
        enabled: Option<bool>,
        hours: Option<Vec<u8>>,
    ) -> Result<Database, Refusal> {
        let Some(db) = self.service.find(&id).await else {
            return Err(Refusal::NotFound);
        };
        if hours.as_ref().is_some_and(|h| h.iter().any(|h| *h > 23)) {
            return Err(Refusal::Unprocessable((
                "periodic_backups_scheduled_at".into(),
                "hours are 0 to 23".into(),
            )));
        }
        if enabled == Some(true) {
            self.service
                .ops()?
                .backup_method(&db.config)
                .map_err(refusal)?;
        }
        let resource_id = db.config.resource_id.clone();
        self.service
            .record(&resource_id)
            .await
            .map_err(Refusal::Failed)?;
        let store = self.service.store.clone();
        tokio::task::spawn_blocking(move || {
            store.set_periodic_backups(&resource_id, enabled, hours.as_deref())
        })
        .await
        .map_err(|e| Refusal::Failed(e.to_string()))?
        .map_err(|e| Refusal::Failed(format!("state store: {e:#}")))?;
        // A schedule that includes this hour runs now, not at the next tick.
        if let Ok(ops) = self.service.ops() {
            ops.reschedule(&db.config);
        }
        self.service.describe(db).await.map_err(Refusal::Failed)
    }

    async fn pitr_restore(&mut self, id: String, restore_time: String) -> Result<String, Refusal> {
        let Some(db) = self.service.find(&id).await else {
            return Err(Refusal::NotFound);
        };
        let record = self
            .service
            .record(&db.config.resource_id)
            .await
            .map_err(Refusal::Failed)?;
        self.service
            .ops()?
            .start_pitr(&db.config, &record.id, &restore_time)
            .await
            .map_err(refusal)
    }

    async fn upgrade(&mut self, id: String) -> Result<UpgradePlan, Refusal> {
        let Some(db) = self.service.find(&id).await else {
            return Err(Refusal::NotFound);
        };
        let record = self
            .service
            .record(&db.config.resource_id)
            .await
            .map_err(Refusal::Failed)?;
        self.service
            .ops()?
            .start_upgrade(&db.config, &record.id)
            .await
            .map_err(refusal)
    }

    async fn actions(&mut self, id: String) -> Option<Vec<ActionInfo>> {
        let db = self.service.find(&id).await?;
        Some(
            self.service
                .runner()
                .map(|runner| runner.actions(&db.config.engine))
                .unwrap_or_default(),
        )
    }

    async fn run_action(
        &mut self,
        id: String,
        name: String,
        params: String,
    ) -> Result<String, ActionError> {
        let Some(db) = self.service.find(&id).await else {
            return Err(ActionError {
                kind: ErrorKind::NotFound,
                message: format!("no database {id}"),
            });
        };
        let Some(runner) = self.service.runner() else {
            return Err(failed("no action module is loaded".into()));
        };
        tracing::info!(database = %db.config.resource_id, action = %name, "running an action");
        runner
            .run(&db.config.engine, db.target.clone(), &name, &params)
            .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stable_ids_are_24_hex_and_stable() {
        let a = super::stable_id("type:postgresql");
        assert_eq!(a.len(), 24);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, super::stable_id("type:postgresql"));
        assert_ne!(a, super::stable_id("type:mysql"));
    }
}
