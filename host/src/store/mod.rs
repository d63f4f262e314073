//! The state store (SQLite): one module per family of tables. Jobs' tables are read and
//! written by `crate::jobs::store`, beside the scheduler.

mod barman_jobs;
mod databases;
mod db;
mod kv;
pub(crate) mod migrations;
mod notifications;
mod operations;
mod sessions;

pub use barman_jobs::{BarmanJobRow, NewBarmanJob};
pub use databases::DatabaseRecord;
pub use db::{FILE_NAME, Store};
pub use operations::OperationRow;
pub use sessions::SessionLimits;
