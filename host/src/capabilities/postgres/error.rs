//! PostgreSQL's errors as the `postgres` interface carries them.

use crate::wit::postgres::PgError;

/// The innermost message of an error chain (tokio-postgres wraps the cause).
pub fn source_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// A server error keeps its SQLSTATE, message, detail and hint; a closed
/// connection is "08006"; anything else (e.g. a parameter that cannot be
/// encoded) is "22023" with the cause.
pub fn pg_error(e: &tokio_postgres::Error) -> PgError {
    if let Some(db) = e.as_db_error() {
        return PgError {
            sqlstate: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
        };
    }
    if e.is_closed() {
        return PgError {
            sqlstate: "08006".into(),
            message: source_message(e),
            detail: None,
            hint: None,
        };
    }
    PgError {
        sqlstate: "22023".into(),
        message: source_message(e),
        detail: None,
        hint: None,
    }
}
