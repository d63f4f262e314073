//! Long work on a managed database, followed by clients at
//! `/api/operations/:id`: create one, then move it through its statuses.

pub use crate::bindings::dbagent::api::operations::{
    Operation, Status, create, get, of_database, update,
};

/// The status as the API writes it.
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Pending => "pending",
        Status::Running => "running",
        Status::Finished => "finished",
        Status::Error => "error",
        Status::UserError => "user-error",
        Status::Cancelling => "cancelling",
        Status::Cancelled => "cancelled",
    }
}

/// The status named `name`, as the API writes it.
pub fn status_from_name(name: &str) -> Option<Status> {
    Some(match name {
        "pending" => Status::Pending,
        "running" => Status::Running,
        "finished" => Status::Finished,
        "error" => Status::Error,
        "user-error" => Status::UserError,
        "cancelling" => Status::Cancelling,
        "cancelled" => Status::Cancelled,
        _ => return None,
    })
}
