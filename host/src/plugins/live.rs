//! The plugins in service, and replacing them while serving (hot reload).
//!
//! A request, a job or an action takes one snapshot ([`Plugins::current`])
//! and keeps it to the end, so a swap never shows it a mix of versions: the
//! route table and the plugins it points at are one `PluginSet`. A reload
//! builds the next set beside the current one and swaps the pointer; calls
//! in flight finish on the set they hold, which is dropped after them.

use super::loader::{self, Source};
use super::routes::RouteTable;
use super::runtime::{Plugin, Runtime};
use super::{ActionTable, PluginSet};
use crate::capabilities::databases::{ActionRunner, Target};
use crate::config::Config;
use crate::jobs::scheduler::{Outcome, Runner};
use crate::wit::action_types::{ActionError, ActionInfo};
use crate::wit::job_types::Job;
use futures::future::BoxFuture;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// A plugin a reload did not put in service, and why.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub name: String,
    /// The file it came from, or the bundled plugin.
    pub origin: String,
    pub reason: String,
}

pub struct Plugins {
    current: RwLock<Arc<PluginSet>>,
    /// What the last reload refused (empty after start-up: a refusal there
    /// is a start-up error).
    refused: RwLock<Arc<Vec<Refusal>>>,
    /// Paths the host serves itself, which no plugin may claim.
    native_paths: Vec<&'static str>,
    /// One reload at a time: two would race to swap.
    reloading: tokio::sync::Mutex<()>,
}

