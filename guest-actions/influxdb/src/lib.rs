//! The InfluxDB 1.x actions of the database-service API
//! (`POST /api/databases/:id/action`), run by the host on the InfluxDB
//! server of the addressed database over its HTTP API. Retention policies
//! are those of the configured database (`dbname`) unless params name
//! another (`database_name`).
//!
//! Names are quoted as InfluxQL identifiers; control characters, which
//! InfluxQL cannot carry inside a quoted name, are refused. InfluxDB
//! reports a statement's error inside a 200 answer: the SDK turns it into
//! an error, and this module gives it its status (404 for what does not
//! exist, 409 for what does, 403 for a missing privilege).

use dbagent_sdk::action::{Action, ActionError, Params};
use dbagent_sdk::influxdb::{self, Series, Value as Cell, quote_ident};
use dbagent_sdk::{Error, log};
use serde_json::{Value, json};

const NAME_PARAM: &str = r#"{"type": "object", "properties": {"database_name": {"type": "string", "minLength": 1, "maxLength": 255}}, "required": ["database_name"], "additionalProperties": false}"#;
const NO_PARAMS: &str = r#"{"type": ["null", "object"], "properties": {"database_name": {"type": "string"}}, "additionalProperties": false}"#;
const ADD_POLICY_PARAM: &str = r#"{"type": "object", "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}, "duration": {"type": "string", "description": "\"0\" or \"INF\" for infinite, else an InfluxQL duration: \"30d\", \"168h\", \"1h30m\"; at least 1h"}, "default": {"type": "boolean"}, "database_name": {"type": "string"}}, "required": ["name", "duration"], "additionalProperties": false}"#;
const DEL_POLICY_PARAM: &str = r#"{"type": "object", "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}, "database_name": {"type": "string"}}, "required": ["name"], "additionalProperties": false}"#;

/// InfluxDB's own database (its monitoring statistics).
const INTERNAL: &str = "_internal";
/// Longest database or policy name accepted.
const MAX_NAME_BYTES: usize = 255;

fn actions() -> Vec<Action> {
    vec![
        Action::new(
            "list-databases",
            "List the databases; _internal and the configured database are protected",
            NO_PARAMS,
        ),
        Action::new("create-database", "Create a database", NAME_PARAM),
        Action::new(
            "delete-database",
            "Delete a database and all its data; refused on a protected one",
            NAME_PARAM,
        ),
        Action::new(
            "reset-database",
            "Delete every series of a database (DROP SERIES FROM /.*/); its retention policies and continuous queries stay",
            NAME_PARAM,
        ),
        Action::new(
            "list-retention-policies",
            "List the retention policies (duration \"0\" for infinite, else whole days \"30d\", hours \"36h\", minutes or seconds)",
            NO_PARAMS,
        ),
        Action::new(
            "add-retention-policy",
            "Create a retention policy (replication 1), the default one if params.default",
            ADD_POLICY_PARAM,
        ),
        Action::new(
            "del-retention-policy",
            "Delete a retention policy and its data",
            DEL_POLICY_PARAM,
        ),
    ]
}

fn run(name: &str, params: &Params) -> Result<Value, ActionError> {
    match name {
        "list-databases" => list_databases(),
        "create-database" => create_database(params),
        "delete-database" => delete_database(params),
        "reset-database" => reset_database(params),
        "list-retention-policies" => list_policies(params),
        "add-retention-policy" => add_policy(params),
        "del-retention-policy" => del_policy(params),
        other => Err(ActionError::bad_params(format!("unknown action '{other}'"))),
    }
}

dbagent_sdk::export_action_module!(actions, run);

/// A refused statement as an action error, by InfluxDB's message.
fn influx_failure(e: Error) -> ActionError {
    let message = e.message.to_ascii_lowercase();
    if e.status == 400 {
        if message.contains("not found") {
            return ActionError::not_found(e.message);
        }
        if message.contains("already exists") {
            return ActionError::conflict(e.message);
        }
        if message.contains("privilege") || message.contains("authorization") {
            return ActionError::refused(e.message);
        }
    }
    ActionError::from(e)
}

fn query(database: Option<&str>, q: &str) -> Result<Vec<Series>, ActionError> {
    influxdb::query(database, q).map_err(influx_failure)
}

/// A name from params as InfluxDB takes one: 1 to 255 bytes, no control
/// character, no `/` nor `\\`, not `.` nor `..` (InfluxDB's own rule, said
/// here with the parameter's name).
fn checked_name<'a>(value: &'a str, what: &str) -> Result<&'a str, ActionError> {
    if value.is_empty()
        || value.len() > MAX_NAME_BYTES
        || value.chars().any(char::is_control)
        || value.contains(['/', '\\'])
        || value == "."
        || value == ".."
    {
        return Err(ActionError::bad_params(format!(
            "{what} must be 1 to {MAX_NAME_BYTES} bytes without control characters, '/' or '\\', and not '.' or '..'"
        )));
    }
    Ok(value)
}

