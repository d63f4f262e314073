//! The database-service API (`shared/api-reference/database-service-api.txt`):
//!
//! - `GET /api/databases`, `GET /api/databases/:id` → the managed databases
//!   with a live status;
//! - `PATCH`/`PUT /api/databases/:id` → their periodic backup settings;
//! - `GET /api/databases/:id/actions`, `POST /api/databases/:id/action` →
//!   their engine's actions, run by the action modules;
//! - `GET /api/operations/:id`, `GET /api/databases/:id/operations[/:op]` →
//!   long work on them.
//!
//! The host holds the databases and their credentials (`databases`
//! capability); this plugin shapes requests and answers.

mod settings;
mod shape;

use dbagent_sdk::databases::{self, ErrorKind, Refusal};
use dbagent_sdk::{Error, Params, Request, Response, Router, log, operations};
use serde_json::{Value, json};

fn handle(req: &Request) -> Result<Response, Error> {
    if req.prefix == "/api/operations" {
        return Router::new().get("/:id", operation).handle(req);
    }
    Router::new()
        .get("/", list)
        .get("/:id", one)
        .patch("/:id", update)
        .put("/:id", update)
        .get("/:id/actions", actions)
        .post("/:id/action", action)
        .post("/:id/pitr/restore", pitr_restore)
        .post("/:id/upgrade", upgrade)
        .get("/:id/operations", database_operations)
        .get("/:id/operations/:op", database_operation)
        .handle(req)
}

dbagent_sdk::export_plugin!(handle);

/// 404 as the reference's clients expect it.
fn not_found(resource: &str) -> Response {
    Response::json(404, &json!({"resource": resource, "error": "not found"}))
}

fn list(_: &Request, _: &Params) -> Result<Response, Error> {
    let all: Vec<Value> = databases::all().iter().map(shape::database).collect();
    Ok(Response::ok(&json!({ "databases": all })))
}

fn one(_: &Request, params: &Params) -> Result<Response, Error> {
    Ok(match databases::get(params.get("id")) {
        Some(db) => Response::ok(&json!({ "database": shape::database(&db) })),
        None => not_found("database"),
    })
}

fn update(req: &Request, params: &Params) -> Result<Response, Error> {
    let id = params.get("id");
    let Some(db) = databases::get(id) else {
        return Ok(not_found("database"));
    };
    let body: Value =
        serde_json::from_slice(&req.body).map_err(|_| Error::bad_request("Invalid json format"))?;
    let change = match settings::parse(&body) {
        Ok(change) => change,
        Err(errors) => return Ok(Response::json(422, &json!({ "errors": errors }))),
    };
    let updated =
        match databases::set_periodic_backups(&db.id, change.enabled, change.hours.as_deref()) {
            Ok(updated) => updated,
            Err(refused) => return Ok(refusal(refused)),
        };
    log::info(&format!(
        "periodic backups of {} set to {:?} at {:?}",
        updated.resource_id,
        updated.periodic_backups_enabled,
        updated.periodic_backups_scheduled_at
    ));
    Ok(Response::ok(
        &json!({ "database": shape::database(&updated) }),
    ))
}

fn actions(_: &Request, params: &Params) -> Result<Response, Error> {
    Ok(match databases::actions(params.get("id")) {
        Some(actions) => {
            let actions: Vec<Value> = actions.iter().map(shape::action).collect();
            Response::ok(&json!({ "actions": actions }))
        }
        None => not_found("database"),
    })
}

/// `{"ok": 0, "error": ...}` with the status that says whose fault it is.
fn action_failed(status: u16, message: &str) -> Response {
    Response::json(status, &json!({"ok": 0, "error": message}))
}