impl Plugins {
    pub fn new(set: PluginSet, native_paths: &[&'static str]) -> Plugins {
        Plugins {
            current: RwLock::new(Arc::new(set)),
            refused: RwLock::new(Arc::new(Vec::new())),
            native_paths: native_paths.to_vec(),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The set in service now; hold it for the whole of one call.
    pub fn current(&self) -> Arc<PluginSet> {
        match self.current.read() {
            Ok(set) => Arc::clone(&set),
            // A panic while swapping leaves a whole Arc behind: still usable.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn refused(&self) -> Arc<Vec<Refusal>> {
        match self.refused.read() {
            Ok(refused) => Arc::clone(&refused),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reads the plugins again under `config` (the bundled ones and the
    /// drop-ins of `[plugins] dir`) and puts the result in service. A
    /// plugin that cannot be loaded — unreadable, ungranted, claiming a
    /// route another one has — is refused with the reason in the log and
    /// in `GET /plugins`; the version of it that was serving, if any, stays.
    pub async fn reload(&self, config: &Config) {
        let _one_at_a_time = self.reloading.lock().await;
        let started = Instant::now();
        let old = self.current();
        let (sources, bad) = match loader::gather(config) {
            Ok(gathered) => gathered,
            Err(e) => {
                tracing::error!("plugin reload rejected, the plugins in service stay: {e:#}");
                return;
            }
        };
        let runtime = Arc::clone(&old.runtime);
        let native_paths = self.native_paths.clone();
        let next = tokio::task::block_in_place(|| {
            // New components are compiled by a child, as at start-up, so
            // that the compiler's memory does not stay with the agent.
            super::compile::ahead_in_child(config, runtime.engine(), &sources);
            next_set(&runtime, config, &old, sources, bad, &native_paths)
        });
        let Next {
            list,
            routes,
            mut refused,
        } = next;
        let actions = match ActionTable::build(&runtime, &list).await {
            Ok(actions) => actions,
            Err(e) => {
                tracing::error!("plugin reload rejected, the plugins in service stay: {e:#}");
                refused.push(Refusal {
                    name: String::new(),
                    origin: "reload".into(),
                    reason: format!("{e:#}"),
                });
                self.set_refused(refused);
                return;
            }
        };
        let changes = Changes::between(&old.list, &list);
        let fresh: Vec<Arc<Plugin>> = list
            .iter()
            .filter(|p| changes.added.contains(&p.name) || changes.replaced.contains(&p.name))
            .cloned()
            .collect();
        let set = PluginSet {
            runtime: Arc::clone(&runtime),
            list,
            routes,
            actions,
            openapi: Default::default(),
        };
        let plugins = set.list.len();
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
        for refusal in &refused {
            tracing::warn!(plugin = %refusal.name, origin = %refusal.origin, "plugin refused by reload: {}", refusal.reason);
        }
        tracing::info!(
            plugins,
            added = ?changes.added,
            replaced = ?changes.replaced,
            removed = ?changes.removed,
            refused = refused.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "plugins reloaded"
        );
        self.set_refused(refused);
        // A new or replaced plugin's start-up hook, as at a start.
        for plugin in fresh {
            init(&runtime, &plugin).await;
        }
    }

    fn set_refused(&self, refused: Vec<Refusal>) {
        match self.refused.write() {
            Ok(mut current) => *current = Arc::new(refused),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(refused),
        }
    }
}

struct Next {
    list: Vec<Arc<Plugin>>,
    routes: RouteTable,
    refused: Vec<Refusal>,
}

/// The next set: each source loaded afresh and routed after the bundled
/// plugins and the drop-ins before it; in place of one that fails, the
/// version in service, when it still fits.
fn next_set(
    runtime: &Runtime,
    config: &Config,
    old: &PluginSet,
    sources: Vec<Source>,
    bad: Vec<loader::BadDropIn>,
    native_paths: &[&str],
) -> Next {
    let mut next = Next {
        list: Vec::new(),
        routes: RouteTable::new(native_paths),
        refused: Vec::new(),
    };
    for source in sources {
        let name = source.manifest.name.clone();
        let origin = source.origin.clone();
        let loaded = loader::load_one(runtime, config, source).and_then(|plugin| {
            next.routes
                .add_all(&plugin.manifest.routes, next.list.len(), &plugin.name)?;
            Ok(plugin)
        });
        match loaded {
            Ok(plugin) => next.list.push(Arc::new(plugin)),
            Err(e) => {
                next.refused.push(Refusal {
                    name: name.clone(),
                    origin,
                    reason: format!("{e:#}"),
                });
                keep_serving(&mut next, old, &name);
            }
        }
    }
    for bad in bad {
        keep_serving(&mut next, old, &bad.name);
        next.refused.push(Refusal {
            name: bad.name,
            origin: bad.origin,
            reason: bad.reason,
        });
    }
    next
}

/// Keeps the version of `name` in service, if there is one and its routes
/// are still free.
fn keep_serving(next: &mut Next, old: &PluginSet, name: &str) {
    let Some(serving) = old.by_name(name) else {
        return;
    };
    if next.list.iter().any(|p| *p.name == *name) {
        return;
    }
    match next
        .routes
        .add_all(&serving.manifest.routes, next.list.len(), name)
    {
        Ok(()) => next.list.push(Arc::clone(serving)),
        Err(e) => tracing::warn!(
            plugin = name,
            "the version in service is withdrawn too: {e:#}"
        ),
    }
}

/// Names of plugins a reload added, replaced (other code) or removed.
struct Changes {
    added: Vec<Arc<str>>,
    replaced: Vec<Arc<str>>,
    removed: Vec<Arc<str>>,
}

impl Changes {
    fn between(old: &[Arc<Plugin>], new: &[Arc<Plugin>]) -> Changes {
        let find =
            |list: &[Arc<Plugin>], name: &str| list.iter().find(|p| *p.name == *name).cloned();
        let mut changes = Changes {
            added: Vec::new(),
            replaced: Vec::new(),
            removed: Vec::new(),
        };
        for plugin in new {
            match find(old, &plugin.name) {
                None => changes.added.push(Arc::clone(&plugin.name)),
                Some(before) if before.wasm_sha256 != plugin.wasm_sha256 => {
                    changes.replaced.push(Arc::clone(&plugin.name))
                }
                Some(_) => {}
            }
        }
        for plugin in old {
            if find(new, &plugin.name).is_none() {
                changes.removed.push(Arc::clone(&plugin.name));
            }
        }
        changes
    }
}

async fn init(runtime: &Runtime, plugin: &Plugin) {
    match runtime.init(plugin).await {
        Ok(Ok(())) => {}
        Ok(Err(message)) => {
            tracing::error!(plugin = %plugin.name, "plugin start-up hook failed: {message}")
        }
        Err(e) => tracing::error!(plugin = %plugin.name, "plugin start-up hook failed: {e}"),
    }
}

impl Runner for Plugins {
    async fn init_all(&self) {
        let set = self.current();
        for plugin in &set.list {
            init(&set.runtime, plugin).await;
        }
    }

    async fn run(&self, plugin: &str, job: Job) -> Outcome {
        self.current().run_job(plugin, job).await
    }
}

impl ActionRunner for Plugins {
    fn actions(&self, engine: &str) -> Vec<ActionInfo> {
        self.current().actions(engine)
    }

    fn run<'a>(
        &'a self,
        engine: &'a str,
        target: Target,
        name: &'a str,
        params: &'a str,
    ) -> BoxFuture<'a, Result<String, ActionError>> {
        Box::pin(async move {
            let set = self.current();
            set.run_action(engine, target, name, params).await
        })
    }
}
