//! The `redis` interface: one command at a time on a Redis server of
//! `[databases]`, bound by the host to the database a call addresses.
//!
//! A command and its arguments go to the server as one RESP array: an
//! argument is data, whatever it holds (a newline, `\r\nFLUSHALL`), so it
//! can never start a second command. Each database index has one
//! multiplexed connection, opened on first use and again after a failure.

use super::call::Call;
use crate::config::databases::{Connection, ManagedDatabase};
use crate::wit::redis::{Host, Node, RedisError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "redis";

/// Most arguments of one command, and their total size.
const MAX_ARGS: usize = 1024;
const MAX_ARG_BYTES: usize = 1024 * 1024;
/// Highest database index (Redis' default `databases` is 16).
const MAX_DB: u32 = 255;
/// Most values of one reply handed to a plugin.
const MAX_REPLY_NODES: usize = 1_000_000;

/// Commands that would change or hold the shared connection of a database
/// index (its selected database, a transaction, a subscription, its
/// protocol or identity), or block it for every other caller.
const CONNECTION_COMMANDS: [&str; 24] = [
    "SELECT",
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "MONITOR",
    "QUIT",
    "RESET",
    "HELLO",
    "AUTH",
    "SYNC",
    "PSYNC",
    "BLPOP",
    "BRPOP",
    "BLMOVE",
    "BZPOPMIN",
    "WAIT",
];

/// Whether `args` is a command the host keeps off its shared connections.
fn changes_the_connection(args: &[String]) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    let name = name.to_ascii_uppercase();
    if CONNECTION_COMMANDS.contains(&name.as_str())
        || (name.starts_with('B') && name.contains("POP"))
    {
        return true;
    }
    if (name == "XREAD" || name == "XREADGROUP")
        && args.iter().any(|a| a.eq_ignore_ascii_case("BLOCK"))
    {
        return true;
    }
    // CLIENT REPLY OFF would leave the connection waiting for replies.
    name == "CLIENT"
        && args.get(1).is_some_and(|sub| {
            sub.eq_ignore_ascii_case("REPLY") || sub.eq_ignore_ascii_case("TRACKING")
        })
}

/// One Redis server the agent reaches.
pub struct Target {
    host: String,
    port: u16,
    password: Option<String>,
    user: Option<String>,
    default_db: u32,
    /// One connection per database index.
    connections: Mutex<HashMap<u32, redis::aio::MultiplexedConnection>>,
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
        Some(Target {
            host: host.clone(),
            port: *port,
            password: password.clone(),
            user: user.clone(),
            default_db: dbname.as_deref().and_then(|d| d.parse().ok()).unwrap_or(0),
            connections: Mutex::new(HashMap::new()),
        })
    }

    fn client(&self, db: u32) -> Result<redis::Client, RedisError> {
        let addr = if self.host.starts_with('/') {
            redis::ConnectionAddr::Unix(self.host.clone().into())
        } else {
            redis::ConnectionAddr::Tcp(self.host.clone(), self.port)
        };
        let info = redis::ConnectionInfo {
            addr,
            redis: redis::RedisConnectionInfo {
                db: i64::from(db),
                username: self.user.clone(),
                password: self.password.clone(),
                ..Default::default()
            },
        };
        redis::Client::open(info).map_err(|e| error(&e))
    }

    async fn connection(
        &self,
        db: u32,
        deadline: Instant,
    ) -> Result<redis::aio::MultiplexedConnection, RedisError> {
        let mut connections = self.connections.lock().await;
        if let Some(connection) = connections.get(&db) {
            return Ok(connection.clone());
        }
        let client = self.client(db)?;
        let connection =
            tokio::time::timeout_at(deadline.into(), client.get_multiplexed_async_connection())
                .await
                .map_err(|_| {
                    unreachable_error(&format!(
                        "no connection to {}:{} in time",
                        self.host, self.port
                    ))
                })?
                .map_err(|e| error(&e))?;
        connections.insert(db, connection.clone());
        Ok(connection)
    }

    /// Forgets a connection that failed, so the next command reconnects.
    async fn forget(&self, db: u32) {
        self.connections.lock().await.remove(&db);
    }

    /// Runs `args` on database `db` within `deadline`.
    pub async fn command(
        &self,
        db: Option<u32>,
        args: &[String],
        deadline: Instant,
    ) -> Result<redis::Value, RedisError> {
        let db = db.unwrap_or(self.default_db);
        if db > MAX_DB {
            return Err(RedisError {
                code: "ERR".into(),
                message: format!("database index {db} is out of range"),
            });
        }
        let Some((name, rest)) = args.split_first() else {
            return Err(RedisError {
                code: "ERR".into(),
                message: "no command".into(),
            });
        };
        if args.len() > MAX_ARGS || args.iter().map(String::len).sum::<usize>() > MAX_ARG_BYTES {
            return Err(RedisError {
                code: "ERR".into(),
                message: "too many or too large arguments".into(),
            });
        }
        if changes_the_connection(args) {
            return Err(RedisError {
                code: "NOPERM".into(),
                message: format!(
                    "{name} would change or block the agent's shared connection; the host runs one plain command per call"
                ),
            });
        }
        let mut connection = self.connection(db, deadline).await?;
        let mut cmd = redis::cmd(name);
        for arg in rest {
            cmd.arg(arg);
        }
        let answer = tokio::time::timeout_at(
            deadline.into(),
            cmd.query_async::<redis::Value>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
                    self.forget(db).await;
                }
                Err(error(&e))
            }
            Err(_) => {
                self.forget(db).await;
                Err(unreachable_error(
                    "the command did not finish within the call's deadline",
                ))
            }
        }
    }

    /// The server's version (`INFO server`), for the database's status.
    pub async fn version(&self, deadline: Instant) -> Result<String, RedisError> {
        let info = self
            .command(None, &["INFO".into(), "server".into()], deadline)
            .await?;
        let text = match info {
            redis::Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            redis::Value::VerbatimString { text, .. } => text,
            _ => String::new(),
        };
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or_default()
            .trim()
            .to_string())
    }
}

