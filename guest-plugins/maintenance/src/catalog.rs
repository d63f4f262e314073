//! Names from the path, checked against the catalog before any other use.
//!
//! Each check answers 404 naming what is missing, so a client learns which
//! part of its path is wrong; names found are then safe to quote into SQL.

use dbagent_sdk::Error;
use dbagent_sdk::pg;

/// A database that exists and accepts connections.
pub fn database(db: &str) -> Result<(), Error> {
    let found = pg::query(
        None,
        "SELECT 1 FROM pg_database WHERE datname = $1 AND datallowconn AND NOT datistemplate",
        &[db.into()],
    )?;
    if found.is_empty() {
        return Err(Error::not_found(format!("database \"{db}\" not found")));
    }
    Ok(())
}

/// A schema of `db` (which must exist).
pub fn schema(db: &str, schema: &str) -> Result<(), Error> {
    database(db)?;
    let found = pg::query(
        Some(db),
        "SELECT 1 FROM pg_namespace WHERE nspname = $1",
        &[schema.into()],
    )?;
    if found.is_empty() {
        return Err(Error::not_found(format!(
            "schema \"{schema}\" not found in database \"{db}\""
        )));
    }
    Ok(())
}

/// A table (ordinary, partitioned or materialized view) of `schema`.
pub fn table(db: &str, schema_name: &str, table: &str) -> Result<(), Error> {
    relation(db, schema_name, table, "table", &["r", "p", "m"])
}

/// An index (ordinary or partitioned) of `schema`.
pub fn index(db: &str, schema_name: &str, index: &str) -> Result<(), Error> {
    relation(db, schema_name, index, "index", &["i", "I"])
}

fn relation(
    db: &str,
    schema_name: &str,
    name: &str,
    what: &str,
    kinds: &[&str],
) -> Result<(), Error> {
    schema(db, schema_name)?;
    let found = pg::query(
        Some(db),
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind::text = ANY($3)",
        &[
            schema_name.into(),
            name.into(),
            pg::Value::TextArray(kinds.iter().map(|k| k.to_string()).collect()),
        ],
    )?;
    if found.is_empty() {
        return Err(Error::not_found(format!(
            "{what} \"{name}\" not found in schema \"{schema_name}\" of database \"{db}\""
        )));
    }
    Ok(())
}
