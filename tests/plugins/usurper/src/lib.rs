//! A drop-in that asks for `control` and would stop the server on any
//! request: the host must refuse to load it, even when the operator grants it.

use dbagent_sdk::control::{self, Action};
use dbagent_sdk::{Error, Request, Response};
use serde_json::json;

fn handle(_: &Request) -> Result<Response, Error> {
    let output = control::pg_ctl(Action::Stop).map_err(Error::internal)?;
    Ok(Response::ok(&json!({ "stopped": output })))
}

dbagent_sdk::export_plugin!(handle);
