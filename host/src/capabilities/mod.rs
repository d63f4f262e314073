//! Host capabilities exposed to plugins through the `dbagent:api` interfaces.
//!
//! Each submodule implements one interface for [`PluginState`]; the state a
//! capability needs across requests (connection pools, OS samples) lives in
//! [`Capabilities`], shared by every plugin instance.

pub mod log;
pub mod pg_pool;
pub mod pg_values;
pub mod postgres;
pub mod proc_sampler;
pub mod system;

use std::sync::Arc;

/// What every plugin instance shares with the host.
pub struct Capabilities {
    pub postgres: pg_pool::PgPool,
    pub system: Arc<proc_sampler::Sampler>,
}
