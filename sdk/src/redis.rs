//! Commands on the Redis server an action module's call is bound to (the
//! `action-module` feature). Each call is one command; its arguments are
//! data, never parsed as further commands.
//!
//! ```ignore
//! let reply = redis::command(None, &["CONFIG", "GET", "maxmemory"])?;
//! ```

use crate::Error;
use crate::bindings::dbagent::api::redis as raw;
pub use crate::bindings::dbagent::api::redis::{Node, RedisError};
use serde_json::{Value, json};

/// A reply as a tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Nil,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Status(String),
    Double(f64),
    Boolean(bool),
    Array(Vec<Reply>),
}

impl Reply {
    /// JSON: nil → null, strings and statuses → strings (bytes lossily),
    /// numbers → numbers, arrays → arrays.
    pub fn to_json(&self) -> Value {
        match self {
            Reply::Nil => Value::Null,
            Reply::Int(i) => json!(i),
            Reply::Text(s) | Reply::Status(s) => json!(s),
            Reply::Bytes(b) => json!(String::from_utf8_lossy(b)),
            Reply::Double(d) => json!(d),
            Reply::Boolean(b) => json!(b),
            Reply::Array(items) => Value::Array(items.iter().map(Reply::to_json).collect()),
        }
    }

    /// The reply's text, when it is a string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Reply::Text(s) | Reply::Status(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            Reply::Text(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// The tree of a reply flattened in prefix order.
pub fn tree(nodes: Vec<Node>) -> Reply {
    fn take(nodes: &mut std::vec::IntoIter<Node>) -> Reply {
        match nodes.next() {
            None | Some(Node::Nil) => Reply::Nil,
            Some(Node::Int(i)) => Reply::Int(i),
            Some(Node::Text(s)) => Reply::Text(s),
            Some(Node::Bytes(b)) => Reply::Bytes(b),
            Some(Node::Status(s)) => Reply::Status(s),
            Some(Node::Double(d)) => Reply::Double(d),
            Some(Node::Boolean(b)) => Reply::Boolean(b),
            Some(Node::Array(n)) => Reply::Array((0..n).map(|_| take(nodes)).collect()),
        }
    }
    take(&mut nodes.into_iter())
}

/// A Redis error as the SDK's: unreachable 503, a missing permission 403,
/// the rest (a wrong argument, an unknown command) 400.
impl From<RedisError> for Error {
    fn from(e: RedisError) -> Error {
        let status = match e.code.as_str() {
            "CONNECTION" | "LOADING" | "BUSY" | "MASTERDOWN" => 503,
            "NOPERM" | "NOAUTH" | "WRONGPASS" => 403,
            _ => 400,
        };
        Error::new(status, format!("{} {}", e.code, e.message))
    }
}

/// Runs one command on database index `db` (the configured one when none).
pub fn command(db: Option<u32>, args: &[&str]) -> Result<Reply, Error> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
    Ok(tree(raw::command(db, &args)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_nodes_make_a_tree() {
        let reply = tree(vec![
            Node::Array(3),
            Node::Int(1),
            Node::Array(2),
            Node::Text("a".into()),
            Node::Nil,
            Node::Status("OK".into()),
        ]);
        assert_eq!(
            reply,
            Reply::Array(vec![
                Reply::Int(1),
                Reply::Array(vec![Reply::Text("a".into()), Reply::Nil]),
                Reply::Status("OK".into()),
            ])
        );
        assert_eq!(reply.to_json(), json!([1, ["a", null], "OK"]));
    }
}
