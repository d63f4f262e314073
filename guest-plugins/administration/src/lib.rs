//! temBoard's administration API: `POST /administration/control` with
//! `{"action": "start" | "stop" | "restart" | "reload"}` runs `pg_ctl` for
//! the managed instance through the host's `control` interface and answers
//! `{"action", "state": "ok"}`.
//!
//! Any other action, or a body that is not such an object, is temBoard's
//! 406 `Parameter 'action' is malformed.`; a failed pg_ctl is a 500 with
//! the last lines of its output. Every action, done or failed, is recorded
//! in the notifications.

use dbagent_sdk::control::{self, Action};
use dbagent_sdk::{Error, Params, Request, Response, Router, log, notifications};
use serde_json::{Value, json};

fn handle(req: &Request) -> Result<Response, Error> {
    Router::new().post("/control", control).handle(req)
}

dbagent_sdk::export_plugin!(handle);

/// The action a request body names, if it is exactly one of the four.
fn action_of(body: &[u8]) -> Option<(Action, &'static str)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    match value.get("action")?.as_str()? {
        "start" => Some((Action::Start, "start")),
        "stop" => Some((Action::Stop, "stop")),
        "restart" => Some((Action::Restart, "restart")),
        "reload" => Some((Action::Reload, "reload")),
        _ => None,
    }
}

fn control(req: &Request, _: &Params) -> Result<Response, Error> {
    let (action, name) = action_of(&req.body).ok_or_else(|| Error::malformed("action"))?;
    match control::pg_ctl(action) {
        Ok(_) => {
            notifications::notify(&format!("PostgreSQL {name}"));
            Ok(Response::ok(&json!({ "action": name, "state": "ok" })))
        }
        Err(reason) => {
            log::warn(&format!("PostgreSQL {name} failed: {reason}"));
            notifications::notify(&format!("PostgreSQL {name} failed"));
            Err(Error::internal(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_four_actions_are_accepted() {
        for (body, expected) in [
            (r#"{"action": "start"}"#, Some("start")),
            (r#"{"action": "stop"}"#, Some("stop")),
            (r#"{"action": "restart", "extra": 1}"#, Some("restart")),
            (r#"{"action": "reload"}"#, Some("reload")),
            (r#"{"action": "Restart"}"#, None),
            (r#"{"action": "promote"}"#, None),
            (r#"{"action": 1}"#, None),
            (r#"{}"#, None),
            (r#"["start"]"#, None),
            ("", None),
            ("{not json", None),
        ] {
            assert_eq!(
                action_of(body.as_bytes()).map(|(_, name)| name),
                expected,
                "{body}"
            );
        }
    }
}
