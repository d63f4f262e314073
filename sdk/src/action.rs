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

#[doc(hidden)]
pub fn dispatch(
    name: &str,
    params: &str,
    run: fn(&str, &Params) -> Result<Value, ActionError>,
) -> Result<String, ActionError> {
    let params = Params::parse(params)?;
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
                $crate::action::dispatch(&name, &params, $run)
            }
        }

        $crate::bindings::export!(__DbagentActionModule with_types_in $crate::bindings);
    };
}
