//! Host-side bindings of the `dbagent:api` WIT package (`wit/`).
//!
//! Generated for the `agent` world, which holds every interface: each
//! capability links its own interface (`capabilities::*`), and the plugin
//! runtime finds the exports a component has (`handler`, optionally
//! `lifecycle`) one by one, so a component built against a narrower world
//! loads too. Host functions are async (they await PostgreSQL) but look
//! blocking to the guest, so guests in any language can call them.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "agent",
    imports: { default: async },
    exports: { default: async },
});

pub use dbagent::api::{
    action_types, barman, control, databases, http_types, influxdb, job_types, jobs, log, metrics,
    mysql, notifications, operations, postgres, redis, settings, store, system,
};
pub use exports::dbagent::api::{action, handler, lifecycle};
