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
use dbagent_sdk::pg;
use dbagent_sdk::{Error, Params, Request, Response};
use read_sql::Access;

/// `GET /maintenance`: every database that accepts connections (templates
/// excepted) with its sums, and the instance's total: the sizes of those
/// entries and of the databases that do not accept connections.
pub fn instance(_: &Request, _: &Params) -> Result<Response, Error> {
    let listed = pg::query(None, read_sql::DATABASES, &[])?;
    let mut databases = Vec::new();
    let mut total: i64 = 0;
    for row in listed.iter() {
        if !row.get::<bool>("datallowconn")? {
            // Not listed, but counted.
            total = total.saturating_add(row.get("bytes")?);
            continue;
        }
        let datname: String = row.get("datname")?;
        let entry = access(&datname).and_then(|access| {
            query(
                Some(&datname),
                &read_sql::database_entry(access),
                &[datname.as_str().into()],
            )
        });
        match entry {
            Ok(rows) => {
                if let Some(row) = rows.first() {
                    total = total.saturating_add(row.get("bytes")?);
                }
                databases.push(body(rows)?);
            }
            // Dropped, or closed to connections, since it was listed.
            Err(e) if vanished(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    let instance = body(pg::query(None, read_sql::INSTANCE, &[total.into()])?)?;
    let mut answer = String::from("{\"databases\": [");
    answer.push_str(&databases.join(", "));
    answer.push_str("], \"instance\": ");
    answer.push_str(&instance);
    answer.push('}');
    Ok(json_response(answer))
}

/// `GET /maintenance/<db>`: its schemas with their sums, and its size.
pub fn database(_: &Request, params: &Params) -> Result<Response, Error> {
    let db = params.get("db");
    catalog::database(db)?;
    let rows = query(Some(db), &read_sql::database(access(db)?), &[])?;
    Ok(json_response(body(rows)?))
}

/// `GET /maintenance/<db>/schema/<schema>`: its tables and indexes, and
/// its size.
pub fn schema(_: &Request, params: &Params) -> Result<Response, Error> {
    let (db, schema) = (params.get("db"), params.get("schema"));
    catalog::schema(db, schema)?;
    let rows = query(Some(db), &read_sql::schema(access(db)?), &[schema.into()])?;
    Ok(json_response(body(rows)?))
}

/// `GET /maintenance/<db>/schema/<schema>/table/<table>`: its figures,
/// statistics and indexes.
pub fn table(_: &Request, params: &Params) -> Result<Response, Error> {
    let (db, schema, table) = (params.get("db"), params.get("schema"), params.get("table"));
    catalog::table(db, schema, table)?;
    let rows = query(
        Some(db),
        &read_sql::table(access(db)?),
        &[schema.into(), table.into()],
    )?;
    if rows.is_empty() {
        // Dropped since it was checked.
        return Err(Error::not_found(format!(
            "table \"{table}\" not found in schema \"{schema}\" of database \"{db}\""
        )));
    }
    Ok(json_response(body(rows)?))
}

/// What the role may read in `database`, which decides how the figures
/// are read (statistics, sizes; the same figures either way).
fn access(database: &str) -> Result<Access, Error> {
    let rows = pg::query(Some(database), read_sql::ACCESS, &[])?;
    let row = rows
        .first()
        .ok_or_else(|| Error::internal("no answer from PostgreSQL"))?;
    Ok(Access::new(
        row.get("statistic")?,
        row.get("files")?,
        row.get("version")?,
    ))
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

/// The JSON document a query built: the one value of its one row (column
/// `body`), taken out of the result without a copy.
fn body(rows: pg::Rows) -> Result<String, Error> {
    let value = rows
        .rows
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next());
    match value {
        Some(pg::Value::Json(text) | pg::Value::Text(text)) => Ok(text),
        Some(_) => Err(Error::internal("the answer is not a JSON document")),
        None => Err(Error::internal("no answer from PostgreSQL")),
    }
}

/// A 200 whose body is a JSON document PostgreSQL wrote.
fn json_response(document: String) -> Response {
    Response {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: document.into_bytes(),
    }
}

/// A database that went away between listing and querying it: gone
/// (3D000) or no longer accepting connections (55000).
fn vanished(error: &Error) -> bool {
    matches!(error.sqlstate.as_deref(), Some("3D000" | "55000"))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_body_is_the_one_value() {
        let rows = |values: Vec<pg::Value>| pg::Rows {
            columns: vec!["body".into()],
            rows: vec![values],
        };
        assert_eq!(
            body(rows(vec![pg::Value::Json("{\"a\" : 1}".into())])).ok(),
            Some("{\"a\" : 1}".to_string())
        );
        assert!(body(rows(vec![pg::Value::Int(1)])).is_err());
        assert!(
            body(pg::Rows {
                columns: vec![],
                rows: vec![]
            })
            .is_err()
        );
        let response = json_response("[]".into());
        assert_eq!((response.status, response.body), (200, b"[]".to_vec()));
    }
}
