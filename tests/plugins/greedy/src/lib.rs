//! Really imports `postgres`: the host must refuse it unless that is granted.

use dbagent_sdk::{Error, Request, Response, pg};
use serde_json::json;

fn handle(_: &Request) -> Result<Response, Error> {
    let rows = pg::query(None, "SELECT 1", &[])?;
    Ok(Response::ok(&json!({ "rows": rows.len() })))
}

dbagent_sdk::export_plugin!(handle);
