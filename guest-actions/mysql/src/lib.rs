//! The MySQL and MariaDB actions of the database-service API
//! (`POST /api/databases/:id/action`), run by the host on the server of the
//! addressed database: its `mysql` capability is bound to that server, on
//! connections that open the configured `dbname`.
//!
//! Names from params are checked and quoted as identifiers (backquotes,
//! doubled within) where SQL needs one: `CREATE DATABASE` takes no
//! parameters. Every other value is a bound parameter.

use dbagent_sdk::action::{Action, ActionError, Params};
use dbagent_sdk::log;
use dbagent_sdk::mysql::{self, MyError, Rows, quote_ident};
use serde_json::{Value, json};

const NAME_PARAM: &str = r#"{"type": "object", "properties": {"database_name": {"type": "string", "minLength": 1, "maxLength": 64}}, "required": ["database_name"], "additionalProperties": false}"#;
const NO_PARAMS: &str = r#"{"type": ["null", "object"], "additionalProperties": false}"#;
const SQLMODE_PARAM: &str = r#"{"type": "string", "description": "modes separated by commas, e.g. \"STRICT_TRANS_TABLES,NO_ZERO_DATE\"; \"\" clears them"}"#;

/// The server's own schemas: never dropped nor reset.
const SYSTEM_SCHEMAS: [&str; 4] = ["information_schema", "mysql", "performance_schema", "sys"];
/// Longest `sql_mode` list accepted (the server's own list is ~300 bytes).
const MAX_SQLMODE_BYTES: usize = 4096;

fn actions() -> Vec<Action> {
    vec![
        Action::new(
            "list-databases",
            "List the logical databases (schemas); the server's own and the configured database are protected",
            NO_PARAMS,
        ),
        Action::new("create-database", "Create a logical database", NAME_PARAM),
        Action::new(
            "delete-database",
            "Delete a logical database; refused on a protected one",
            NAME_PARAM,
        ),
        Action::new(
            "reset-database",
            "Delete everything inside a logical database: it is dropped and created again with the same character set and collation (privileges granted on it are kept)",
            NAME_PARAM,
        ),
        Action::new(
            "get-sqlmode",
            "The server's global SQL mode (@@GLOBAL.sql_mode)",
            NO_PARAMS,
        ),
        Action::new(
            "set-sqlmode",
            "Set the server's global SQL mode (SET GLOBAL sql_mode): new sessions use it, open ones keep theirs, and it lasts until the server restarts (persist it in the server's configuration file)",
            SQLMODE_PARAM,
        ),
    ]
}

fn run(name: &str, params: &Params) -> Result<Value, ActionError> {
    match name {
        "list-databases" => list_databases(),
        "create-database" => create_database(params),
        "delete-database" => delete_database(params),
        "reset-database" => reset_database(params),
        "get-sqlmode" => get_sqlmode(),
        "set-sqlmode" => set_sqlmode(params),
        other => Err(ActionError::bad_params(format!("unknown action '{other}'"))),
    }
}

dbagent_sdk::export_action_module!(actions, run);

/// A failed statement as an action error: the server's codes for what is
/// the request's doing keep their meaning.
fn my_failure(e: MyError) -> ActionError {
    let message = format!("{} (MySQL error {})", e.message, e.code);
    match e.code {
        // Can't create database; database exists.
        1007 => ActionError::conflict(message),
        // Can't drop database; database doesn't exist / unknown database.
        1008 | 1049 => ActionError::not_found(message),
        // Incorrect database name.
        1102 => ActionError::bad_params(message),
        _ => ActionError::from(e),
    }
}

fn query(sql: &str, params: &[mysql::Value]) -> Result<Rows, ActionError> {
    mysql::query(sql, params).map_err(my_failure)
}

fn execute(sql: &str, params: &[mysql::Value]) -> Result<u64, ActionError> {
    mysql::execute(sql, params).map_err(my_failure)
}