fn unreachable_error(message: &str) -> RedisError {
    RedisError {
        code: "CONNECTION".into(),
        message: message.into(),
    }
}

fn error(e: &redis::RedisError) -> RedisError {
    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
        return unreachable_error(&e.to_string());
    }
    RedisError {
        code: e.code().unwrap_or("ERR").to_string(),
        message: e.detail().map_or_else(|| e.to_string(), str::to_string),
    }
}

/// A reply flattened in prefix order (see `wit/redis.wit`).
fn flatten(value: redis::Value, out: &mut Vec<Node>) {
    use redis::Value as V;
    match value {
        V::Nil => out.push(Node::Nil),
        V::Int(i) => out.push(Node::Int(i)),
        V::BulkString(bytes) => out.push(match String::from_utf8(bytes) {
            Ok(text) => Node::Text(text),
            Err(e) => Node::Bytes(e.into_bytes()),
        }),
        V::SimpleString(s) => out.push(Node::Status(s)),
        V::Okay => out.push(Node::Status("OK".into())),
        V::Double(d) => out.push(Node::Double(d)),
        V::Boolean(b) => out.push(Node::Boolean(b)),
        V::VerbatimString { text, .. } => out.push(Node::Text(text)),
        V::BigNumber(n) => out.push(Node::Text(n.to_string())),
        V::Array(items) | V::Set(items) => {
            out.push(Node::Array(u32::try_from(items.len()).unwrap_or(u32::MAX)));
            for item in items {
                flatten(item, out);
            }
        }
        V::Map(pairs) => {
            out.push(Node::Array(
                u32::try_from(pairs.len() * 2).unwrap_or(u32::MAX),
            ));
            for (key, value) in pairs {
                flatten(key, out);
                flatten(value, out);
            }
        }
        V::Attribute { data, .. } => flatten(*data, out),
        V::Push { data, .. } => {
            out.push(Node::Array(u32::try_from(data.len()).unwrap_or(u32::MAX)));
            for item in data {
                flatten(item, out);
            }
        }
        V::ServerError(e) => out.push(Node::Status(format!(
            "{} {}",
            e.code(),
            e.details().unwrap_or_default()
        ))),
    }
}

/// The targets of every Redis database of `[databases]`, by resource id.
pub type Service = super::targets::Targets<Target>;

pub fn service(databases: &[ManagedDatabase]) -> Service {
    Service::new(databases, NAME, Target::new)
}

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
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::redis::add_to_linker::<T, HasSelf<State>>(linker, get)
}

impl Host for State {
    async fn command(
        &mut self,
        db: Option<u32>,
        args: Vec<String>,
    ) -> Result<Vec<Node>, RedisError> {
        let Some(target) = self.target.clone() else {
            return Err(RedisError {
                code: "ERR".into(),
                message: "this call is bound to no Redis database".into(),
            });
        };
        let value = target.command(db, &args, self.deadline).await?;
        let mut nodes = Vec::new();
        flatten(value, &mut nodes);
        if nodes.len() > MAX_REPLY_NODES {
            return Err(RedisError {
                code: "ERR".into(),
                message: format!(
                    "the reply holds more than {MAX_REPLY_NODES} values: ask for less (SCAN, COUNT)"
                ),
            });
        }
        Ok(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_that_hold_the_shared_connection_are_kept_off() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        for refused in [
            &["select", "2"][..],
            &["MULTI"],
            &["subscribe", "x"],
            &["BLPOP", "k", "0"],
            &["bzpopmax", "k", "0"],
            &["CLIENT", "reply", "OFF"],
            &["XREAD", "block", "0", "STREAMS", "s", "$"],
        ] {
            assert!(changes_the_connection(&args(refused)), "{refused:?}");
        }
        for allowed in [&["GET", "k"][..], &["CLIENT", "LIST"], &["INFO"]] {
            assert!(!changes_the_connection(&args(allowed)), "{allowed:?}");
        }
    }

    #[test]
    fn nested_replies_flatten_in_prefix_order() {
        let reply = redis::Value::Array(vec![
            redis::Value::Int(1),
            redis::Value::Array(vec![
                redis::Value::BulkString(b"a".to_vec()),
                redis::Value::BulkString(vec![0xff]),
            ]),
            redis::Value::Nil,
            redis::Value::Okay,
        ]);
        let mut nodes = Vec::new();
        flatten(reply, &mut nodes);
        // The generated `Node` has no PartialEq; its Debug form is exact.
        let expected = [
            Node::Array(4),
            Node::Int(1),
            Node::Array(2),
            Node::Text("a".into()),
            Node::Bytes(vec![0xff]),
            Node::Nil,
            Node::Status("OK".into()),
        ];
        assert_eq!(format!("{nodes:?}"), format!("{expected:?}"));
    }
}
