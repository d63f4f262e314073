//! Plugins: finding, checking, compiling and linking them (`loader`,
//! `manifest`, `registry`, `cache`), routing paths to them (`routes`), and
//! running a fresh, limited instance per call (`runtime`, `state`).

pub mod cache;
pub mod loader;
pub mod manifest;
pub mod registry;
pub mod routes;
pub mod runtime;
pub mod state;

use crate::jobs::scheduler::{Outcome, Runner};
use crate::wit::job_types::Job;
use routes::RouteTable;
use runtime::{CallError, Plugin, Runtime};
use std::sync::Arc;

/// The loaded plugins, their routes, and the runtime that runs them.
pub struct PluginSet {
    pub runtime: Runtime,
    pub list: Vec<Arc<Plugin>>,
    pub routes: RouteTable,
}

impl PluginSet {
    pub fn by_name(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.list.iter().find(|p| *p.name == *name)
    }

    /// The plugin whose manifest says the agent key may read its GET routes.
    pub fn key_readable(&self, index: usize) -> bool {
        self.list.get(index).is_some_and(|p| p.manifest.key_read)
    }
}

impl Runner for PluginSet {
    async fn init_all(&self) {
        for plugin in &self.list {
            match self.runtime.init(plugin).await {
                Ok(Ok(())) => {}
                Ok(Err(message)) => {
                    tracing::error!(plugin = %plugin.name, "plugin start-up hook failed: {message}")
                }
                Err(e) => {
                    tracing::error!(plugin = %plugin.name, "plugin start-up hook failed: {e}")
                }
            }
        }
    }

    async fn run(&self, plugin: &str, job: Job) -> Outcome {
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
