//! An action module a vendor ships for an engine dbagent already serves:
//! `memory-doctor` on Redis databases. The host runs it on the Redis server
//! of the database a request addresses, with the `redis` capability the
//! operator granted; it reaches no other server and no other engine.
//!
//! `POST /api/databases/:id/action` with `{"action_name": "memory-doctor"}`
//! answers `{"ok": 1, "result": {"advice": "...", "used_memory": N,
//! "used_memory_peak": N, "maxmemory": N, "mem_fragmentation_ratio": F}}`.

use dbagent_sdk::action::{Action, ActionError, Params};
use dbagent_sdk::redis::{self, Reply};
use serde_json::{Value, json};

fn actions() -> Vec<Action> {
    vec![Action::new(
        "memory-doctor",
        "Redis' own advice on its memory use (MEMORY DOCTOR) with the figures behind it",
        r#"{"type": ["null", "object"], "additionalProperties": false}"#,
    )]
}

fn run(name: &str, _params: &Params) -> Result<Value, ActionError> {
    match name {
        "memory-doctor" => memory_doctor(),
        other => Err(ActionError::bad_params(format!("unknown action '{other}'"))),
    }
}

dbagent_sdk::export_action_module!(actions, run);

fn text(reply: &Reply) -> String {
    match reply {
        Reply::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => other.as_text().unwrap_or_default().to_string(),
    }
}

fn memory_doctor() -> Result<Value, ActionError> {
    let advice = text(&redis::command(None, &["MEMORY", "DOCTOR"])?);
    let info = text(&redis::command(None, &["INFO", "memory"])?);
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::to_string)
    };
    let integer = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok());
    Ok(json!({
        "advice": advice,
        "used_memory": integer("used_memory"),
        "used_memory_peak": integer("used_memory_peak"),
        "maxmemory": integer("maxmemory"),
        "mem_fragmentation_ratio": field("mem_fragmentation_ratio").and_then(|v| v.parse::<f64>().ok()),
    }))
}
