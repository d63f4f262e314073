//! The data of one plugin instance's store: the sandbox, the limits, and
//! each capability's state for this call. Lives for one call.

use crate::capabilities::call::Call;
use crate::capabilities::notifications::Notifier;
use crate::capabilities::postgres::pool::PgPool;
use crate::capabilities::system::sampler::Sampler;
use crate::capabilities::{
    control, databases, kv, log, notifications, operations, postgres, settings, system,
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
    pub databases: Arc<databases::Service>,
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
    pub operations: operations::State,
    pub databases: databases::State,
    pub types: TypeOnly,
}

/// Bytes of guest stderr kept; enough for a panic message and a backtrace.
const STDERR_CAPACITY: usize = 64 * 1024;

impl InstanceState {
    /// A sandbox with no filesystem, no sockets, no environment, no
    /// arguments, and stdin closed: WASI's defaults, with stderr captured.
    /// `target` is the PostgreSQL instance the call is bound to.
    pub fn new(
        services: &Services,
        call: &Call,
        settings: Arc<str>,
        target: &Arc<PgPool>,
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
            postgres: postgres::State::new(&services.postgres, target, call),
            system: system::State::new(&services.sampler),
            log: log::State::new(call),
            notifications: notifications::State::new(&services.notifier, call),
            kv: kv::State::new(&services.store, call),
            settings: settings::State::new(settings),
            jobs: jobs::capability::State::new(&services.jobs, call),
            control: control::State::new(&services.control),
            operations: operations::State::new(&services.store),
            databases: databases::State::new(&services.databases),
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
