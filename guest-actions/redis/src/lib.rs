//! The Redis actions of the database-service API
//! (`POST /api/databases/:id/action`), run by the host on the Redis server
//! of the addressed database. The reference documents none for Redis: these
//! are what an operator reaches for — INFO, the keyspace, FLUSHDB, the
//! settings one tunes (an allowlist: nothing else can be read or changed),
//! the slow log and the clients.
//!
//! Each call sends one command whose arguments are data: a param holding
//! `\r\nFLUSHALL` is a strange value, never a second command.

use dbagent_sdk::action::{Action, ActionError, Params};
use dbagent_sdk::log;
use dbagent_sdk::redis::{self, Reply};
use serde_json::{Map, Value, json};

const NO_PARAMS: &str = r#"{"type": ["null", "object"], "additionalProperties": false}"#;
const SECTION_PARAM: &str = r#"{"type": ["null", "object"], "properties": {"section": {"type": "string", "pattern": "^[a-z_]{1,32}$"}}, "additionalProperties": false}"#;
const INDEX_PARAM: &str = r#"{"type": "object", "properties": {"index": {"type": "integer", "minimum": 0}, "database_name": {"type": "string", "pattern": "^[0-9]+$"}}, "additionalProperties": false}"#;
const CONFIG_GET_PARAM: &str = r#"{"type": ["null", "object"], "properties": {"name": {"type": "string"}}, "additionalProperties": false}"#;
const CONFIG_SET_PARAM: &str = r#"{"type": "object", "properties": {"name": {"type": "string"}, "value": {"type": ["string", "integer"]}}, "required": ["name", "value"], "additionalProperties": false}"#;
const COUNT_PARAM: &str = r#"{"type": ["null", "object"], "properties": {"count": {"type": "integer", "minimum": 1, "maximum": 1000}}, "additionalProperties": false}"#;
const ID_PARAM: &str = r#"{"type": "object", "properties": {"id": {"type": "integer", "minimum": 1}}, "required": ["id"], "additionalProperties": false}"#;

/// The settings `config-get` and `config-set` reach: what an operator
/// tunes on a running server. Anything else (`dir`, `dbfilename`,
/// `requirepass`, `rename-command` …) could turn the server against its
/// host and is refused.
const TUNABLE: [&str; 8] = [
    "maxmemory",
    "maxmemory-policy",
    "timeout",
    "notify-keyspace-events",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "maxclients",
    "lazyfree-lazy-user-flush",
];

/// Entries of the slow log returned when no count is given.
const DEFAULT_SLOWLOG_COUNT: i64 = 128;
const MAX_SLOWLOG_COUNT: i64 = 1000;

fn actions() -> Vec<Action> {
    vec![
        Action::new(
            "redis-info",
            "The server's INFO, by section (params.section for one: server, memory, clients, stats, replication, persistence, keyspace …)",
            SECTION_PARAM,
        ),
        Action::new(
            "list-databases",
            "The database indexes (0 to the `databases` setting - 1) with their keys, keys with an expiry and average TTL",
            NO_PARAMS,
        ),
        Action::new(
            "reset-database",
            "Delete every key of one database index (FLUSHDB): params.index, or database_name holding it",
            INDEX_PARAM,
        ),
        Action::new(
            "config-get",
            "Settings an operator tunes (maxmemory, maxmemory-policy, timeout, notify-keyspace-events, slowlog-log-slower-than, slowlog-max-len, maxclients, lazyfree-lazy-user-flush): all of them, or params.name",
            CONFIG_GET_PARAM,
        ),
        Action::new(
            "config-set",
            "Change one of the tunable settings (CONFIG SET; not written to redis.conf): params.name and params.value",
            CONFIG_SET_PARAM,
        ),
        Action::new(
            "slowlog-get",
            "The slow log, newest first (params.count entries, 128 by default, at most 1000)",
            COUNT_PARAM,
        ),
        Action::new("slowlog-reset", "Empty the slow log", NO_PARAMS),
        Action::new(
            "client-list",
            "The connected clients (CLIENT LIST), one object each",
            NO_PARAMS,
        ),
        Action::new(
            "client-kill",
            "Close a client's connection by its id (CLIENT KILL ID)",
            ID_PARAM,
        ),
    ]
}

