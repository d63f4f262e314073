//! The PostgreSQL actions of the database-service API
//! (`POST /api/databases/:id/action`), run by the host on the PostgreSQL
//! server of the addressed database: its `postgres` capability is bound to
//! that database, and `None` names its configured database.
//!
//! Names from params are checked (1-63 bytes, no NUL) and quoted as
//! identifiers where SQL needs one (CREATE/DROP DATABASE take no
//! parameters); every other value is a bound parameter.

use dbagent_sdk::action::{Action, ActionError, Params};
use dbagent_sdk::pg::{self, Rows};
use dbagent_sdk::{Error, log, quote_ident, quote_literal};
use serde_json::{Value, json};

const NAME_PARAM: &str = r#"{"type": "object", "properties": {"database_name": {"type": "string", "minLength": 1, "maxLength": 63}}, "required": ["database_name"], "additionalProperties": false}"#;
const PID_PARAM: &str = r#"{"type": "object", "properties": {"pid": {"type": "integer", "minimum": 1}}, "required": ["pid"], "additionalProperties": false}"#;
const NO_PARAMS: &str = r#"{"type": ["null", "object"], "additionalProperties": false}"#;

fn actions() -> Vec<Action> {
    vec![
        Action::new(
            "list-databases",
            "List the logical databases; templates, postgres and the agent's own database are protected",
            NO_PARAMS,
        ),
        Action::new("create-database", "Create a logical database", NAME_PARAM),
        Action::new(
            "delete-database",
            "Delete a logical database (its open connections are terminated); refused on a protected one",
            NAME_PARAM,
        ),
        Action::new(
            "reset-database",
            "Delete all data of a logical database: it is dropped (its open connections terminated) and created again with the same owner, encoding, collation, ctype and tablespace",
            NAME_PARAM,
        ),
        Action::new(
            "list-extensions",
            "List the extensions of the configured database and their versions",
            NO_PARAMS,
        ),
        Action::new(
            "pg-list-queries",
            "List the client backends' queries, running and idle (query_duration in nanoseconds)",
            NO_PARAMS,
        ),
        Action::new(
            "pg-cancel-query",
            "Cancel the query of a client backend (pg_cancel_backend)",
            PID_PARAM,
        ),
        Action::new(
            "pg-terminate-query",
            "Terminate a client backend (pg_terminate_backend)",
            PID_PARAM,
        ),
        Action::new(
            "pg-stat-statements-enable",
            "Create the pg_stat_statements extension; says so when shared_preload_libraries lacks it (a restart is then needed)",
            NO_PARAMS,
        ),
        Action::new(
            "pg-stat-statements-reset",
            "Reset pg_stat_statements' statistics",
            NO_PARAMS,
        ),
        Action::new(
            "pg-stat-statements-list",
            "List pg_stat_statements' statistics (times in milliseconds), most time first, at most 1000",
            NO_PARAMS,
        ),
    ]
}

fn run(name: &str, params: &Params) -> Result<Value, ActionError> {
    match name {
        "list-databases" => list_databases(),
        "create-database" => create_database(params),
        "delete-database" => delete_database(params),
        "reset-database" => reset_database(params),
        "list-extensions" => list_extensions(),
        "pg-list-queries" => list_queries(),
        "pg-cancel-query" => signal_backend(params, "pg_cancel_backend"),
        "pg-terminate-query" => signal_backend(params, "pg_terminate_backend"),
        "pg-stat-statements-enable" => stat_statements_enable(),
        "pg-stat-statements-reset" => stat_statements_reset(),
        "pg-stat-statements-list" => stat_statements_list(),
        other => Err(ActionError::bad_params(format!("unknown action '{other}'"))),
    }
}

dbagent_sdk::export_action_module!(actions, run);

/// A failed query as an action error: PostgreSQL's own codes for what is
/// the request's doing keep their meaning.
fn pg_failure(e: Error) -> ActionError {
    match e.sqlstate.as_deref() {
        Some("42P04") => ActionError::conflict(e.message),
        Some("3D000") => ActionError::not_found(e.message),
        Some("55006") => ActionError::conflict(e.message),
        Some("42501") => ActionError::refused(e.message),
        _ => ActionError::from(e),
    }
}

fn query(sql: &str, params: &[pg::Value]) -> Result<Rows, ActionError> {
    pg::query(None, sql, params).map_err(pg_failure)
}

fn execute(sql: &str) -> Result<u64, ActionError> {
    pg::execute(None, sql, &[]).map_err(pg_failure)
}

