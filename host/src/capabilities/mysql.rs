//! The `mysql` interface: statements on a MySQL or MariaDB server of
//! `[databases]`, bound by the host to the database a call addresses.
//!
//! Each target has a small pool (`mysql_async`) with the operator's
//! credentials; a call waits for a connection within its deadline. Values
//! are bound parameters (the binary protocol), never spliced.

use super::call::Call;
use crate::config::databases::{Connection, ManagedDatabase};
use crate::wit::mysql::{Host, MyError, RowSet, Value};
use mysql_async::prelude::Queryable;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "mysql";

/// Connections one target keeps at most.
const POOL_MAX: usize = 4;
/// Most rows one query returns to a plugin.
const MAX_ROWS: usize = 100_000;
/// Longest SQL text a plugin may send.
const MAX_SQL_BYTES: usize = 1024 * 1024;

/// One MySQL or MariaDB server the agent reaches.
pub struct Target {
    pool: mysql_async::Pool,
    address: String,
}

impl Target {
    fn new(db: &ManagedDatabase) -> Option<Target> {
        let Connection::Server {
            host,
            port,
            user,
            password,
            dbname,
        } = &db.connection
        else {
            return None;
        };
        let mut builder = mysql_async::OptsBuilder::default()
            .user(user.clone().or_else(|| Some("root".into())))
            .pass(password.clone())
            .db_name(dbname.clone())
            .pool_opts(
                mysql_async::PoolOpts::default()
                    .with_constraints(mysql_async::PoolConstraints::new(0, POOL_MAX)?)
                    .with_inactive_connection_ttl(Duration::from_secs(300))
                    // What one call sets on its session (`SET SESSION
                    // sql_mode`, variables, temporary tables) is gone
                    // before another call gets the connection.
                    .with_reset_connection(true),
            )
            .conn_ttl(Some(Duration::from_secs(300)));
        let address = if host.starts_with('/') {
            builder = builder.socket(Some(host.clone()));
            host.clone()
        } else {
            builder = builder.ip_or_hostname(host.clone()).tcp_port(*port);
            format!("{host}:{port}")
        };
        Some(Target {
            pool: mysql_async::Pool::new(builder),
            address,
        })
    }

    async fn connection(&self, deadline: Instant) -> Result<mysql_async::Conn, MyError> {
        match tokio::time::timeout_at(deadline.into(), self.pool.get_conn()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(my_error(&e, &self.address)),
            Err(_) => Err(MyError {
                code: 2002,
                sqlstate: "HY000".into(),
                message: format!("no connection to {} in time", self.address),
            }),
        }
    }

    /// The server's version, for the database's status.
    pub async fn version(&self, deadline: Instant) -> Result<String, MyError> {
        let mut conn = self.connection(deadline).await?;
        let version: Option<String> =
            tokio::time::timeout_at(deadline.into(), conn.query_first("SELECT VERSION()"))
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| my_error(&e, &self.address))?;
        Ok(version.unwrap_or_default())
    }
}

/// The targets of every MySQL database of `[databases]`, by resource id.
pub type Service = super::targets::Targets<Target>;

pub fn service(databases: &[ManagedDatabase]) -> Service {
    Service::new(databases, NAME, Target::new)
}

/// What one call holds: the server it is bound to, if any.
pub struct State {
    target: Option<Arc<Target>>,
    deadline: Instant,
}

impl State {
    pub fn new(target: Option<&Arc<Target>>, call: &Call) -> State {
        State {
            target: target.cloned(),
            deadline: call.deadline,
        }
    }