fn run(name: &str, params: &Params) -> Result<Value, ActionError> {
    match name {
        "redis-info" => info(params),
        "list-databases" => list_databases(),
        "reset-database" => reset_database(params),
        "config-get" => config_get(params),
        "config-set" => config_set(params),
        "slowlog-get" => slowlog_get(params),
        "slowlog-reset" => command(&["SLOWLOG", "RESET"]).map(|_| Value::Null),
        "client-list" => client_list(),
        "client-kill" => client_kill(params),
        other => Err(ActionError::bad_params(format!("unknown action '{other}'"))),
    }
}

dbagent_sdk::export_action_module!(actions, run);

fn command(args: &[&str]) -> Result<Reply, ActionError> {
    Ok(redis::command(None, args)?)
}

fn text_of(reply: &Reply) -> String {
    match reply {
        Reply::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.as_text().unwrap_or_default().to_string(),
    }
}

/// An object param that may be absent: `null` and `{}` alike.
fn optional<'a>(params: &'a Params, name: &str) -> Option<&'a Value> {
    params.0.get(name).filter(|v| !v.is_null())
}

/// INFO's text as `{section: {field: value}}`, section names lower-cased.
/// Values stay strings, as Redis gives them: some look numeric and are not
/// (`redis_git_sha1`, `run_id`).
fn parse_info(text: &str) -> Map<String, Value> {
    let mut sections = Map::new();
    let mut current = String::from("default");
    for line in text.lines().map(str::trim) {
        if let Some(title) = line.strip_prefix('#') {
            current = title.trim().to_ascii_lowercase();
            sections.entry(current.clone()).or_insert_with(|| json!({}));
        } else if let Some((field, value)) = line.split_once(':')
            && let Value::Object(fields) =
                sections.entry(current.clone()).or_insert_with(|| json!({}))
        {
            fields.insert(field.to_string(), json!(value));
        }
    }
    sections
}

fn info(params: &Params) -> Result<Value, ActionError> {
    let section = match optional(params, "section") {
        None => None,
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 32
                && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
        {
            Some(s.as_str())
        }
        Some(_) => {
            return Err(ActionError::bad_params(
                "params.section must be a section name such as \"memory\"",
            ));
        }
    };
    let reply = match section {
        Some(section) => command(&["INFO", section])?,
        None => command(&["INFO"])?,
    };
    let sections = parse_info(&text_of(&reply));
    if let Some(section) = section
        && sections.is_empty()
    {
        return Err(ActionError::not_found(format!(
            "the server has no INFO section '{section}'"
        )));
    }
    Ok(Value::Object(sections))
}

/// `keys=3,expires=1,avg_ttl=0` as numbers by name.
fn keyspace_counts(text: &str) -> Map<String, Value> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.parse::<i64>().map_or(json!(v), |n| json!(n)),
            )
        })
        .collect()
}

/// How many database indexes the server has (`CONFIG GET databases`).
fn database_count() -> Result<u32, ActionError> {
    let reply = command(&["CONFIG", "GET", "databases"])?;
    let count = config_pairs(&reply)
        .get("databases")
        .and_then(Value::as_str)
        .and_then(|n| n.parse::<u32>().ok());
    count.ok_or_else(|| ActionError::failed("the server did not say how many databases it has"))
}

