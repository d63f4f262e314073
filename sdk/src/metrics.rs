//! The agent's own figures for Prometheus (the `metrics` capability).

pub use crate::bindings::dbagent::api::metrics::agent_metrics;
