//! temBoard's statements API: `GET /statements` → `{"snapshot_datetime",
//! "data": [...]}`, one entry per statement of `pg_stat_statements`, across
//! all databases, most total time first.
//!
//! The extension is read in the database named by the plugin setting
//! `dbname` (`[plugin.statements.settings]`), else the agent's configured
//! database. Field names are the reference's, without the stray trailing
//! spaces two of them have there (`"datname "`, `"temp_blks_read "`): a
//! client looking them up by their intended names finds them. After them
//! come the view's own columns not already served under that name (on
//! PostgreSQL 13+ `total_exec_time`, `plans`, `total_plan_time`, ...,
//! `wal_records`, `wal_fpi`, `wal_bytes`, `toplevel`...), in the view's
//! order.

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
    let view_columns: Vec<String> = setup.get("view_columns")?;

    let rows = pg::query(database, &sql::statements(version), &[limit.into()])
        .map_err(not_preloaded_or)?;
    let data: Vec<Value> = rows
        .iter()
        .map(|row| entry(&row, &view_columns))
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

/// One statement with the reference's fields in its order (integers stay
/// integers, times in milliseconds are numbers), then the view's other
/// columns in its order.
fn entry(row: &Row<'_>, view_columns: &[String]) -> Result<Value, Error> {
    let mut out = Map::new();
    for (name, kind) in sql::FIELDS {
        let value = match kind {
            sql::Kind::Text => json!(row.get::<Option<String>>(name)?),
            sql::Kind::Int => json!(row.get::<Option<i64>>(name)?),
            sql::Kind::Float => json!(row.get::<Option<f64>>(name)?),
        };
        out.insert((*name).to_string(), value);
    }
    let own: Option<String> = row.get("view_columns")?;
    let own: Map<String, Value> = own
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    add_view_columns(&mut out, own, view_columns);
    Ok(Value::Object(out))
}

/// Adds the columns of `own` (the view's row) that `out` does not hold
/// yet: first in the view's column order, then any the order misses.
fn add_view_columns(out: &mut Map<String, Value>, mut own: Map<String, Value>, order: &[String]) {
    for name in order {
        if let Some(value) = own.remove(name)
            && !out.contains_key(name)
        {
            out.insert(name.clone(), value);
        }
    }
    for (name, value) in own {
        out.entry(name).or_insert(value);
    }
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
    fn view_columns_follow_the_reference_fields() {
        let mut out = Map::new();
        out.insert("calls".into(), json!(3));
        out.insert("total_time".into(), json!(1.5));
        let own = json!({
            "calls": 3, "wal_bytes": 100, "plans": 2,
            "total_exec_time": 1.5, "toplevel": true, "extra": "x"
        });
        let order: Vec<String> = ["calls", "plans", "total_exec_time", "toplevel", "wal_bytes"]
            .map(String::from)
            .to_vec();
        let Value::Object(own) = own else {
            unreachable!()
        };
        add_view_columns(&mut out, own, &order);
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "calls",
                "total_time",
                "plans",
                "total_exec_time",
                "toplevel",
                "wal_bytes",
                "extra"
            ]
        );
        assert_eq!(out["toplevel"], json!(true));
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
