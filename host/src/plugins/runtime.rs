//! The WebAssembly runtime: one engine, one pre-linked instance template per
//! plugin, and a fresh, limited instance for every call.

use super::manifest::{Kind, Manifest};
use super::state::{Binding, InstanceState, Services};
use crate::capabilities::call::Call;
use crate::capabilities::postgres::pool::PgPool;
use crate::wit::action;
use crate::wit::action_types::{ActionError, ActionInfo};
use crate::wit::handler;
use crate::wit::http_types::{Request, Response};
use crate::wit::job_types::Job;
use crate::wit::lifecycle;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap, UpdateDeadline,
};

/// How much of a reused instance slot is reset in place instead of being
/// returned to the kernel.
const KEEP_RESIDENT_BYTES: usize = 2 * 1024 * 1024;

/// How often the engine's epoch advances: the granularity of deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Core instances one component may hold: Rust guests have a handful;
/// Python ones (componentize-py) about 15; the bound leaves room.
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
/// Memories and tables one component may hold.
const MEMORIES_PER_COMPONENT: u32 = 4;
const TABLES_PER_COMPONENT: u32 = 32;

/// A loaded plugin, ready to be instantiated.
pub struct Plugin {
    pub manifest: Manifest,
    pub name: Arc<str>,
    pub bundled: bool,
    pub timeout: Duration,
    pub job_timeout: Duration,
    pub memory_bytes: usize,
    /// `[plugin.NAME.settings]` as JSON, what `get-settings` returns.
    pub settings: Arc<str>,
    /// Why the plugin is out of service (a reload took a grant away), if it is.
    pub disabled: std::sync::RwLock<Option<String>>,
    /// The PostgreSQL instance its calls are bound to.
    pub target: Arc<PgPool>,
    /// SHA-256 of its component: a reload tells a replaced plugin by it.
    pub wasm_sha256: [u8; 32],
    /// The fragment describing its routes for `GET /openapi.json`, checked.
    pub openapi: Option<std::borrow::Cow<'static, str>>,
    pre: InstancePre<InstanceState>,
    /// An HTTP plugin's entry point.
    handler: Option<handler::GuestIndices>,
    /// A plugin that schedules no jobs need not export `lifecycle`.
    lifecycle: Option<lifecycle::GuestIndices>,
    /// An action module's entry points.
    action: Option<action::GuestIndices>,
}

impl Plugin {
    pub fn disabled_reason(&self) -> Option<String> {
        self.disabled.read().ok().and_then(|d| d.clone())
    }

    pub fn set_disabled(&self, reason: Option<String>) {
        if let Ok(mut d) = self.disabled.write() {
            *d = reason;
        }
    }
}

/// How the operator and the manifest configured one plugin.
pub struct PluginLimits {
    pub bundled: bool,
    pub timeout: Duration,
    pub job_timeout: Duration,
    pub memory_bytes: usize,
    pub settings: Arc<str>,
    pub target: Arc<PgPool>,
}

/// Why a plugin call produced no response.
#[derive(Debug)]
pub enum CallError {
    /// Every instance slot stayed taken for the whole deadline.
    Busy,
    /// The plugin ran past its deadline.
    Timeout(Duration),
    /// The plugin trapped, panicked or broke its memory limit.
    Failed(String),
}

