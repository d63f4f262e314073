//! Typed queries on the managed PostgreSQL instance.
//!
//! ```ignore
//! let rows = pg::query(None, "SELECT pid, query FROM pg_stat_activity WHERE datname = $1", &["postgres".into()])?;
//! for row in rows.iter() {
//!     let pid: i64 = row.get("pid")?;
//!     let query: Option<String> = row.get("query")?;
//! }
//! ```

use crate::Error;
use crate::bindings::dbagent::api::postgres as raw;
pub use crate::bindings::dbagent::api::postgres::{PgError, RowSet, Value};

/// Runs a statement that returns rows, on `database` or the default database.
pub fn query(database: Option<&str>, sql: &str, params: &[Value]) -> Result<Rows, Error> {
    let set = raw::query(database, sql, params)?;
    Ok(Rows {
        columns: set.columns,
        rows: set.rows,
    })
}

/// Runs several queries on `database` in one round trip to the server
/// (they are pipelined on one connection), each with its own result in the
/// order given. Worth it when a page needs several independent queries.
///
/// ```ignore
/// let [sessions, size] = pg::query_batch(None, &[
///     ("SELECT count(*) AS n FROM pg_stat_activity", &[]),
///     ("SELECT pg_database_size(current_database()) AS bytes", &[]),
/// ])?.try_into().map_err(|_| Error::internal("two results"))?;
/// ```
pub fn query_batch(
    database: Option<&str>,
    statements: &[(&str, &[Value])],
) -> Result<Vec<Result<Rows, Error>>, Error> {
    let batch: Vec<raw::Statement> = statements
        .iter()
        .map(|(sql, params)| raw::Statement {
            sql: (*sql).to_string(),
            params: params.to_vec(),
        })
        .collect();
    Ok(raw::query_batch(database, &batch)?
        .into_iter()
        .map(|result| {
            result
                .map(|set| Rows {
                    columns: set.columns,
                    rows: set.rows,
                })
                .map_err(Error::from)
        })
        .collect())
}

/// Runs a statement for its effect; returns the number of rows affected.
pub fn execute(database: Option<&str>, sql: &str, params: &[Value]) -> Result<u64, Error> {
    Ok(raw::execute(database, sql, params)?)
}

/// A result set whose rows can be read by column name.
#[derive(Debug, Clone)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|values| Row {
            columns: &self.columns,
            values,
        })
    }

    /// The first row, if any.
    pub fn first(&self) -> Option<Row<'_>> {
        self.iter().next()
    }

    /// Every row as a JSON object keyed by column name.
    pub fn to_json(&self) -> Vec<serde_json::Value> {
        self.iter().map(|row| row.to_json()).collect()
    }
}

/// One row of [`Rows`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl<'a> Row<'a> {
    /// The value of column `name`, or an error naming the column.
    pub fn value(&self, name: &str) -> Result<&'a Value, Error> {
        self.columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| Error::internal(format!("no column '{name}' in the result")))
    }

    /// The value of column `name` converted to `T`.
    pub fn get<T: FromValue>(&self, name: &str) -> Result<T, Error> {
        T::from_value(self.value(name)?)
            .map_err(|expected| Error::internal(format!("column '{name}': expected {expected}")))
    }

    /// The row as a JSON object keyed by column name.
    pub fn to_json(&self) -> serde_json::Value {
        self.columns
            .iter()
            .zip(self.values)
            .map(|(c, v)| (c.clone(), value_to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// A natural JSON form of a value: numbers stay numbers, json stays json.
pub fn value_to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Null => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Numeric(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| J::String(s.clone()), J::Number),
        Value::Text(s) => J::String(s.clone()),
        Value::Json(s) => serde_json::from_str(s).unwrap_or_else(|_| J::String(s.clone())),
        Value::Bytes(b) => J::Array(b.iter().map(|x| J::from(*x)).collect()),
        Value::TextArray(items) => J::Array(items.iter().cloned().map(J::String).collect()),
    }
}

/// Conversion from a column value; the error names the expected kind.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Result<Self, &'static str>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Int(i) => Ok(*i),
            _ => Err("an integer"),
        }
    }
}

impl FromValue for i32 {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        i64::from_value(value).and_then(|i| i32::try_from(i).map_err(|_| "a 32-bit integer"))
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            Value::Numeric(s) => s.parse().map_err(|_| "a number"),
            _ => Err("a number"),
        }
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Boolean(b) => Ok(*b),
            _ => Err("a boolean"),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Text(s) | Value::Numeric(s) | Value::Json(s) => Ok(s.clone()),
            Value::Int(i) => Ok(i.to_string()),
            _ => Err("text"),
        }
    }
}

impl FromValue for Vec<String> {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::TextArray(items) => Ok(items.clone()),
            _ => Err("a text array"),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Boolean(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
