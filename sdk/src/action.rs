//! Writing an engine's action module (the SDK's `action-module` feature).
//!
//! The host calls `describe` once at start-up and `run` for each
//! `POST /api/databases/:id/action` on a database of the module's engine,
//! with the engine's capability bound to that database.
//!
//! ```ignore
//! use dbagent_sdk::action::{Action, ActionError, Params};
//!
//! fn actions() -> Vec<Action> {
//!     vec![Action::new("list-databases", "List the logical databases", r#"{"type": "null"}"#)]
//! }
//!
//! fn run(name: &str, params: &Params) -> Result<serde_json::Value, ActionError> {
//!     match name {
//!         "list-databases" => Ok(serde_json::json!([])),
//!         other => Err(ActionError::bad_params(format!("unknown action '{other}'"))),
//!     }
//! }
//!
//! dbagent_sdk::export_action_module!(actions, run);
//! ```

use crate::Error;
pub use crate::bindings::dbagent::api::action_types::{
    ActionError, ActionInfo as Action, ErrorKind,
};
use serde_json::Value;

impl Action {
    pub fn new(name: &str, description: &str, params_schema: &str) -> Action {
        Action {
            name: name.into(),
            description: description.into(),
            params_schema: params_schema.into(),
        }
    }
}

impl ActionError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ActionError {
        ActionError {
            kind,
            message: message.into(),
        }
    }

    /// 400: the params do not fit the action.
    pub fn bad_params(message: impl Into<String>) -> ActionError {
        Self::new(ErrorKind::BadParams, message)
    }

    /// 404: what the params name does not exist.
    pub fn not_found(message: impl Into<String>) -> ActionError {
        Self::new(ErrorKind::NotFound, message)
    }

    /// 409: the server's state conflicts (it exists already, …).
    pub fn conflict(message: impl Into<String>) -> ActionError {
        Self::new(ErrorKind::Conflict, message)
    }

    /// 403: not allowed on that object (a protected database).
    pub fn refused(message: impl Into<String>) -> ActionError {
        Self::new(ErrorKind::Refused, message)
    }

    /// 500: the server or the module failed.
    pub fn failed(message: impl Into<String>) -> ActionError {
        Self::new(ErrorKind::Failed, message)
    }
}

/// An SDK error (a failed query) as an action's: the database's state is
/// `unavailable`, a privilege or a missing object keeps its meaning, the
/// rest `failed`.
impl From<Error> for ActionError {
    fn from(e: Error) -> Self {
        let kind = match e.status {
            503 | 504 => ErrorKind::Unavailable,
            403 => ErrorKind::Refused,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            400 | 406 | 422 => ErrorKind::BadParams,
            _ => ErrorKind::Failed,
        };
        ActionError::new(kind, e.message)
    }
}

/// An action's `params`: the JSON the request sent (an object, a bare
/// string, or null when it sent none).
#[derive(Debug, Clone, PartialEq)]
pub struct Params(pub Value);

impl Params {
    pub fn parse(text: &str) -> Result<Params, ActionError> {
        serde_json::from_str(text)
            .map(Params)
            .map_err(|_| ActionError::bad_params("params are not JSON"))
    }

    /// The string field `name` of an object, or a 400 naming it.
    pub fn string(&self, name: &str) -> Result<&str, ActionError> {
        match self.0.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(ActionError::bad_params(format!(
                "params.{name} must be a string"
            ))),
            None => Err(ActionError::bad_params(format!("params.{name} is missing"))),
        }
    }

    /// The integer field `name` of an object, or a 400 naming it.
    pub fn int(&self, name: &str) -> Result<i64, ActionError> {
        match self.0.get(name) {
            Some(value) => value.as_i64().ok_or_else(|| {
                ActionError::bad_params(format!("params.{name} must be an integer"))
            }),
            None => Err(ActionError::bad_params(format!("params.{name} is missing"))),
        }
    }

    /// The params as a bare string (`"params": "A,B"`), or a 400.
    pub fn as_str(&self) -> Result<&str, ActionError> {
        self.0
            .as_str()
            .ok_or_else(|| ActionError::bad_params("params must be a string"))
    }

    /// Whether the request sent no params (absent or null).
    pub fn is_null(&self) -> bool {
        self.0.is_null()
    }
}

