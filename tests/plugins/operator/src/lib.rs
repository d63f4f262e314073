//! `POST /operator/start?database=ID&kind=K` creates an operation and moves
//! it to `running`; `POST /operator/ID/STATUS[?error=TEXT]` moves it on.
//! Both answer the operation as the host returns it.

use dbagent_sdk::operations::{self, Operation};
use dbagent_sdk::{Error, Params, Request, Response, Router};
use serde_json::json;

fn shape(op: &Operation) -> serde_json::Value {
    json!({
        "id": op.id,
        "database_id": op.database_id,
        "type": op.kind,
        "status": operations::status_name(op.status),
        "started_at": op.started_at,
        "finished_at": op.finished_at,
        "error": op.error,
    })
}

fn start(req: &Request, _: &Params) -> Result<Response, Error> {
    let database = req.query_param("database").unwrap_or_default();
    let kind = req.query_param("kind").unwrap_or_else(|| "test".into());
    let op = operations::create(&database, &kind).map_err(Error::bad_request)?;
    let op =
        operations::update(&op.id, operations::Status::Running, None).map_err(Error::internal)?;
    Ok(Response::ok(&shape(&op)))
}

fn change(req: &Request, params: &Params) -> Result<Response, Error> {
    let status = operations::status_from_name(params.get("status"))
        .ok_or_else(|| Error::bad_request("unknown status"))?;
    let error = req.query_param("error");
    match operations::update(params.get("id"), status, error.as_deref()) {
        Ok(op) => Ok(Response::ok(&shape(&op))),
        Err(message) => Err(Error::new(409, message)),
    }
}

fn handle(req: &Request) -> Result<Response, Error> {
    Router::new()
        .post("/start", start)
        .post("/:id/:status", change)
        .handle(req)
}

dbagent_sdk::export_plugin!(handle);
