//! The host's capabilities: what plugins may do, each through one
//! `dbagent:api` interface.
//!
//! Every capability is one module with the same shape:
//!
//! - `NAME`: the grant and manifest name (`postgres`, `system`, …);
//! - `Service`: what it shares across calls (a connection pool, a process
//!   sampler, the state store), built once at start-up;
//! - `State`: what one plugin call holds (its connection, its user), built
//!   from the service and the [`call::Call`] for each instance;
//! - `add_to_linker`: links its interface to the `State` of an instance.
//!
//! `plugins::registry` lists them; adding a capability is one module here,
//! one WIT interface and one line there.

pub mod barman;
pub mod call;
pub mod control;
pub mod databases;
pub mod influxdb;
pub mod kv;
pub mod log;
pub mod metrics;
pub mod mysql;
pub mod notifications;
pub mod operations;
pub mod postgres;
pub mod redis;
pub mod settings;
pub mod system;
pub mod targets;