/// ER_WRONG_VALUE_FOR_VAR: "Variable 'sql_mode' can't be set to the value of …".
const WRONG_VALUE_FOR_VAR: u16 = 1231;

/// `params.database_name`, checked as MySQL could hold it: 1 to 64
/// characters of the Basic Multilingual Plane (MySQL's identifiers are
/// utf8mb3), no NUL, not ending with a space.
fn database_name(params: &Params) -> Result<String, ActionError> {
    let name = params.string("database_name")?;
    let chars = name.chars().count();
    if chars == 0 || chars > 64 {
        return Err(ActionError::bad_params(
            "database_name must be 1 to 64 characters",
        ));
    }
    if name.contains('\0') || name.chars().any(|c| u32::from(c) > 0xFFFF) {
        return Err(ActionError::bad_params(
            "database_name may hold neither a NUL nor a character outside the Basic Multilingual Plane",
        ));
    }
    if name.ends_with(' ') {
        return Err(ActionError::bad_params(
            "database_name cannot end with a space",
        ));
    }
    Ok(name.to_string())
}

/// The configured database (the connections' default schema), if any.
fn configured_database() -> Result<Option<String>, ActionError> {
    let rows = query("SELECT DATABASE() AS name", &[])?;
    Ok(rows.text(0, "name"))
}

fn is_protected(name: &str, configured: Option<&str>) -> bool {
    SYSTEM_SCHEMAS.contains(&name) || configured == Some(name)
}

/// A schema's character set and collation.
struct Schema {
    charset: String,
    collation: String,
}

/// The schema named exactly `name`. information_schema compares names
/// without regard to case on some servers: the match is made here.
fn lookup(name: &str) -> Result<Option<Schema>, ActionError> {
    let rows = query(
        "SELECT SCHEMA_NAME AS name, DEFAULT_CHARACTER_SET_NAME AS charset, DEFAULT_COLLATION_NAME AS collation
           FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        &[name.into()],
    )?;
    Ok((0..rows.len())
        .find(|&row| rows.text(row, "name").as_deref() == Some(name))
        .map(|row| Schema {
            charset: rows.text(row, "charset").unwrap_or_default(),
            collation: rows.text(row, "collation").unwrap_or_default(),
        }))
}

fn list_databases() -> Result<Value, ActionError> {
    let configured = configured_database()?;
    let rows = query(
        "SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
        &[],
    )?;
    Ok(Value::Array(
        (0..rows.len())
            .filter_map(|row| rows.text(row, "name"))
            .map(|name| {
                let protected = is_protected(&name, configured.as_deref());
                json!({"name": name, "protected": protected})
            })
            .collect(),
    ))
}

fn create_database(params: &Params) -> Result<Value, ActionError> {
    let name = database_name(params)?;
    if lookup(&name)?.is_some() {
        return Err(ActionError::conflict(format!(
            "database `{name}` already exists"
        )));
    }
    execute(&format!("CREATE DATABASE {}", quote_ident(&name)), &[])?;
    log::info(&format!("created database {name:?}"));
    Ok(json!({"name": name, "protected": false}))
}

/// The database named by the params, which must exist and not be protected.
fn unprotected(params: &Params) -> Result<(String, Schema), ActionError> {
    let name = database_name(params)?;
    let schema = lookup(&name)?
        .ok_or_else(|| ActionError::not_found(format!("database `{name}` does not exist")))?;
    if is_protected(&name, configured_database()?.as_deref()) {
        return Err(ActionError::refused(format!(
            "database `{name}` is protected"
        )));
    }
    Ok((name, schema))
}

fn delete_database(params: &Params) -> Result<Value, ActionError> {
    let (name, _) = unprotected(params)?;
    execute(&format!("DROP DATABASE {}", quote_ident(&name)), &[])?;
    log::info(&format!("deleted database {name:?}"));
    Ok(Value::Null)
}

/// A character set or collation name from the catalog, checked before it
/// is written into `CREATE DATABASE` (which takes no parameters).
fn catalog_word(word: &str) -> Result<&str, ActionError> {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(word)
    } else {
        Err(ActionError::failed(format!(
            "unexpected character set or collation name {word:?}"
        )))
    }
}

