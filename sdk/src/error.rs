use crate::bindings::dbagent::api::postgres::PgError;

/// An error that knows whose fault it was: its status is what the client gets,
/// its message is the `error` field of the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub status: u16,
    pub message: String,
    /// PostgreSQL's SQLSTATE when the error came from the server.
    pub sqlstate: Option<String>,
}

impl Error {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Error {
            status,
            message: message.into(),
            sqlstate: None,
        }
    }

    /// 400: the request cannot be understood (e.g. invalid JSON).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 404: what the request names does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// 406: a parameter is missing or malformed (temBoard's convention).
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, message)
    }

    /// 406 `Parameter 'NAME' is malformed.`, temBoard's wording.
    pub fn malformed(parameter: &str) -> Self {
        Self::not_acceptable(format!("Parameter '{parameter}' is malformed."))
    }

    /// 500: the plugin or the database failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// 503: the database is unavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, message)
    }

    #[cfg(not(feature = "action-module"))]
    pub fn into_response(self) -> crate::Response {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.message.into());
        if let Some(code) = self.sqlstate {
            body.insert("sqlstate".into(), code.into());
        }
        crate::Response::json(self.status, &serde_json::Value::Object(body))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for Error {}

impl From<PgError> for Error {
    /// Connection failures (class 08), a server shutting down (57P) and out of
    /// resources (53) are the database's state, not the request's: 503. A cancelled statement is a
    /// timeout: 504. Text the server cannot hold (a NUL, 22021; a character
    /// its encoding lacks, 22P05) can only come from the request: 400.
    /// Everything else is the agent's or the server's: 500.
    fn from(e: PgError) -> Self {
        let status = match e.sqlstate.as_str() {
            // Class 53 is the server's resources: 53300 also when every
            // connection of the agent's pool stayed busy.
            s if s.starts_with("08") || s.starts_with("57P") || s.starts_with("53") => 503,
            "57014" => 504,
            "42501" => 403,
            "22021" | "22P05" => 400,
            _ => 500,
        };
        let message = match status {
            503 => format!("PostgreSQL is unavailable: {}", e.message),
            _ => e.message,
        };
        Error {
            status,
            message,
            sqlstate: Some(e.sqlstate),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::internal(format!("cannot encode JSON: {e}"))
    }
}