/// `params.database_name`, checked as PostgreSQL could hold it.
fn database_name(params: &Params) -> Result<String, ActionError> {
    let name = params.string("database_name")?;
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(ActionError::bad_params(
            "database_name must be 1 to 63 bytes without a NUL",
        ));
    }
    Ok(name.to_string())
}

/// Whether the database exists, and whether it is protected.
fn lookup(name: &str) -> Result<Option<bool>, ActionError> {
    let rows = query(
        "SELECT (datistemplate OR datname = 'postgres' OR datname = current_database()) AS protected
           FROM pg_database WHERE datname = $1",
        &[name.into()],
    )?;
    match rows.first() {
        Some(row) => Ok(Some(
            row.get::<bool>("protected").map_err(ActionError::from)?,
        )),
        None => Ok(None),
    }
}

fn list_databases() -> Result<Value, ActionError> {
    let rows = query(
        "SELECT datname::text AS name,
                (datistemplate OR datname = 'postgres' OR datname = current_database()) AS protected
           FROM pg_database ORDER BY datname",
        &[],
    )?;
    Ok(Value::Array(rows.to_json()))
}

fn create_database(params: &Params) -> Result<Value, ActionError> {
    let name = database_name(params)?;
    if lookup(&name)?.is_some() {
        return Err(ActionError::conflict(format!(
            "database \"{name}\" already exists"
        )));
    }
    execute(&format!("CREATE DATABASE {}", quote_ident(&name)))?;
    log::info(&format!("created database {name:?}"));
    Ok(json!({"name": name, "protected": false}))
}

/// `WITH (FORCE)` terminates the database's connections (PostgreSQL 13+);
/// older servers refuse a database in use (a 409).
fn drop_clause() -> Result<&'static str, ActionError> {
    let rows = query(
        "SELECT current_setting('server_version_num')::int >= 130000 AS force",
        &[],
    )?;
    let force = rows
        .first()
        .map(|r| r.get::<bool>("force"))
        .transpose()
        .map_err(ActionError::from)?
        .unwrap_or(false);
    Ok(if force { " WITH (FORCE)" } else { "" })
}

/// The database named by the params, which must exist and not be protected.
fn unprotected(params: &Params) -> Result<String, ActionError> {
    let name = database_name(params)?;
    match lookup(&name)? {
        None => Err(ActionError::not_found(format!(
            "database \"{name}\" does not exist"
        ))),
        Some(true) => Err(ActionError::refused(format!(
            "database \"{name}\" is protected"
        ))),
        Some(false) => Ok(name),
    }
}

fn delete_database(params: &Params) -> Result<Value, ActionError> {
    let name = unprotected(params)?;
    execute(&format!(
        "DROP DATABASE {}{}",
        quote_ident(&name),
        drop_clause()?
    ))?;
    log::info(&format!("deleted database {name:?}"));
    Ok(Value::Null)
}

fn reset_database(params: &Params) -> Result<Value, ActionError> {
    let name = unprotected(params)?;
    let rows = query(
        "SELECT pg_get_userbyid(d.datdba)::text AS owner,
                pg_encoding_to_char(d.encoding)::text AS encoding,
                d.datcollate::text AS collate,
                d.datctype::text AS ctype,
                t.spcname::text AS tablespace
           FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace
          WHERE d.datname = $1",
        &[name.as_str().into()],
    )?;
    let row = rows
        .first()
        .ok_or_else(|| ActionError::not_found(format!("database \"{name}\" does not exist")))?;
    let text = |column: &str| row.get::<String>(column).map_err(ActionError::from);
    let create = format!(
        "CREATE DATABASE {} OWNER {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {} TABLESPACE {}",
        quote_ident(&name),
        quote_ident(&text("owner")?),
        quote_literal(&text("encoding")?),
        quote_literal(&text("collate")?),
        quote_literal(&text("ctype")?),
        quote_ident(&text("tablespace")?),
    );
    execute(&format!(
        "DROP DATABASE {}{}",
        quote_ident(&name),
        drop_clause()?
    ))?;
    execute(&create)?;
    log::info(&format!("reset database {name:?}"));
    Ok(Value::Null)
}

fn list_extensions() -> Result<Value, ActionError> {
    let rows = query(
        "SELECT extname::text AS name, 'v' || extversion AS version FROM pg_extension ORDER BY extname",
        &[],
    )?;
    Ok(Value::Array(rows.to_json()))
}

/// Client backends, without the agent's own connections.
const CLIENT_BACKENDS: &str = "backend_type = 'client backend'
   AND pid <> pg_backend_pid()
   AND application_name IS DISTINCT FROM 'dbagent'
   AND application_name NOT LIKE 'dbagent-job-%'";

