//! A drop-in action module adding `pg-database-size` to the postgresql
//! engine: `{"database_name": NAME}` → `{"name": NAME, "bytes": N}`.

use dbagent_sdk::action::{Action, ActionError, Params};
use dbagent_sdk::pg;
use serde_json::{Value, json};

fn actions() -> Vec<Action> {
    vec![Action::new(
        "pg-database-size",
        "The size of a logical database in bytes",
        r#"{"type": "object", "properties": {"database_name": {"type": "string"}}, "required": ["database_name"]}"#,
    )]
}

fn run(name: &str, params: &Params) -> Result<Value, ActionError> {
    if name != "pg-database-size" {
        return Err(ActionError::bad_params(format!("unknown action '{name}'")));
    }
    let database = params.string("database_name")?;
    let rows = pg::query(
        None,
        "SELECT pg_database_size(datname)::int8 AS bytes FROM pg_database WHERE datname = $1",
        &[database.into()],
    )?;
    let row = rows
        .first()
        .ok_or_else(|| ActionError::not_found(format!("database \"{database}\" does not exist")))?;
    Ok(json!({"name": database, "bytes": row.get::<i64>("bytes")?}))
}

dbagent_sdk::export_action_module!(actions, run);
