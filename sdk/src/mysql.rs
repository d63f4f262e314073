//! Statements on the MySQL or MariaDB server an action module's call is
//! bound to (the `action-module` feature).
//!
//! ```ignore
//! let rows = mysql::query("SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", &["test".into()])?;
//! ```

use crate::Error;
use crate::bindings::dbagent::api::mysql as raw;
pub use crate::bindings::dbagent::api::mysql::{MyError, RowSet, Value};

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

/// A MySQL error as the SDK's: the server unreachable is 503; access
/// denied 403; an unknown database 404; one that exists 409; a syntax or
/// value error 400; the rest 500. The message keeps the server's code.
impl From<MyError> for Error {
    fn from(e: MyError) -> Error {
        let status = match e.code {
            2002 | 2003 | 2006 | 2013 => 503,
            1044 | 1045 | 1142 | 1227 => 403,
            1049 => 404,
            1007 => 409,
            1064 | 1231 | 1292 | 1366 => 400,
            _ => 500,
        };
        let mut error = Error::new(status, format!("{} (MySQL error {})", e.message, e.code));
        error.sqlstate = (!e.sqlstate.is_empty()).then_some(e.sqlstate);
        error
    }
}

/// Rows by column name.
pub struct Rows(pub RowSet);

impl Rows {
    pub fn len(&self) -> usize {
        self.0.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.rows.is_empty()
    }

    /// The value of `column` in row `row`, if both exist.
    pub fn get(&self, row: usize, column: &str) -> Option<&Value> {
        let index = self.0.columns.iter().position(|c| c == column)?;
        self.0.rows.get(row)?.get(index)
    }

    /// The text of `column` in row `row` (numbers as text too).
    pub fn text(&self, row: usize, column: &str) -> Option<String> {
        match self.get(row, column)? {
            Value::Text(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Uint(u) => Some(u.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Null => None,
        }
    }
}

/// An error of the server keeps its code (`e.code`, e.g. 1007) for the
/// module to act on; `?` turns it into the SDK's or an action's error.
impl From<MyError> for crate::action::ActionError {
    fn from(e: MyError) -> Self {
        Error::from(e).into()
    }
}

pub fn query(sql: &str, params: &[Value]) -> Result<Rows, MyError> {
    raw::query(sql, params).map(Rows)
}

pub fn execute(sql: &str, params: &[Value]) -> Result<u64, MyError> {
    raw::execute(sql, params)
}

/// `name` as a MySQL identifier: in backquotes, a backquote doubled.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}