fn list_queries() -> Result<Value, ActionError> {
    let rows = query(
        &format!(
            "SELECT query,
                    state,
                    usename::text AS username,
                    to_char(query_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS query_start,
                    pid,
                    GREATEST(COALESCE((EXTRACT(EPOCH FROM clock_timestamp() - query_start) * 1e9)::int8, 0), 0) AS query_duration
               FROM pg_stat_activity
              WHERE {CLIENT_BACKENDS}
              ORDER BY query_start NULLS LAST, pid"
        ),
        &[],
    )?;
    Ok(Value::Array(rows.to_json()))
}

fn signal_backend(params: &Params, function: &str) -> Result<Value, ActionError> {
    let pid = params.int("pid")?;
    let Ok(pid) = i32::try_from(pid) else {
        return Err(ActionError::bad_params("params.pid is not a process id"));
    };
    let rows = query(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND {CLIENT_BACKENDS}) AS found"
        ),
        &[pid.into()],
    )?;
    let found = rows
        .first()
        .map(|r| r.get::<bool>("found"))
        .transpose()
        .map_err(ActionError::from)?
        .unwrap_or(false);
    if !found {
        return Err(ActionError::not_found(format!(
            "pid {pid} is no client backend of this server"
        )));
    }
    let rows = query(&format!("SELECT {function}($1) AS done"), &[pid.into()])?;
    let done = rows
        .first()
        .map(|r| r.get::<bool>("done"))
        .transpose()
        .map_err(ActionError::from)?
        .unwrap_or(false);
    if !done {
        return Err(ActionError::not_found(format!(
            "pid {pid} ended before it could be signalled"
        )));
    }
    log::info(&format!("{function}({pid})"));
    Ok(Value::Null)
}

/// Whether `shared_preload_libraries` loads pg_stat_statements (however it
/// is spelled: `$libdir/pg_stat_statements`, quoted, with spaces).
fn preloaded() -> Result<bool, ActionError> {
    let rows = query(
        "SELECT EXISTS (
                SELECT 1 FROM unnest(string_to_array(current_setting('shared_preload_libraries'), ',')) AS lib
                 WHERE regexp_replace(trim(both ' \"' from lib), '^.*/', '') = 'pg_stat_statements'
            ) AS preloaded",
        &[],
    )?;
    rows.first()
        .map(|r| r.get::<bool>("preloaded"))
        .transpose()
        .map(|p| p.unwrap_or(false))
        .map_err(ActionError::from)
}

fn stat_statements_enable() -> Result<Value, ActionError> {
    execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")?;
    if !preloaded()? {
        return Err(ActionError::conflict(
            "the pg_stat_statements extension is created, but it collects nothing until \
             shared_preload_libraries includes pg_stat_statements and PostgreSQL is restarted \
             (e.g. ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements', then a restart)",
        ));
    }
    Ok(Value::Null)
}

/// A missing extension (or library) as the client can act on it.
fn stat_statements_failure(e: ActionError) -> ActionError {
    if e.message.contains("does not exist") {
        ActionError::not_found(
            "pg_stat_statements is not installed in the configured database: run pg-stat-statements-enable",
        )
    } else if e.message.contains("shared_preload_libraries") {
        ActionError::conflict(format!(
            "{}: add pg_stat_statements to shared_preload_libraries and restart PostgreSQL",
            e.message
        ))
    } else {
        e
    }
}

fn stat_statements_reset() -> Result<Value, ActionError> {
    execute("SELECT pg_stat_statements_reset()").map_err(stat_statements_failure)?;
    Ok(Value::Null)
}

fn stat_statements_list() -> Result<Value, ActionError> {
    let rows = query(
        "SELECT current_setting('server_version_num')::int >= 130000 AS exec_times",
        &[],
    )?;
    let exec_times = rows
        .first()
        .map(|r| r.get::<bool>("exec_times"))
        .transpose()
        .map_err(ActionError::from)?
        .unwrap_or(true);
    // PostgreSQL 13 renamed the times (total_time → total_exec_time, …).
    let sql = if exec_times {
        "SELECT userid::int8 AS user_id, query, calls, rows,
                total_exec_time AS total_time, min_exec_time AS min_time,
                max_exec_time AS max_time, mean_exec_time AS mean_time,
                stddev_exec_time AS std_dev
           FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 1000"
    } else {
        "SELECT userid::int8 AS user_id, query, calls, rows,
                total_time, min_time, max_time, mean_time, stddev_time AS std_dev
           FROM pg_stat_statements ORDER BY total_time DESC LIMIT 1000"
    };
    let rows = query(sql, &[]).map_err(stat_statements_failure)?;
    Ok(Value::Array(rows.to_json()))
}
