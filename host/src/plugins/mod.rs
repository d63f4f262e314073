//! Plugins: finding, checking, compiling and linking them (`loader`,
//! `manifest`, `registry`, `cache`), routing paths to them (`routes`), and
//! running a fresh, limited instance per call (`runtime`, `state`).

pub mod cache;
pub mod compile;
pub mod fragment;
pub mod live;
pub mod loader;
pub mod manifest;
pub mod registry;
pub mod routes;
pub mod runtime;
pub mod state;

use crate::capabilities::databases::Target;
use crate::jobs::scheduler::Outcome;
use crate::wit::action_types::{ActionError, ActionInfo, ErrorKind};
use crate::wit::job_types::Job;
use anyhow::{Result, bail};
use manifest::Kind;
use routes::RouteTable;
use runtime::{CallError, Plugin, Runtime};
use state::Binding;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The loaded plugins, their routes, and the runtime that runs them.
pub struct PluginSet {
    /// One runtime (engine, instance pool) for every set a reload builds.
    pub runtime: Arc<Runtime>,
    pub list: Vec<Arc<Plugin>>,
    pub routes: RouteTable,
    /// What each engine's action modules offer.
    pub actions: ActionTable,
    /// `GET /openapi.json` for this set, built at its first request.
    pub openapi: std::sync::OnceLock<bytes::Bytes>,
}

/// Action name → the module that runs it, per engine.
#[derive(Default)]
pub struct ActionTable {
    by_engine: BTreeMap<String, Vec<(ActionInfo, Arc<Plugin>)>>,
}

impl ActionTable {
    /// Asks every action module what it offers; two modules offering the
    /// same action for one engine is a start-up error naming both.
    pub async fn build(runtime: &Runtime, plugins: &[Arc<Plugin>]) -> Result<ActionTable> {
        let mut table = ActionTable::default();
        for module in plugins
            .iter()
            .filter(|p| p.manifest.kind == Kind::ActionModule)
        {
            let engine = module.manifest.engine.clone().unwrap_or_default();
            let offered = match runtime.describe(module).await {
                Ok(offered) => offered,
                Err(e) => bail!(
                    "action module '{}' cannot describe its actions: {e}",
                    module.name
                ),
            };
            let actions = table.by_engine.entry(engine.clone()).or_default();
            for info in offered {
                if let Some((_, other)) = actions.iter().find(|(a, _)| a.name == info.name) {
                    bail!(
                        "action '{}' of engine '{engine}' is offered by both action modules '{}' and '{}'",
                        info.name,
                        other.name,
                        module.name
                    );
                }
                actions.push((info, Arc::clone(module)));
            }
            tracing::info!(module = %module.name, engine, "action module ready");
        }
        Ok(table)
    }

    fn find(&self, engine: &str, name: &str) -> Option<&Arc<Plugin>> {
        self.by_engine
            .get(engine)?
            .iter()
            .find(|(info, _)| info.name == name)
            .map(|(_, module)| module)
    }
}

impl PluginSet {
    pub fn by_name(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.list.iter().find(|p| *p.name == *name)
    }
}

impl PluginSet {
    /// Runs `job` of the plugin named `plugin`.
    pub async fn run_job(&self, plugin: &str, job: Job) -> Outcome {
        let failed = |reason: String| Outcome::Failed {
            reason,
            timed_out: false,
        };
        let Some(plugin) = self.by_name(plugin) else {
            return failed(format!("plugin '{plugin}' is not loaded"));
        };
        if let Some(reason) = plugin.disabled_reason() {
            return failed(format!("plugin '{}' is disabled: {reason}", plugin.name));
        }
        match self.runtime.run_job(plugin, job).await {
            Ok(Ok(())) => Outcome::Done,
            Ok(Err(message)) => failed(message),
            Err(e) => Outcome::Failed {
                timed_out: matches!(e, CallError::Timeout(_)),
                reason: e.to_string(),
            },
        }
    }
}

impl PluginSet {
    /// The actions the modules of `engine` offer.
    pub fn actions(&self, engine: &str) -> Vec<ActionInfo> {
        self.actions
            .by_engine
            .get(engine)
            .map(|actions| actions.iter().map(|(info, _)| info.clone()).collect())
            .unwrap_or_default()
    }

    /// Runs `name` of `engine` with `params`, bound to `target`.
    pub async fn run_action(
        &self,
        engine: &str,
        target: Target,
        name: &str,
        params: &str,
    ) -> Result<String, ActionError> {
        {
            let error = |kind, message: String| ActionError { kind, message };
            let Some(module) = self.actions.find(engine, name) else {
                return Err(error(
                    ErrorKind::BadParams,
                    format!("unknown action '{name}' for engine '{engine}'"),
                ));
            };
            if let Some(reason) = module.disabled_reason() {
                return Err(error(
                    ErrorKind::Unavailable,
                    format!("action module '{}' is disabled: {reason}", module.name),
                ));
            }
            // PostgreSQL stays on the module's own target unless the
            // database is a PostgreSQL one; grants decide what it imports.
            let binding = Binding::of(&target, &module.target);
            match self
                .runtime
                .run_action(module, &binding, name.to_string(), params.to_string())
                .await
            {
                Ok(outcome) => outcome,
                Err(CallError::Busy) => Err(error(
                    ErrorKind::Unavailable,
                    format!("action module '{}' is busy; try again later", module.name),
                )),
                Err(e) => {
                    tracing::error!(module = %module.name, action = name, "action failed: {e}");
                    Err(error(
                        ErrorKind::Failed,
                        format!("action module '{}' failed: {e}", module.name),
                    ))
                }
            }
        }
    }
}
