//! The JSON the reference shows, field by field, in its order.

use dbagent_sdk::databases::{ActionInfo, Database, UpgradePlan};
use dbagent_sdk::operations::{self, Operation};
use serde_json::{Value, json};

pub fn database(db: &Database) -> Value {
    let instances: Vec<Value> = db
        .instances
        .iter()
        .map(|i| {
            json!({
                "id": i.id,
                "hostname": i.hostname,
                "port": i.port,
                "status": i.status,
                "type": i.kind,
            })
        })
        .collect();
    let features: Vec<Value> = db
        .features
        .iter()
        .map(|f| json!({"name": f.name, "status": f.status}))
        .collect();
    json!({
        "id": db.id,
        "resource_id": db.resource_id,
        "app_name": db.app_name,
        "created_at": db.created_at,
        "encryption_at_rest": db.encryption_at_rest,
        "features": features,
        "plan": db.plan,
        "status": db.status,
        "type_id": db.type_id,
        "type_name": db.engine,
        "version_id": db.version_id,
        "instances": instances,
        "readable_version": db.readable_version,
        "periodic_backups_enabled": db.periodic_backups_enabled,
        "periodic_backups_scheduled_at": db.periodic_backups_scheduled_at,
    })
}

pub fn action(info: &ActionInfo) -> Value {
    let schema: Value = serde_json::from_str(&info.params_schema).unwrap_or(Value::Null);
    json!({
        "name": info.name,
        "description": info.description,
        "params_schema": schema,
    })
}

pub fn operation(op: &Operation) -> Value {
    json!({
        "id": op.id,
        "database_id": op.database_id,
        "type": op.kind,
        "status": operations::status_name(op.status),
        "created_at": op.created_at,
        "started_at": op.started_at,
        "finished_at": op.finished_at,
        "error": op.error,
    })
}

/// The answer to `POST /api/databases/:id/upgrade`, in the reference's
/// order. `id` is the operation's (the reference's is the new version
/// record's, which this agent does not keep apart); `build` and
/// `release_number` carry no meaning here and are 0.
pub fn upgrade(db: &Database, plan: &UpgradePlan) -> Value {
    let features: Vec<&str> = db
        .features
        .iter()
        .filter(|f| f.status == "ACTIVATED")
        .map(|f| f.name.as_str())
        .collect();
    json!({
        "message": format!("Database upgrade to {} is pending", plan.version),
        "build": 0,
        "created_at": plan.created_at,
        "database_type_id": db.type_id,
        "deleted_at": null,
        "features": features,
        "major": plan.major,
        "minor": plan.minor,
        "patch": plan.patch,
        "release_number": 0,
        "updated_at": plan.created_at,
        "warning_message": "",
        "allowed_plugins": [],
        "id": plan.operation_id,
    })
}