    fn target(&self) -> Result<&Arc<Target>, MyError> {
        self.target.as_ref().ok_or_else(|| MyError {
            code: 0,
            sqlstate: "HY000".into(),
            message: "this call is bound to no MySQL database".into(),
        })
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::mysql::add_to_linker::<T, HasSelf<State>>(linker, get)
}

fn timed_out() -> MyError {
    MyError {
        code: 0,
        sqlstate: "HY000".into(),
        message: "the statement did not finish within the call's deadline".into(),
    }
}

fn my_error(e: &mysql_async::Error, address: &str) -> MyError {
    match e {
        mysql_async::Error::Server(server) => MyError {
            code: server.code,
            sqlstate: server.state.clone(),
            message: server.message.clone(),
        },
        mysql_async::Error::Io(io) => MyError {
            code: 2002,
            sqlstate: "HY000".into(),
            message: format!("cannot reach MySQL at {address}: {io}"),
        },
        other => MyError {
            code: 0,
            sqlstate: "HY000".into(),
            message: other.to_string(),
        },
    }
}

fn check(sql: &str) -> Result<(), MyError> {
    if sql.len() > MAX_SQL_BYTES || sql.contains('\0') {
        return Err(MyError {
            code: 0,
            sqlstate: "42000".into(),
            message: "statement text over 1 MiB or holding a NUL byte".into(),
        });
    }
    Ok(())
}

fn param(value: &Value) -> mysql_async::Value {
    match value {
        Value::Null => mysql_async::Value::NULL,
        Value::Int(i) => mysql_async::Value::Int(*i),
        Value::Uint(u) => mysql_async::Value::UInt(*u),
        Value::Float(f) => mysql_async::Value::Double(*f),
        Value::Text(s) => mysql_async::Value::Bytes(s.clone().into_bytes()),
        Value::Bytes(b) => mysql_async::Value::Bytes(b.clone()),
    }
}

fn params(values: &[Value]) -> mysql_async::Params {
    if values.is_empty() {
        mysql_async::Params::Empty
    } else {
        mysql_async::Params::Positional(values.iter().map(param).collect())
    }
}

fn cell(value: mysql_async::Value) -> Value {
    match value {
        mysql_async::Value::NULL => Value::Null,
        mysql_async::Value::Int(i) => Value::Int(i),
        mysql_async::Value::UInt(u) => Value::Uint(u),
        mysql_async::Value::Float(f) => Value::Float(f64::from(f)),
        mysql_async::Value::Double(d) => Value::Float(d),
        mysql_async::Value::Bytes(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Value::Text(text),
            Err(e) => Value::Bytes(e.into_bytes()),
        },
        date @ mysql_async::Value::Date(..) => {
            Value::Text(date.as_sql(true).trim_matches('\'').to_string())
        }
        time @ mysql_async::Value::Time(..) => {
            Value::Text(time.as_sql(true).trim_matches('\'').to_string())
        }
    }
}

impl Host for State {
    async fn query(&mut self, sql: String, params_: Vec<Value>) -> Result<RowSet, MyError> {
        check(&sql)?;
        let target = Arc::clone(self.target()?);
        let mut conn = target.connection(self.deadline).await?;
        let run = conn.exec_iter(sql.as_str(), params(&params_));
        let mut result = tokio::time::timeout_at(self.deadline.into(), run)
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| my_error(&e, &target.address))?;
        let columns: Vec<String> = result
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect();
        let rows: Vec<mysql_async::Row> =
            tokio::time::timeout_at(self.deadline.into(), result.collect())
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| my_error(&e, &target.address))?;
        if rows.len() > MAX_ROWS {
            return Err(MyError {
                code: 0,
                sqlstate: "HY000".into(),
                message: format!("more than {MAX_ROWS} rows: add a LIMIT"),
            });
        }
        Ok(RowSet {
            columns,
            rows: rows
                .into_iter()
                .map(|row| {
                    row.unwrap_raw()
                        .into_iter()
                        .map(|value| value.map_or(Value::Null, cell))
                        .collect()
                })
                .collect(),
        })
    }

    async fn execute(&mut self, sql: String, params_: Vec<Value>) -> Result<u64, MyError> {
        check(&sql)?;
        let target = Arc::clone(self.target()?);
        let mut conn = target.connection(self.deadline).await?;
        // DDL (CREATE DATABASE …) cannot be prepared on every server:
        // without parameters it goes as a plain query.
        let run = async {
            if params_.is_empty() {
                conn.query_drop(sql.as_str()).await?;
            } else {
                conn.exec_drop(sql.as_str(), params(&params_)).await?;
            }
            Ok::<u64, mysql_async::Error>(conn.affected_rows())
        };
        tokio::time::timeout_at(self.deadline.into(), run)
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| my_error(&e, &target.address))
    }
}
