//! The data of one plugin instance's store: the sandbox, the limits, and
//! each capability's state for this call. Lives for one call.

use crate::capabilities::call::Call;
use crate::capabilities::databases::Target;
use crate::capabilities::notifications::Notifier;
use crate::capabilities::postgres::pool::PgPool;
use crate::capabilities::system::sampler::Sampler;
use crate::capabilities::{
    barman, control, databases, influxdb, kv, log, metrics, mysql, notifications, operations,
    postgres, redis, settings, system,
};
use crate::jobs;
use crate::store::Store;
use std::sync::Arc;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// What every plugin instance shares with the host: each capability's
/// service, built once at start-up.
pub struct Services {
    pub postgres: Arc<postgres::Service>,
    pub sampler: Arc<Sampler>,
    pub notifier: Arc<Notifier>,
    pub store: Store,
    pub control: Arc<control::Control>,
    pub jobs: Arc<jobs::service::Service>,
    /// The managed databases, with the servers of every engine.
    pub databases: Arc<databases::Service>,
    /// Barman and its background jobs.
    pub barman: Arc<barman::jobs::Jobs>,
}

/// The servers a call's engine capabilities reach: the `postgres` target
/// (the managed instance for the temBoard areas), and for an action module
/// the addressed database's server for its engine.
#[derive(Clone)]
pub struct Binding {
    pub postgres: Arc<PgPool>,
    pub mysql: Option<Arc<mysql::Target>>,
    pub redis: Option<Arc<redis::Target>>,
    pub influxdb: Option<Arc<influxdb::Target>>,
}

impl Binding {
    /// Only PostgreSQL, on `postgres`.
    pub fn postgres(postgres: &Arc<PgPool>) -> Binding {
        Binding {
            postgres: Arc::clone(postgres),
            mysql: None,
            redis: None,
            influxdb: None,
        }
    }

    /// A managed database's server; `fallback` for PostgreSQL when the
    /// database is of another engine.
    pub fn of(target: &Target, fallback: &Arc<PgPool>) -> Binding {
        let mut binding = Binding::postgres(fallback);
        match target {
            Target::Postgres(pool) => binding.postgres = Arc::clone(pool),
            Target::Mysql(server) => binding.mysql = Some(Arc::clone(server)),
            Target::Redis(server) => binding.redis = Some(Arc::clone(server)),
            Target::Influxdb(server) => binding.influxdb = Some(Arc::clone(server)),
            Target::None => {}
        }
        binding
    }
}

pub struct InstanceState {
    pub limits: StoreLimits,
    /// What the guest wrote to stderr (a Rust panic message lands here).
    pub stderr: MemoryOutputPipe,
    wasi: WasiCtx,
    table: ResourceTable,
    pub postgres: postgres::State,
    pub system: system::State,
    pub log: log::State,
    pub notifications: notifications::State,
    pub kv: kv::State,
    pub settings: settings::State,
    pub jobs: jobs::capability::State,
    pub control: control::State,
    pub barman: barman::State,
    pub metrics: metrics::State,
    pub operations: operations::State,
    pub databases: databases::State,
    pub mysql: mysql::State,
    pub redis: redis::State,
    pub influxdb: influxdb::State,
    pub types: TypeOnly,
}

/// Bytes of guest stderr kept; enough for a panic message and a backtrace.
const STDERR_CAPACITY: usize = 64 * 1024;

impl InstanceState {
    /// A sandbox with no filesystem, no sockets, no environment, no
    /// arguments, and stdin closed: WASI's defaults, with stderr captured.
    /// `binding` is what the call's engine capabilities reach.
    pub fn new(
        services: &Services,
        call: &Call,
        settings: Arc<str>,
        binding: &Binding,
        memory_bytes: usize,
    ) -> InstanceState {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        InstanceState {
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            stderr,
            wasi,
            table: ResourceTable::new(),
            postgres: postgres::State::new(&services.postgres, &binding.postgres, call),
            system: system::State::new(&services.sampler),
            log: log::State::new(call),
            notifications: notifications::State::new(&services.notifier, call),
            kv: kv::State::new(&services.store, call),
            settings: settings::State::new(settings),
            jobs: jobs::capability::State::new(&services.jobs, call),
            control: control::State::new(&services.control),
            barman: barman::State::new(&services.barman),
            metrics: metrics::State::new(&services.postgres),
            operations: operations::State::new(&services.store),
            databases: databases::State::new(&services.databases),
            mysql: mysql::State::new(binding.mysql.as_ref(), call),
            redis: redis::State::new(binding.redis.as_ref(), call),
            influxdb: influxdb::State::new(binding.influxdb.as_ref(), call),
            types: TypeOnly,
        }
    }

    /// The last lines the guest wrote to stderr, bounded for error bodies.
    pub fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        let start = text.len().saturating_sub(2000);
        text[text.ceil_char_boundary(start)..].to_string()
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The interfaces that only define types (`http-types`, `job-types`):
/// linking them lets components name their records; they grant nothing.
pub struct TypeOnly;

impl crate::wit::http_types::Host for TypeOnly {}
impl crate::wit::job_types::Host for TypeOnly {}
impl crate::wit::action_types::Host for TypeOnly {}