fn database_name(params: &Params) -> Result<String, ActionError> {
    checked_name(params.string("database_name")?, "database_name").map(str::to_string)
}

fn text(cell: Option<&Cell>) -> Option<String> {
    match cell? {
        Cell::Text(s) => Some(s.clone()),
        _ => None,
    }
}

/// The rows of `series` as (column → cell) lookups.
fn column(series: &Series, name: &str) -> Option<usize> {
    series.columns.iter().position(|c| c == name)
}

fn database_names() -> Result<Vec<String>, ActionError> {
    let series = query(None, "SHOW DATABASES")?;
    Ok(series
        .iter()
        .flat_map(|s| {
            let name = column(s, "name").unwrap_or(0);
            s.values.iter().filter_map(move |row| text(row.get(name)))
        })
        .collect())
}

fn is_protected(name: &str, configured: Option<&str>) -> bool {
    name == INTERNAL || configured == Some(name)
}

fn list_databases() -> Result<Value, ActionError> {
    let configured = influxdb::configured_database();
    let mut names = database_names()?;
    names.sort();
    Ok(Value::Array(
        names
            .into_iter()
            .map(|name| {
                let protected = is_protected(&name, configured.as_deref());
                json!({"name": name, "protected": protected})
            })
            .collect(),
    ))
}

fn create_database(params: &Params) -> Result<Value, ActionError> {
    let name = database_name(params)?;
    // CREATE DATABASE succeeds on an existing database: say it exists.
    if database_names()?.contains(&name) {
        return Err(ActionError::conflict(format!(
            "database \"{name}\" already exists"
        )));
    }
    query(None, &format!("CREATE DATABASE {}", quote_ident(&name)))?;
    log::info(&format!("created database {name:?}"));
    Ok(json!({"name": name, "protected": false}))
}

/// The database named by the params, which must exist and not be protected.
fn unprotected(params: &Params) -> Result<String, ActionError> {
    let name = database_name(params)?;
    if !database_names()?.contains(&name) {
        return Err(ActionError::not_found(format!(
            "database \"{name}\" does not exist"
        )));
    }
    if is_protected(&name, influxdb::configured_database().as_deref()) {
        return Err(ActionError::refused(format!(
            "database \"{name}\" is protected"
        )));
    }
    Ok(name)
}

fn delete_database(params: &Params) -> Result<Value, ActionError> {
    let name = unprotected(params)?;
    query(None, &format!("DROP DATABASE {}", quote_ident(&name)))?;
    log::info(&format!("deleted database {name:?}"));
    Ok(Value::Null)
}

fn reset_database(params: &Params) -> Result<Value, ActionError> {
    let name = unprotected(params)?;
    query(Some(&name), "DROP SERIES FROM /.*/")?;
    log::info(&format!("reset database {name:?}"));
    Ok(Value::Null)
}

/// The database whose retention policies an action reaches: params'
/// `database_name`, else the configured one.
fn policy_database(params: &Params) -> Result<String, ActionError> {
    match params.0.get("database_name") {
        Some(Value::String(name)) => checked_name(name, "database_name").map(str::to_string),
        Some(Value::Null) | None => influxdb::configured_database().ok_or_else(|| {
            ActionError::bad_params(
                "no database: configure dbname for this database or send params.database_name",
            )
        }),
        Some(_) => Err(ActionError::bad_params(
            "params.database_name must be a string",
        )),
    }
}

/// A duration as InfluxDB prints it (`720h0m0s`, `1h30m0s`, `0s`) in
/// seconds.
fn seconds_of(printed: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut number = String::new();
    let mut rest = printed;
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_digit() {
            number.push(c);
            rest = &rest[1..];
            continue;
        }
        let (unit, scale) = [("ms", 0), ("h", 3600), ("m", 60), ("s", 1)]
            .into_iter()
            .find(|(unit, _)| rest.starts_with(unit))?;
        let n: u64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(scale)?)?;
        number.clear();
        rest = &rest[unit.len()..];
    }
    number.is_empty().then_some(total)
}

/// The reference's form of a duration: "0" for infinite, whole days as
/// "30d", else whole hours "36h", minutes "90m", or seconds.
fn reference_duration(printed: &str) -> String {
    match seconds_of(printed) {
        Some(0) => "0".into(),
        Some(s) if s % 86_400 == 0 => format!("{}d", s / 86_400),
        Some(s) if s % 3600 == 0 => format!("{}h", s / 3600),
        Some(s) if s % 60 == 0 => format!("{}m", s / 60),
        Some(s) => format!("{s}s"),
        None => printed.to_string(),
    }
}

fn policies(database: &str) -> Result<Vec<(String, String, bool)>, ActionError> {
    let series = query(
        None,
        &format!("SHOW RETENTION POLICIES ON {}", quote_ident(database)),
    )?;
    let mut found = Vec::new();
    for s in &series {
        let (Some(name), Some(duration), Some(default)) = (
            column(s, "name"),
            column(s, "duration"),
            column(s, "default"),
        ) else {
            continue;
        };
        for row in &s.values {
            found.push((
                text(row.get(name)).unwrap_or_default(),
                reference_duration(&text(row.get(duration)).unwrap_or_default()),
                matches!(row.get(default), Some(Cell::Boolean(true))),
            ));
        }
    }
    Ok(found)
}

