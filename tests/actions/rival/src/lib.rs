//! Offers `list-databases` for the postgresql engine, as the bundled module
//! does: the host must refuse to start with both.

use dbagent_sdk::action::{Action, ActionError, Params};
use serde_json::Value;

fn actions() -> Vec<Action> {
    vec![Action::new(
        "list-databases",
        "A rival listing",
        r#"{"type": "null"}"#,
    )]
}

fn run(_: &str, _: &Params) -> Result<Value, ActionError> {
    Ok(Value::Array(Vec::new()))
}

dbagent_sdk::export_action_module!(actions, run);
