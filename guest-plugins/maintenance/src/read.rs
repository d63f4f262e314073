//! The read side of the maintenance API: sizes, counts, statistics and
//! estimated bloat of the instance, its databases, schemas, tables and
//! indexes (how they are measured and estimated: [`read_sql`]).
//!
//! Every name in the path is checked in the catalog first ([`catalog`]),
//! which answers 404 naming what is missing; names then reach SQL only as
//! bound parameters. Per-database figures are queried in that database.
//!
//! A read never waits on a lock: sizes are not measured for relations
//! someone locks ACCESS EXCLUSIVE, and an answer that lacks some says so in
//! an `unavailable` field (see "Locks" in [`read_sql`]).

#[path = "read_sql.rs"]
mod read_sql;

use crate::catalog;
use dbagent_sdk::pg::{self, Row};
use dbagent_sdk::{Error, Params, Request, Response};
use read_sql::{Kind, Scope};
use serde_json::{Map, Value, json};

/// `GET /maintenance`: every database that accepts connections (templates
/// excepted) with its sums, and the instance's total.
pub fn instance(_: &Request, _: &Params) -> Result<Response, Error> {
    let listed = pg::query(None, read_sql::DATABASES, &[])?;
    let mut databases = Vec::new();
    for row in listed.iter() {
        if !row.get::<bool>("datallowconn")? {
            continue;
        }
        let datname: String = row.get("datname")?;
        let schemas = match query(Some(&datname), &read_sql::schemas(), &[]) {
            Ok(rows) => rows,
            // Dropped, or closed to connections, since it was listed.
            Err(e) if vanished(&e) => continue,
            Err(e) => return Err(e),
        };
        let mut entry = Map::new();
        entry.insert("datname".into(), json!(datname));
        if let Some(total) = total_row(&schemas)? {
            entry.extend(object(&total, read_sql::DATABASE_FIELDS)?);
        }
        entry.insert("total_bytes".into(), json!(row.get::<i64>("total_bytes")?));
        entry.insert("total_size".into(), json!(row.get::<String>("total_size")?));
        databases.push(Value::Object(sorted(entry)));
    }
    let totals = match listed.first() {
        Some(_) => listed,
        None => pg::query(None, read_sql::NO_DATABASE, &[])?,
    };
    let totals = totals
        .first()
        .ok_or_else(|| Error::internal("no answer from PostgreSQL"))?;
    Ok(Response::ok(&json!({
        "databases": databases,
        "instance": {
            "total_bytes": totals.get::<i64>("instance_bytes")?,
            "total_size": totals.get::<String>("instance_size")?,
        },
    })))
}

/// `GET /maintenance/<db>`: its schemas with their sums, and its size.
pub fn database(_: &Request, params: &Params) -> Result<Response, Error> {
    let db = params.get("db");
    catalog::database(db)?;
    let rows = query(Some(db), &read_sql::schemas(), &[])?;
    let mut schemas = Vec::new();
    for row in rows.iter() {
        if !row.get::<bool>("is_total")? {
            schemas.push(Value::Object(object(&row, read_sql::SCHEMA_FIELDS)?));
        }
    }
    let any = rows
        .first()
        .ok_or_else(|| Error::internal("no answer from PostgreSQL"))?;
    Ok(Response::ok(&json!({
        "schemas": schemas,
        "total_bytes": any.get::<i64>("database_bytes")?,
        "total_size": any.get::<String>("database_size")?,
    })))
}

/// `GET /maintenance/<db>/schema/<schema>`: its tables and indexes, and
/// its size.
pub fn schema(_: &Request, params: &Params) -> Result<Response, Error> {
    let (db, schema) = (params.get("db"), params.get("schema"));
    catalog::schema(db, schema)?;
    let tables = objects(
        &query(Some(db), &read_sql::tables(), &[schema.into()])?,
        read_sql::TABLE_FIELDS,
    )?;
    let indexes = objects(
        &query(
            Some(db),
            &read_sql::indexes(Scope::Schema),
            &[schema.into()],
        )?,
        read_sql::INDEX_FIELDS,
    )?;
    let size = query(Some(db), &read_sql::schema_size(), &[schema.into()])?;
    let size = size
        .first()
        .ok_or_else(|| Error::internal("no answer from PostgreSQL"))?;
    let mut answer = Map::new();
    answer.insert("indexes".into(), Value::Array(indexes));
    answer.insert("size".into(), json!(size.get::<String>("size")?));
    answer.insert("tables".into(), Value::Array(tables));
    answer.insert("total_bytes".into(), json!(size.get::<i64>("total_bytes")?));
    add_unavailable(&mut answer, &size)?;
    Ok(Response::ok(&Value::Object(sorted(answer))))
}