fn action(req: &Request, params: &Params) -> Result<Response, Error> {
    let id = params.get("id");
    if databases::actions(id).is_none() {
        return Ok(not_found("database"));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Ok(action_failed(400, "Invalid json format"));
    };
    let Some(name) = body.get("action_name").and_then(Value::as_str) else {
        return Ok(action_failed(
            400,
            "action_name is missing: send {\"action_name\": \"...\", \"params\": ...}",
        ));
    };
    // `params` may be an object, a bare string, null or absent.
    let action_params = body.get("params").cloned().unwrap_or(Value::Null);
    match databases::run_action(id, name, &action_params.to_string()) {
        Ok(result) => {
            let result: Value = serde_json::from_str(&result).unwrap_or(Value::String(result));
            Ok(Response::ok(&json!({"ok": 1, "result": result})))
        }
        Err(e) => {
            let status = match e.kind {
                ErrorKind::BadParams => 400,
                ErrorKind::NotFound => 404,
                ErrorKind::Conflict => 409,
                ErrorKind::Refused => 403,
                ErrorKind::Unavailable => 503,
                ErrorKind::Failed => 500,
            };
            Ok(action_failed(status, &e.message))
        }
    }
}

/// A refusal of the host as the reference's clients expect it: 422 with
/// `{"errors": {"<field>": ["<message>"]}}`, 400 and 500 with `{"error"}`.
fn refusal(refused: Refusal) -> Response {
    match refused {
        Refusal::NotFound => not_found("database"),
        Refusal::BadRequest(message) => Response::json(400, &json!({"error": message})),
        Refusal::Unprocessable((field, message)) => {
            Response::json(422, &json!({"errors": {field: [message]}}))
        }
        Refusal::Failed(message) => Response::json(500, &json!({"error": message})),
    }
}

fn pitr_restore(req: &Request, params: &Params) -> Result<Response, Error> {
    let id = params.get("id");
    if databases::get(id).is_none() {
        return Ok(not_found("database"));
    }
    let body: Value =
        serde_json::from_slice(&req.body).map_err(|_| Error::bad_request("Invalid json format"))?;
    let time = match body.get("restore_time") {
        Some(Value::String(time)) => time,
        None | Some(Value::Null) => {
            return Ok(Response::json(
                422,
                &json!({"errors": {"restore_time": ["is missing: send {\"restore_time\": \"2019-07-18T23:00:00Z\"}"]}}),
            ));
        }
        // Like a string that is no time: the host answers those 400.
        Some(_) => {
            return Ok(Response::json(
                400,
                &json!({"error": "restore_time must be an RFC 3339 time string, such as \"2019-07-18T23:00:00Z\""}),
            ));
        }
    };
    Ok(match databases::pitr_restore(id, time) {
        Ok(operation_id) => {
            log::info(&format!(
                "point-in-time restore of {id} to {time}: operation {operation_id}"
            ));
            Response::json(201, &json!({"operation_id": operation_id}))
        }
        Err(refused) => refusal(refused),
    })
}

fn upgrade(_: &Request, params: &Params) -> Result<Response, Error> {
    let id = params.get("id");
    let Some(db) = databases::get(id) else {
        return Ok(not_found("database"));
    };
    Ok(match databases::upgrade(id) {
        Ok(plan) => {
            log::info(&format!(
                "upgrade of {id} to {}: operation {}",
                plan.version, plan.operation_id
            ));
            let mut response = Response::json(202, &shape::upgrade(&db, &plan));
            response.headers.push((
                "location".into(),
                format!("/api/operations/{}", plan.operation_id),
            ));
            response
        }
        Err(refused) => refusal(refused),
    })
}

fn database_operations(_: &Request, params: &Params) -> Result<Response, Error> {
    let Some(db) = databases::get(params.get("id")) else {
        return Ok(not_found("database"));
    };
    let all: Vec<Value> = operations::of_database(&db.id)
        .iter()
        .map(shape::operation)
        .collect();
    Ok(Response::ok(&json!({ "operations": all })))
}

fn database_operation(_: &Request, params: &Params) -> Result<Response, Error> {
    let Some(db) = databases::get(params.get("id")) else {
        return Ok(not_found("database"));
    };
    Ok(match operations::get(params.get("op")) {
        Some(op) if op.database_id == db.id || op.database_id == db.resource_id => {
            Response::ok(&json!({ "operation": shape::operation(&op) }))
        }
        _ => not_found("operation"),
    })
}

fn operation(_: &Request, params: &Params) -> Result<Response, Error> {
    Ok(match operations::get(params.get("id")) {
        Some(op) => Response::ok(&json!({ "operation": shape::operation(&op) })),
        None => not_found("operation"),
    })
}