/// Why `value` does not fit `schema`, for the JSON Schema keywords action
/// params use: `type`, `enum`, `properties`, `required`,
/// `additionalProperties: false`, `minLength`/`maxLength`,
/// `minimum`/`maximum`. Other keywords (`pattern`, `description`) are left
/// to the action.
pub fn misfit(schema: &Value, value: &Value, at: &str) -> Option<String> {
    let type_name = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits_type = |t: &Value| {
        let actual = type_name(value);
        t.as_str()
            .is_some_and(|t| t == actual || (t == "number" && actual == "integer"))
    };
    if let Some(wanted) = schema.get("type") {
        let fits = match wanted {
            Value::Array(types) => types.iter().any(fits_type),
            t => fits_type(t),
        };
        if !fits {
            return Some(format!(
                "{at} must be of type {wanted}, not {}",
                type_name(value)
            ));
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        return Some(format!(
            "{at} must be one of {}",
            Value::Array(allowed.clone())
        ));
    }
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            if let Some(Value::Array(required)) = schema.get("required") {
                for name in required.iter().filter_map(Value::as_str) {
                    if !fields.contains_key(name) {
                        return Some(format!("{at}.{name} is missing"));
                    }
                }
            }
            for (name, field) in fields {
                match properties.and_then(|p| p.get(name)) {
                    Some(field_schema) => {
                        if let Some(why) = misfit(field_schema, field, &format!("{at}.{name}")) {
                            return Some(why);
                        }
                    }
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return Some(format!("{at}.{name} is not a parameter of this action"));
                    }
                    None => {}
                }
            }
        }
        Value::String(text) => {
            let length = text.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && length < min
            {
                return Some(format!("{at} must be at least {min} characters long"));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && length > max
            {
                return Some(format!("{at} must be at most {max} characters long"));
            }
        }
        Value::Number(n) => {
            // JSON numbers are finite: every comparison below is decided.
            let n = n.as_f64().unwrap_or_default();
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                return Some(format!("{at} must be at least {min}"));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                return Some(format!("{at} must be at most {max}"));
            }
        }
        _ => {}
    }
    None
}

#[doc(hidden)]
pub fn dispatch(
    name: &str,
    params: &str,
    describe: fn() -> Vec<Action>,
    run: fn(&str, &Params) -> Result<Value, ActionError>,
) -> Result<String, ActionError> {
    let params = Params::parse(params)?;
    // Params that do not fit the schema the action publishes never reach
    // it: a 400 saying what does not fit, the same for every module.
    if let Some(action) = describe().into_iter().find(|a| a.name == name)
        && let Ok(schema) = serde_json::from_str::<Value>(&action.params_schema)
        && let Some(why) = misfit(&schema, &params.0, "params")
    {
        return Err(ActionError::bad_params(why));
    }
    let result = run(name, &params)?;
    serde_json::to_string(&result)
        .map_err(|e| ActionError::failed(format!("cannot encode the result: {e}")))
}

/// Exports an action module: `describe` (a `fn() -> Vec<Action>`) and
/// `run` (a `fn(&str, &Params) -> Result<serde_json::Value, ActionError>`).
#[macro_export]
macro_rules! export_action_module {
    ($describe:path, $run:path) => {
        struct __DbagentActionModule;

        impl $crate::bindings::exports::dbagent::api::action::Guest for __DbagentActionModule {
            fn describe() -> Vec<$crate::action::Action> {
                $describe()
            }

            fn run(
                name: String,
                params: String,
            ) -> Result<String, $crate::action::ActionError> {
                $crate::action::dispatch(&name, &params, $describe, $run)
            }
        }

        $crate::bindings::export!(__DbagentActionModule with_types_in $crate::bindings);
    };
}

#[cfg(test)]
mod tests {
    use super::misfit;
    use serde_json::json;

    #[test]
    fn params_are_checked_against_the_published_schema() {
        let none = json!({"type": ["null", "object"], "additionalProperties": false});
        assert_eq!(misfit(&none, &json!(null), "params"), None);
        assert_eq!(misfit(&none, &json!({}), "params"), None);
        assert!(
            misfit(&none, &json!("x"), "params")
                .unwrap()
                .contains("type")
        );
        assert!(
            misfit(&none, &json!({"a": 1}), "params")
                .unwrap()
                .contains("params.a")
        );
        let name = json!({"type": "object", "properties": {"database_name": {"type": "string", "minLength": 1, "maxLength": 3}}, "required": ["database_name"]});
        assert_eq!(
            misfit(&name, &json!({"database_name": "abc"}), "params"),
            None
        );
        assert!(
            misfit(&name, &json!({}), "params")
                .unwrap()
                .ends_with("is missing")
        );
        assert!(misfit(&name, &json!({"database_name": 5}), "params").is_some());
        assert!(misfit(&name, &json!({"database_name": ""}), "params").is_some());
        assert!(misfit(&name, &json!({"database_name": "abcd"}), "params").is_some());
        let pid =
            json!({"type": "object", "properties": {"pid": {"type": "integer", "minimum": 1}}});
        assert!(misfit(&pid, &json!({"pid": 0}), "params").is_some());
        assert!(misfit(&pid, &json!({"pid": 1.5}), "params").is_some());
        assert_eq!(misfit(&pid, &json!({"pid": 7}), "params"), None);
        let value = json!({"type": ["string", "integer"]});
        assert_eq!(misfit(&value, &json!(3), "v"), None);
        assert!(misfit(&value, &json!(true), "v").is_some());
    }
}
