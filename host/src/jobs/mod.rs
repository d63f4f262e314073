//! Work the host runs on plugins' behalf, later and durably: the `jobs`
//! capability plugins schedule with, the tables that keep the schedule,
//! and the scheduler that runs what is due through a [`scheduler::Runner`].

pub mod capability;
pub mod scheduler;
pub mod service;
pub mod store;