fn reset_database(params: &Params) -> Result<Value, ActionError> {
    let (name, schema) = unprotected(params)?;
    let create = format!(
        "CREATE DATABASE {} CHARACTER SET {} COLLATE {}",
        quote_ident(&name),
        catalog_word(&schema.charset)?,
        catalog_word(&schema.collation)?,
    );
    execute(&format!("DROP DATABASE {}", quote_ident(&name)), &[])?;
    if let Err(e) = execute(&create, &[]) {
        log::error(&format!(
            "reset of database {name:?}: dropped, but not created again: {}",
            e.message
        ));
        return Err(e);
    }
    log::info(&format!("reset database {name:?}"));
    Ok(Value::Null)
}

fn get_sqlmode() -> Result<Value, ActionError> {
    let rows = query("SELECT @@GLOBAL.sql_mode AS mode", &[])?;
    Ok(json!(rows.text(0, "mode").unwrap_or_default()))
}

/// The modes of a `sql_mode` list: upper-cased, blanks around each
/// removed, empty items dropped.
fn modes_of(list: &str) -> Vec<String> {
    list.split(',')
        .map(|mode| mode.trim().to_ascii_uppercase())
        .filter(|mode| !mode.is_empty())
        .collect()
}

fn set_sqlmode(params: &Params) -> Result<Value, ActionError> {
    let list = params.as_str()?;
    if list.len() > MAX_SQLMODE_BYTES {
        return Err(ActionError::bad_params("the SQL mode list is too long"));
    }
    let modes = modes_of(list);
    if let Some(bad) = modes
        .iter()
        .find(|m| !m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(ActionError::bad_params(format!(
            "unknown SQL mode '{bad}': a mode is a word such as STRICT_TRANS_TABLES"
        )));
    }
    // Each mode is tried alone on the session (the host resets a
    // connection's session before another call uses it), so an unknown
    // one is named, whatever the server's own list of modes.
    for mode in &modes {
        match mysql::execute("SET SESSION sql_mode = ?", &[mode.as_str().into()]) {
            Ok(_) => {}
            Err(e) if e.code == WRONG_VALUE_FOR_VAR => {
                return Err(ActionError::bad_params(format!(
                    "unknown SQL mode '{mode}' for this server"
                )));
            }
            Err(e) => return Err(my_failure(e)),
        }
    }
    let joined = modes.join(",");
    match mysql::execute("SET GLOBAL sql_mode = ?", &[joined.as_str().into()]) {
        Ok(_) => {}
        Err(e) if e.code == WRONG_VALUE_FOR_VAR => {
            return Err(ActionError::bad_params(format!(
                "the server refuses this SQL mode: {}",
                e.message
            )));
        }
        Err(e) => return Err(my_failure(e)),
    }
    log::info(&format!("global sql_mode set to {joined:?}"));
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_lists_are_normalized() {
        assert_eq!(
            modes_of(" no_zero_date, ,STRICT_TRANS_TABLES "),
            vec!["NO_ZERO_DATE", "STRICT_TRANS_TABLES"]
        );
        assert!(modes_of("").is_empty());
    }

    #[test]
    fn names_are_checked_as_mysql_holds_them() {
        let name = |n: &str| database_name(&Params(json!({"database_name": n})));
        assert!(name("x`; DROP DATABASE y;--").is_ok());
        assert!(name(&"é".repeat(64)).is_ok());
        assert!(name(&"é".repeat(65)).is_err());
        assert!(name("").is_err());
        assert!(name("trailing ").is_err());
        assert!(name("emoji 🦀").is_err());
        assert!(name("nul\0").is_err());
    }

    #[test]
    fn catalog_words_are_plain() {
        assert!(catalog_word("utf8mb4_general_ci").is_ok());
        assert!(catalog_word("utf8 COLLATE x").is_err());
        assert!(catalog_word("").is_err());
    }
}
