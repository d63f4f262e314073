//! The state store (SQLite): one module per family of tables. Jobs' tables are read and
//! written by `crate::jobs::store`, beside the scheduler.

mod db;
mod kv;
pub(crate) mod migrations;
mod notifications;
mod sessions;

pub use db::{FILE_NAME, Store};
pub use sessions::SessionLimits;