/// An instance slot, counted in use until it is given back.
struct SlotInUse(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl SlotInUse {
    fn new(permit: tokio::sync::OwnedSemaphorePermit) -> SlotInUse {
        crate::telemetry::get().instances(1);
        SlotInUse(permit)
    }
}

impl Drop for SlotInUse {
    fn drop(&mut self) {
        crate::telemetry::get().instances(-1);
    }
}

pub struct Runtime {
    engine: Engine,
    services: Arc<Services>,
    instance_slots: Arc<Semaphore>,
    /// Slots of action modules, which run inside a call that holds one of
    /// `instance_slots`: apart, so that calls waiting for a slot never
    /// starve the action modules of the calls that hold them.
    action_slots: Arc<Semaphore>,
    /// The pool's memory per instance, fixed when the engine was built.
    max_memory_bytes: usize,
}

/// The engine plugins run on: a pooling allocator sized for
/// `max_instances` concurrent instances of at most `max_memory_bytes` each,
/// and epoch interruption for deadlines. `dbagent compile` builds the same
/// one, so that what it caches the agent loads.
pub fn engine(max_instances: u32, max_memory_bytes: usize) -> Result<Engine> {
    // Room for every call and, beside each, the action module it may run
    // (the database-service plugin calls one while it holds its own).
    let max_instances = max_instances.saturating_mul(2);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(max_instances)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        // Every slot can hold the largest component, so a free slot is
        // never refused for lack of core instances (which would be a 500).
        .total_core_instances(max_instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(max_instances.saturating_mul(MEMORIES_PER_COMPONENT))
        .total_tables(max_instances.saturating_mul(TABLES_PER_COMPONENT))
        .total_stacks(max_instances)
        .max_memory_size(max_memory_bytes)
        // A request touches the same few pages every time (stack, heap
        // start, data). Zeroing them in place when a slot is reused is
        // cheaper than madvise plus a page fault per page on next use.
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        // Where the kernel can tell (Linux 6.7+), reset only the pages
        // an instance dirtied rather than the whole resident prefix.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .table_keep_resident(KEEP_RESIDENT_BYTES / 16)
        .async_stack_keep_resident(KEEP_RESIDENT_BYTES / 16);
    let mut config = wasmtime::Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot create the WebAssembly engine")
}

impl Runtime {
    /// The engine with a pooling allocator sized for `max_instances`
    /// concurrent instances of at most `max_memory_bytes` each, and epoch
    /// interruption for deadlines.
    pub fn new(
        services: Arc<Services>,
        max_instances: u32,
        max_memory_bytes: usize,
    ) -> Result<Runtime> {
        let engine = engine(max_instances, max_memory_bytes)?;

        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .context("cannot start the epoch ticker")?;

        Ok(Runtime {
            engine,
            services,
            instance_slots: Arc::new(Semaphore::new(max_instances as usize)),
            action_slots: Arc::new(Semaphore::new(max_instances as usize)),
            max_memory_bytes,
        })
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn max_memory_bytes(&self) -> usize {
        self.max_memory_bytes
    }

    /// Links a compiled component against `linker`, which holds what the
    /// plugin was granted.
    pub fn prepare(
        &self,
        manifest: Manifest,
        component: &Component,
        linker: &Linker<InstanceState>,
        limits: PluginLimits,
    ) -> Result<Plugin> {
        let pre = linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("plugin '{}' cannot be linked", manifest.name))?;
        let (handler, action) = match manifest.kind {
            Kind::Http => (
                Some(
                    handler::GuestIndices::new(&pre)
                        .map_err(anyhow::Error::from)
                        .with_context(|| {
                            format!(
                                "plugin '{}' does not export dbagent:api/handler",
                                manifest.name
                            )
                        })?,
                ),
                None,
            ),
            Kind::ActionModule => (
                None,
                Some(
                    action::GuestIndices::new(&pre)
                        .map_err(anyhow::Error::from)
                        .with_context(|| {
                            format!(
                                "action module '{}' does not export dbagent:api/action",
                                manifest.name
                            )
                        })?,
                ),
            ),
        };
        let lifecycle = lifecycle::GuestIndices::new(&pre).ok();
        Ok(Plugin {
            name: Arc::from(manifest.name.as_str()),
            manifest,
            bundled: limits.bundled,
            timeout: limits.timeout,
            job_timeout: limits.job_timeout,
            memory_bytes: limits.memory_bytes,
            settings: limits.settings,
            disabled: std::sync::RwLock::new(None),
            target: limits.target,
            wasm_sha256: [0; 32],
            openapi: None,
            pre,
            handler,
            lifecycle,
            action,
        })
    }

    /// Runs `request` on a fresh instance of `plugin` within its deadline and
    /// memory limit. A trap ends only this instance; the host carries on.
    pub async fn call(&self, plugin: &Plugin, request: Request) -> Result<Response, CallError> {
        let run = Run {
            timeout: plugin.timeout,
            user: request.user.clone(),
            job: None,
            nested: false,
        };
        let Some(handler) = plugin.handler.clone() else {
            return Err(CallError::Failed(format!(
                "'{}' is an action module; it serves no request",
                plugin.name
            )));
        };
        self.run(
            plugin,
            run,
            &Binding::postgres(&plugin.target),
            move |instance, store| {
                Box::pin(async move {
                    handler
                        .load(&mut *store, instance)?
                        .call_handle(store, &request)
                        .await
                })
            },
        )
        .await
    }

    /// Calls the plugin's start-up hook, if it has one.
    pub async fn init(&self, plugin: &Plugin) -> Result<Result<(), String>, CallError> {
        let Some(lifecycle) = plugin.lifecycle.clone() else {
            return Ok(Ok(()));
        };
        let run = Run {
            timeout: plugin.timeout,
            user: None,
            job: None,
            nested: false,
        };
        self.run(
            plugin,
            run,
            &Binding::postgres(&plugin.target),
            move |instance, store| {
                Box::pin(async move {
                    lifecycle
                        .load(&mut *store, instance)?
                        .call_init(store)
                        .await
                })
            },
        )
        .await
    }

    /// Runs one of the plugin's jobs, within the plugin's job deadline.
    pub async fn run_job(
        &self,
        plugin: &Plugin,
        job: Job,
    ) -> Result<Result<(), String>, CallError> {
        let Some(lifecycle) = plugin.lifecycle.clone() else {
            return Ok(Err(format!(
                "plugin '{}' has a job but exports no dbagent:api/lifecycle to run it",
                plugin.name
            )));
        };
        let run = Run {
            timeout: plugin.job_timeout,
            user: None,
            job: Some(job.id.clone()),
            nested: false,
        };
        self.run(
            plugin,
            run,
            &Binding::postgres(&plugin.target),
            move |instance, store| {
                Box::pin(async move {
                    lifecycle
                        .load(&mut *store, instance)?
                        .call_run_job(store, &job)
                        .await
                })
            },
        )
        .await
    }

    /// The actions an action module offers.
    pub async fn describe(&self, module: &Plugin) -> Result<Vec<ActionInfo>, CallError> {
        let Some(action) = module.action.clone() else {
            return Ok(Vec::new());
        };
        let run = Run {
            timeout: module.timeout,
            user: None,
            job: None,
            nested: false,
        };
        self.run(
            module,
            run,
            &Binding::postgres(&module.target),
            move |instance, store| {
                Box::pin(async move {
                    action
                        .load(&mut *store, instance)?
                        .call_describe(store)
                        .await
                })
            },
        )
        .await
    }

    /// Runs action `name` of `module` with its engine capability bound by
    /// `binding` to the database the request addresses.
    pub async fn run_action(
        &self,
        module: &Plugin,
        binding: &Binding,
        name: String,
        params: String,
    ) -> Result<Result<String, ActionError>, CallError> {
        let Some(action) = module.action.clone() else {
            return Err(CallError::Failed(format!(
                "'{}' is not an action module",
                module.name
            )));
        };
        let run = Run {
            timeout: module.timeout,
            user: None,
            job: None,
            nested: true,
        };
        self.run(module, run, binding, move |instance, store| {
            Box::pin(async move {
                action
                    .load(&mut *store, instance)?
                    .call_run(store, &name, &params)
                    .await
            })
        })
        .await
    }

    /// Instantiates `plugin` in a fresh store with its limits and runs `call`
    /// on it, with its engine capabilities bound by `binding`. Host calls (a slow query) are not interrupted by epochs; an
    /// outer timeout ends those.
    async fn run<R, F>(
        &self,
        plugin: &Plugin,
        run: Run,
        binding: &Binding,
        call: F,
    ) -> Result<R, CallError>
    where
        F: for<'a> FnOnce(
            &'a wasmtime::component::Instance,
            &'a mut Store<InstanceState>,
        ) -> BoxedCall<'a, R>,
    {
        let timeout = run.timeout;
        let deadline = Instant::now() + timeout;
        let slots = if run.nested {
            &self.action_slots
        } else {
            &self.instance_slots
        };
        let slot = tokio::time::timeout(timeout, Arc::clone(slots).acquire_owned())
            .await
            .map_err(|_| CallError::Busy)?
            .map_err(|_| CallError::Busy)?;
        let slot = SlotInUse::new(slot);

        let who = Call {
            plugin: Arc::clone(&plugin.name),
            user: run.user,
            job: run.job,
            deadline,
        };
        let state = InstanceState::new(
            &self.services,
            &who,
            Arc::clone(&plugin.settings),
            binding,
            plugin.memory_bytes,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        // Check the clock at every tick and yield to other requests between
        // ticks, so a busy plugin neither overruns nor hogs a worker thread.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let run = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            call(&instance, &mut store).await
        };
        // A little slack so that a guest-side interrupt wins when both are due.
        let outcome = tokio::time::timeout(timeout + Duration::from_millis(50), run).await;
        let result = match outcome {
            Err(_) => Err(CallError::Timeout(timeout)),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) => {
                Err(CallError::Timeout(timeout))
            }
            Ok(Err(error)) => Err(CallError::Failed(describe_failure(
                &error,
                plugin,
                store.data(),
            ))),
        };
        // The call's PostgreSQL connection goes back to the pool now, not
        // when the store is dropped.
        store.data_mut().postgres.release();
        // Dropping the store resets the instance's memory for the slot's
        // next use: the caller's response need not wait for that. The slot
        // is free again only once it is reset.
        tokio::spawn(async move {
            drop(store);
            drop(slot);
        });
        result
    }
}

