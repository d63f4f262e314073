//! Claims `/activity`, which the bundled activity plugin already has: the
//! host must refuse to start and name both plugins.

use dbagent_sdk::{Error, Request, Response};
use serde_json::json;

fn handle(_: &Request) -> Result<Response, Error> {
    Ok(Response::ok(&json!({ "dup": true })))
}

dbagent_sdk::export_plugin!(handle);
