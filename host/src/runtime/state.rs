use crate::capabilities::Capabilities;
use std::sync::Arc;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The data of one plugin instance's store: lives for one request.
pub struct PluginState {
    pub plugin: Arc<str>,
    /// The plugin's settings as JSON.
    pub settings: Arc<str>,
    /// The authenticated user the request came from, if any.
    pub user: Option<String>,
    /// The id of the job this instance runs, if it runs one.
    pub job: Option<String>,
    /// The PostgreSQL connection the call holds now, with its database
    /// (see `capabilities::postgres`).
    pub connection: Option<(String, crate::capabilities::pg_pool::PooledConnection)>,
    /// When the call must be over: waits for a connection end there.
    pub deadline: std::time::Instant,
    pub capabilities: Arc<Capabilities>,
    pub limits: StoreLimits,
    /// What the guest wrote to stderr (a Rust panic message lands here).
    pub stderr: MemoryOutputPipe,
    wasi: WasiCtx,
    table: ResourceTable,
}

/// Bytes of guest stderr kept; enough for a panic message and a backtrace.
const STDERR_CAPACITY: usize = 64 * 1024;

impl PluginState {
    /// A sandbox with no filesystem, no sockets, no environment, no
    /// arguments, and stdin closed: WASI's defaults, with stderr captured.
    pub fn new(
        plugin: Arc<str>,
        settings: Arc<str>,
        user: Option<String>,
        job: Option<String>,
        capabilities: Arc<Capabilities>,
        memory_bytes: usize,
        deadline: std::time::Instant,
    ) -> PluginState {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        PluginState {
            plugin,
            settings,
            user,
            job,
            connection: None,
            deadline,
            capabilities,
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            stderr,
            wasi,
            table: ResourceTable::new(),
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

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// `http-types` only defines records; the generated trait has nothing to implement.
impl crate::runtime::bindings::dbagent::api::http_types::Host for PluginState {}

impl crate::runtime::bindings::dbagent::api::settings::Host for PluginState {
    async fn get_settings(&mut self) -> String {
        self.settings.to_string()
    }
}