/// Who a call runs for and how long it may take.
struct Run {
    timeout: Duration,
    /// The authenticated user of a request.
    user: Option<String>,
    /// The id of the job being run, if the call runs one.
    job: Option<String>,
    /// An action module's call, inside a call that holds a slot.
    nested: bool,
}

/// The future of one export call, borrowing the instance and its store.
type BoxedCall<'a, R> =
    std::pin::Pin<Box<dyn std::future::Future<Output = wasmtime::Result<R>> + Send + 'a>>;

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Busy => f.write_str("no free instance slot within the deadline"),
            CallError::Timeout(limit) => {
                write!(f, "did not finish within {} s", limit.as_secs_f64())
            }
            CallError::Failed(reason) => f.write_str(reason),
        }
    }
}

/// A one-line reason for a failed call: the trap, a memory-limit breach in
/// plain words, and what the guest printed (a panic message) if anything.
fn describe_failure(error: &wasmtime::Error, plugin: &Plugin, state: &InstanceState) -> String {
    let chain: Vec<String> = error.chain().map(|e| e.to_string()).collect();
    let mut reason = if chain
        .iter()
        .any(|m| m.contains("growing memory") || m.contains("memory growth"))
    {
        format!(
            "exceeded its memory limit of {} MiB",
            plugin.memory_bytes >> 20
        )
    } else if let Some(trap) = error.downcast_ref::<Trap>() {
        format!("trapped: {trap}")
    } else {
        chain.last().cloned().unwrap_or_else(|| error.to_string())
    };
    let stderr = state.stderr_tail();
    if !stderr.is_empty() {
        reason.push_str(": ");
        reason.push_str(&stderr);
    }
    reason
}
