//! The managed databases (for the bundled database-service plugin, the one
//! plugin the host grants `databases`).

pub use crate::bindings::dbagent::api::action_types::{ActionError, ActionInfo, ErrorKind};
pub use crate::bindings::dbagent::api::databases::{
    Database, Feature, Instance, Refusal, UpgradePlan, actions, all, get, pitr_restore, run_action,
    set_periodic_backups, upgrade,
};