fn list_policies(params: &Params) -> Result<Value, ActionError> {
    let database = policy_database(params)?;
    Ok(Value::Array(
        policies(&database)?
            .into_iter()
            .map(|(name, duration, default)| {
                json!({"name": name, "duration": duration, "default": default})
            })
            .collect(),
    ))
}

/// A duration param as InfluxQL takes it: `INF` for "0"/"INF", else one
/// or more `<digits><unit>` (ns, u, µ, ms, s, m, h, d, w). Checked, as it
/// is written into the statement (InfluxQL has no parameter there).
fn influxql_duration(duration: &str) -> Result<String, ActionError> {
    let trimmed = duration.trim();
    if trimmed == "0" || trimmed.eq_ignore_ascii_case("inf") {
        return Ok("INF".into());
    }
    let bad = || {
        ActionError::bad_params(format!(
            "duration {duration:?} is not a duration: \"0\" (infinite), or e.g. \"30d\", \"168h\", \"1h30m\""
        ))
    };
    let mut rest = trimmed;
    if rest.is_empty() || rest.len() > 32 {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = &rest[digits..];
        let unit = ["ns", "ms", "µ", "u", "s", "m", "h", "d", "w"]
            .into_iter()
            .find(|unit| rest.starts_with(unit))
            .ok_or_else(bad)?;
        rest = &rest[unit.len()..];
    }
    Ok(trimmed.to_string())
}

fn add_policy(params: &Params) -> Result<Value, ActionError> {
    let database = policy_database(params)?;
    let name = checked_name(params.string("name")?, "name")?.to_string();
    let duration = influxql_duration(params.string("duration")?)?;
    let default = match params.0.get("default") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ActionError::bad_params("params.default must be a boolean")),
    };
    if !database_names()?.contains(&database) {
        return Err(ActionError::not_found(format!(
            "database \"{database}\" does not exist"
        )));
    }
    if policies(&database)?.iter().any(|(n, _, _)| *n == name) {
        return Err(ActionError::conflict(format!(
            "retention policy \"{name}\" already exists on \"{database}\""
        )));
    }
    query(
        None,
        &format!(
            "CREATE RETENTION POLICY {} ON {} DURATION {duration} REPLICATION 1{}",
            quote_ident(&name),
            quote_ident(&database),
            if default { " DEFAULT" } else { "" }
        ),
    )?;
    log::info(&format!(
        "created retention policy {name:?} on {database:?} ({duration})"
    ));
    Ok(Value::Null)
}

fn del_policy(params: &Params) -> Result<Value, ActionError> {
    let database = policy_database(params)?;
    let name = checked_name(params.string("name")?, "name")?.to_string();
    if !database_names()?.contains(&database) {
        return Err(ActionError::not_found(format!(
            "database \"{database}\" does not exist"
        )));
    }
    // DROP RETENTION POLICY succeeds on a missing policy: say it is missing.
    if !policies(&database)?.iter().any(|(n, _, _)| *n == name) {
        return Err(ActionError::not_found(format!(
            "retention policy \"{name}\" does not exist on \"{database}\""
        )));
    }
    query(
        None,
        &format!(
            "DROP RETENTION POLICY {} ON {}",
            quote_ident(&name),
            quote_ident(&database)
        ),
    )?;
    log::info(&format!(
        "deleted retention policy {name:?} on {database:?}"
    ));
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_references_form() {
        assert_eq!(reference_duration("0s"), "0");
        assert_eq!(reference_duration("720h0m0s"), "30d");
        assert_eq!(reference_duration("168h0m0s"), "7d");
        assert_eq!(reference_duration("36h0m0s"), "36h");
        assert_eq!(reference_duration("1h30m0s"), "90m");
        assert_eq!(reference_duration("1h0m30s"), "3630s");
        assert_eq!(reference_duration("odd"), "odd");
    }

    #[test]
    fn duration_params_are_influxql_or_refused() {
        assert_eq!(influxql_duration("0").ok().as_deref(), Some("INF"));
        assert_eq!(influxql_duration("30d").ok().as_deref(), Some("30d"));
        assert_eq!(influxql_duration("1h30m").ok().as_deref(), Some("1h30m"));
        for bad in ["", "30", "d", "30 d", "30d; DROP DATABASE x", "1y", "-1h"] {
            assert!(influxql_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_without_control_characters() {
        assert!(checked_name("x\"; DROP DATABASE \"y", "name").is_ok());
        assert!(checked_name("a\nb", "name").is_err());
        assert!(checked_name("a/b", "name").is_err());
        assert!(checked_name("a\\b", "name").is_err());
        assert!(checked_name("..", "name").is_err());
        assert!(checked_name("", "name").is_err());
    }
}