/// `GET /maintenance/<db>/schema/<schema>/table/<table>`: its figures,
/// statistics and indexes.
pub fn table(_: &Request, params: &Params) -> Result<Response, Error> {
    let (db, schema, table) = (params.get("db"), params.get("schema"), params.get("table"));
    catalog::table(db, schema, table)?;
    let names = [schema.into(), table.into()];
    let rows = query(Some(db), &read_sql::table(), &names)?;
    let Some(row) = rows.first() else {
        // Dropped since it was checked.
        return Err(Error::not_found(format!(
            "table \"{table}\" not found in schema \"{schema}\" of database \"{db}\""
        )));
    };
    let mut answer = object(&row, read_sql::TABLE_DETAIL_FIELDS)?;
    let indexes = objects(
        &query(Some(db), &read_sql::indexes(Scope::Table), &names)?,
        read_sql::INDEX_FIELDS,
    )?;
    answer.insert("indexes".into(), Value::Array(indexes));
    Ok(Response::ok(&Value::Object(sorted(answer))))
}

/// Runs a query of the read side. Relations locked when it starts are left
/// out of its measures; one locked while it runs makes it fail at once
/// (`lock_timeout`, SQLSTATE 55P03) instead of waiting, and it is run once
/// more, which then sees that lock. Failing again, it is a 503.
fn query(database: Option<&str>, sql: &str, params: &[pg::Value]) -> Result<pg::Rows, Error> {
    let lock_timeout = |e: &Error| e.sqlstate.as_deref() == Some("55P03");
    match pg::query(database, sql, params) {
        Err(e) if lock_timeout(&e) => match pg::query(database, sql, params) {
            Err(e) if lock_timeout(&e) => Err(Error {
                status: 503,
                message: format!(
                    "tables were being locked while their sizes were read; try again ({})",
                    e.message
                ),
                sqlstate: e.sqlstate,
            }),
            other => other,
        },
        other => other,
    }
}

/// Adds `unavailable` (why some figures are missing) when the row has one.
fn add_unavailable(out: &mut Map<String, Value>, row: &Row<'_>) -> Result<(), Error> {
    if let Some(why) = row.get::<Option<String>>("unavailable")? {
        out.insert("unavailable".into(), json!(why));
    }
    Ok(())
}

/// A database that went away between listing and querying it: gone
/// (3D000) or no longer accepting connections (55000).
fn vanished(error: &Error) -> bool {
    matches!(error.sqlstate.as_deref(), Some("3D000" | "55000"))
}

/// The row of the sums, in the answer of [`read_sql::schemas`].
fn total_row(rows: &pg::Rows) -> Result<Option<Row<'_>>, Error> {
    for row in rows.iter() {
        if row.get::<bool>("is_total")? {
            return Ok(Some(row));
        }
    }
    Ok(None)
}

/// The given fields of a row, each of its JSON type (or null).
fn object(row: &Row<'_>, fields: &[(&str, Kind)]) -> Result<Map<String, Value>, Error> {
    let mut out = Map::new();
    for (name, kind) in fields {
        let value = match kind {
            Kind::Int => json!(row.get::<Option<i64>>(name)?),
            Kind::Float => json!(row.get::<Option<f64>>(name)?),
            Kind::Text => json!(row.get::<Option<String>>(name)?),
            Kind::Bool => json!(row.get::<Option<bool>>(name)?),
        };
        out.insert((*name).to_string(), value);
    }
    if row.value("unavailable").is_ok() {
        add_unavailable(&mut out, row)?;
    }
    Ok(sorted(out))
}

fn objects(rows: &pg::Rows, fields: &[(&str, Kind)]) -> Result<Vec<Value>, Error> {
    rows.iter()
        .map(|row| object(&row, fields).map(Value::Object))
        .collect()
}

/// The object with its keys sorted, as the reference lists them.
fn sorted(object: Map<String, Value>) -> Map<String, Value> {
    let mut entries: Vec<(String, Value)> = object.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted() {
        let mut map = Map::new();
        for key in ["total_size", "indexes", "analyze_count", "idx_scan"] {
            map.insert(key.into(), Value::Null);
        }
        let keys: Vec<String> = sorted(map).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["analyze_count", "idx_scan", "indexes", "total_size"]);
    }

    #[test]
    fn vanished_databases() {
        let with = |code: &str| Error {
            sqlstate: Some(code.into()),
            ..Error::internal("x")
        };
        assert!(vanished(&with("3D000")));
        assert!(vanished(&with("55000")));
        assert!(!vanished(&with("42501")));
        assert!(!vanished(&Error::internal("x")));
    }
}
