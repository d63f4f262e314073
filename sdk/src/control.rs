//! Starting, stopping, restarting and reloading the managed PostgreSQL
//! instance (granted to the bundled administration plugin only).

use crate::bindings::dbagent::api::control as raw;
pub use crate::bindings::dbagent::api::control::Action;

/// Runs `pg_ctl` for `action`; Ok with its output, Err with why it failed
/// and the last lines of its output.
pub fn pg_ctl(action: Action) -> Result<String, String> {
    raw::pg_ctl(action)
}
