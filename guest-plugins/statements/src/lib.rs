//! temBoard's statements API: `GET /statements` → `{"snapshot_datetime",
//! "data": [...]}`, one entry per statement of `pg_stat_statements`, across
//! all databases, most total time first.
//!
//! The extension is read in the database named by the plugin setting
//! `dbname` (`[plugin.statements.settings]`), else the agent's configured
//! database. Field names are the reference's, without the stray trailing
//! spaces two of them have there (`"datname "`, `"temp_blks_read "`): a
//! client looking them up by their intended names finds them.

mod sql;

use dbagent_sdk::pg::{self, Row};
use dbagent_sdk::{Error, Params, Request, Response, Router, settings};
use serde_json::{Map, Value, json};

const DEFAULT_LIMIT: i64 = 10_000;
const MAX_LIMIT: i64 = 100_000;

fn handle(req: &Request) -> Result<Response, Error> {
    Router::new().get("/", statements).handle(req)
}

dbagent_sdk::export_plugin!(handle);

/// `?limit=N`: 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
fn limit(req: &Request) -> Result<i64, Error> {
    req.int_param("limit", DEFAULT_LIMIT, 1..=MAX_LIMIT)
}

fn statements(req: &Request, _: &Params) -> Result<Response, Error> {
    let limit = limit(req)?;
    let dbname: Option<String> = settings::get("dbname");
    let database = dbname.as_deref();

    let setup = pg::query(database, sql::SETUP, &[])?;
    let setup = setup
        .first()
        .ok_or_else(|| Error::internal("no answer from PostgreSQL"))?;
    if !sql::lists_pg_stat_statements(&setup.get::<String>("preload_libraries")?) {
        return Err(not_preloaded());
    }
    if !setup.get::<bool>("installed")? {
        let name: String = setup.get("database")?;
        return Err(Error::not_found(format!(
            "pg_stat_statements is not installed in database \"{name}\": run CREATE EXTENSION pg_stat_statements"
        )));
    }
    let version: i64 = setup.get("version")?;
    let snapshot: String = setup.get("snapshot")?;

    let rows = pg::query(database, &sql::statements(version), &[limit.into()])
        .map_err(not_preloaded_or)?;
    let data: Vec<Value> = rows
        .iter()
        .map(|row| entry(&row))
        .collect::<Result<_, _>>()?;
    Ok(Response::ok(
        &json!({ "snapshot_datetime": snapshot, "data": data }),
    ))
}

fn not_preloaded() -> Error {
    Error::not_found(
        "pg_stat_statements is not preloaded: add it to shared_preload_libraries and restart PostgreSQL",
    )
}

/// The extension's own refusal when its library is not loaded at server
/// start ("pg_stat_statements must be loaded via shared_preload_libraries",
/// SQLSTATE 55000), e.g. a setting spelled in a way the check above does
/// not recognise: the same 404 as when the check catches it.
fn not_preloaded_or(error: Error) -> Error {
    let refused = error.sqlstate.as_deref() == Some("55000")
        && error.message.contains("shared_preload_libraries");
    if refused { not_preloaded() } else { error }
}

/// One statement with the reference's fields in its order: integers stay
/// integers, times (milliseconds) are numbers.
fn entry(row: &Row<'_>) -> Result<Value, Error> {
    let mut out = Map::new();
    for (name, kind) in sql::FIELDS {
        let value = match kind {
            sql::Kind::Text => json!(row.get::<Option<String>>(name)?),
            sql::Kind::Int => json!(row.get::<Option<i64>>(name)?),
            sql::Kind::Float => json!(row.get::<Option<f64>>(name)?),
        };
        out.insert((*name).to_string(), value);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let with = |q: &str| Request {
            query: q.into(),
            ..Default::default()
        };
        assert_eq!(limit(&with("")).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(&with("limit=1")).unwrap(), 1);
        for bad in ["limit=0", "limit=x", "limit=100001"] {
            assert_eq!(limit(&with(bad)).unwrap_err().status, 406);
        }
    }

    #[test]
    fn preload_setting() {
        for listed in [
            "pg_stat_statements",
            "auto_explain, pg_stat_statements",
            " \"pg_stat_statements\" ",
            "$libdir/pg_stat_statements",
            "pg_stat_statements.so",
        ] {
            assert!(sql::lists_pg_stat_statements(listed), "{listed}");
        }
        for missing in [
            "",
            "auto_explain",
            "pg_stat_statements_ext",
            "pg_stat_kcache",
        ] {
            assert!(!sql::lists_pg_stat_statements(missing), "{missing}");
        }
    }

    #[test]
    fn the_extensions_refusal_is_the_preload_404() {
        let refusal = Error {
            sqlstate: Some("55000".into()),
            ..Error::internal("pg_stat_statements must be loaded via shared_preload_libraries")
        };
        assert_eq!(not_preloaded_or(refusal), not_preloaded());
        let other = Error::internal("division by zero");
        assert_eq!(not_preloaded_or(other.clone()), other);
    }

    #[test]
    fn every_field_is_selected() {
        for version in [120000, 150000, 170000] {
            let sql = sql::statements(version);
            for (name, _) in sql::FIELDS {
                assert!(sql.contains(&format!("AS {name}")), "{version}: {name}");
            }
        }
    }
}