fn list_databases() -> Result<Value, ActionError> {
    let count = database_count()?;
    let keyspace = parse_info(&text_of(&command(&["INFO", "keyspace"])?));
    let used = keyspace.get("keyspace").and_then(Value::as_object);
    Ok(Value::Array(
        (0..count)
            .map(|index| {
                let counts = used
                    .and_then(|dbs| dbs.get(&format!("db{index}")))
                    .and_then(Value::as_str)
                    .map(keyspace_counts)
                    .unwrap_or_default();
                let number = |k: &str| counts.get(k).cloned().unwrap_or(json!(0));
                json!({
                    "index": index,
                    "keys": number("keys"),
                    "expires": number("expires"),
                    "avg_ttl": number("avg_ttl"),
                })
            })
            .collect(),
    ))
}

/// The database index of the params: `index`, or `database_name` holding
/// it (what list-databases-minded clients send), checked against the
/// server's count.
fn database_index(params: &Params) -> Result<u32, ActionError> {
    let index = match (optional(params, "index"), optional(params, "database_name")) {
        (Some(index), None) => index.as_u64(),
        (None, Some(Value::String(name))) => name.parse::<u64>().ok(),
        (None, None) => return Err(ActionError::bad_params("params.index is missing")),
        _ => None,
    };
    let Some(index) = index.and_then(|i| u32::try_from(i).ok()) else {
        return Err(ActionError::bad_params(
            "params.index must be a database index (an integer from 0)",
        ));
    };
    let count = database_count()?;
    if index >= count {
        return Err(ActionError::not_found(format!(
            "database index {index} does not exist: the server has {count} (0 to {})",
            count.saturating_sub(1)
        )));
    }
    Ok(index)
}

fn reset_database(params: &Params) -> Result<Value, ActionError> {
    let index = database_index(params)?;
    redis::command(Some(index), &["FLUSHDB"])?;
    log::info(&format!("flushed database index {index}"));
    Ok(Value::Null)
}

/// CONFIG GET's answer (a flat list of name, value or a map) as an object.
fn config_pairs(reply: &Reply) -> Map<String, Value> {
    let items = reply.as_array().unwrap_or_default();
    items
        .chunks(2)
        .filter_map(|pair| match pair {
            [name, value] => Some((text_of(name), json!(text_of(value)))),
            _ => None,
        })
        .collect()
}

/// `name` when it is on the allowlist, or a 403 naming it.
fn tunable(name: &str) -> Result<&'static str, ActionError> {
    let lower = name.to_ascii_lowercase();
    TUNABLE
        .iter()
        .find(|t| **t == lower)
        .copied()
        .ok_or_else(|| {
            ActionError::refused(format!(
                "setting '{name}' is not one the agent reads or changes; allowed: {}",
                TUNABLE.join(", ")
            ))
        })
}

fn config_get(params: &Params) -> Result<Value, ActionError> {
    let names: Vec<&str> = match optional(params, "name") {
        None => TUNABLE.to_vec(),
        Some(Value::String(name)) => vec![tunable(name)?],
        Some(_) => return Err(ActionError::bad_params("params.name must be a string")),
    };
    let mut settings = Map::new();
    // One name per CONFIG GET: servers before 7 take only one pattern.
    for name in names {
        let reply = command(&["CONFIG", "GET", name])?;
        if let Some(value) = config_pairs(&reply).remove(name) {
            settings.insert(name.to_string(), value);
        }
    }
    Ok(Value::Object(settings))
}

fn config_set(params: &Params) -> Result<Value, ActionError> {
    let name = tunable(params.string("name")?)?;
    let value = match optional(params, "value") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => {
            return Err(ActionError::bad_params(
                "params.value must be a string or an integer",
            ));
        }
    };
    command(&["CONFIG", "SET", name, &value])?;
    log::info(&format!("CONFIG SET {name} {value:?}"));
    Ok(Value::Null)
}

fn slowlog_get(params: &Params) -> Result<Value, ActionError> {
    let count = match optional(params, "count") {
        None => DEFAULT_SLOWLOG_COUNT,
        Some(value) => match value.as_i64() {
            Some(n) if (1..=MAX_SLOWLOG_COUNT).contains(&n) => n,
            _ => {
                return Err(ActionError::bad_params(format!(
                    "params.count must be an integer from 1 to {MAX_SLOWLOG_COUNT}"
                )));
            }
        },
    };
    let reply = command(&["SLOWLOG", "GET", &count.to_string()])?;
    let entries = reply.as_array().unwrap_or_default();
    Ok(Value::Array(entries.iter().map(slowlog_entry).collect()))
}

/// One slow log entry: id, unix time, duration (µs), the command's
/// arguments, and (Redis 4+) the client's address and name.
fn slowlog_entry(entry: &Reply) -> Value {
    let fields = entry.as_array().unwrap_or_default();
    let int = |i: usize| fields.get(i).and_then(Reply::as_int);
    let text = |i: usize| fields.get(i).map(text_of);
    json!({
        "id": int(0),
        "timestamp": int(1),
        "duration_us": int(2),
        "command": fields
            .get(3)
            .and_then(Reply::as_array)
            .map(|args| args.iter().map(text_of).collect::<Vec<_>>())
            .unwrap_or_default(),
        "client_address": text(4),
        "client_name": text(5),
    })
}

/// CLIENT LIST's fields that are counts or ids, given as numbers.
const NUMERIC_CLIENT_FIELDS: [&str; 22] = [
    "id",
    "fd",
    "age",
    "idle",
    "db",
    "sub",
    "psub",
    "ssub",
    "multi",
    "watch",
    "qbuf",
    "qbuf-free",
    "argv-mem",
    "multi-mem",
    "obl",
    "oll",
    "omem",
    "tot-mem",
    "redir",
    "resp",
    "rbs",
    "rbp",
];

/// One CLIENT LIST line (`id=3 addr=… name= … cmd=client|list`) as an
/// object. `name` holds no space (Redis refuses one), so spaces separate.
fn client_fields(line: &str) -> Value {
    Value::Object(
        line.split(' ')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| {
                let value = if NUMERIC_CLIENT_FIELDS.contains(&k) {
                    v.parse::<i64>().map_or(json!(v), |n| json!(n))
                } else {
                    json!(v)
                };
                (k.to_string(), value)
            })
            .collect(),
    )
}

fn client_list() -> Result<Value, ActionError> {
    let text = text_of(&command(&["CLIENT", "LIST"])?);
    Ok(Value::Array(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(client_fields)
            .collect(),
    ))
}

fn client_kill(params: &Params) -> Result<Value, ActionError> {
    let id = params.int("id")?;
    if id < 1 {
        return Err(ActionError::bad_params("params.id must be a client id"));
    }
    let killed = command(&["CLIENT", "KILL", "ID", &id.to_string()])?;
    if killed.as_int() == Some(0) {
        return Err(ActionError::not_found(format!("no client with id {id}")));
    }
    log::info(&format!("killed client {id}"));
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_text_becomes_sections() {
        let text = "# Server\r\nredis_version:7.0.15\r\nrun_id:abc\r\n\r\n# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n";
        let sections = parse_info(text);
        assert_eq!(sections["server"]["redis_version"], "7.0.15");
        assert_eq!(sections["keyspace"]["db0"], "keys=2,expires=1,avg_ttl=0");
        assert_eq!(
            Value::Object(keyspace_counts("keys=2,expires=1,avg_ttl=0")),
            json!({"keys": 2, "expires": 1, "avg_ttl": 0})
        );
        assert!(parse_info("").is_empty());
    }

    #[test]
    fn client_lines_become_objects() {
        let client = client_fields(
            "id=7 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 name= age=3 db=0 cmd=client|list",
        );
        assert_eq!(client["id"], 7);
        assert_eq!(client["addr"], "127.0.0.1:5000");
        assert_eq!(client["name"], "");
        assert_eq!(client["cmd"], "client|list");
    }

    #[test]
    fn only_tunable_settings_pass() {
        assert_eq!(tunable("MaxMemory").ok(), Some("maxmemory"));
        assert!(tunable("dir").is_err());
        assert!(tunable("maxmemory*").is_err());
    }
}
