//! Names from the path, checked against the catalog before any other use.
//!
//! Each check answers 404 naming what is missing, so a client learns which
//! part of its path is wrong; names found are then safe to quote into SQL.
//! A name no object can have (a NUL in it, longer than an identifier) is
//! that 404 without asking PostgreSQL, which would refuse the parameter
//! itself (SQLSTATE 22021, 42622).

use dbagent_sdk::Error;
use dbagent_sdk::pg;

/// The longest identifier PostgreSQL keeps, in bytes (NAMEDATALEN - 1 of a
/// standard build).
const MAX_IDENTIFIER_BYTES: usize = 63;

/// Whether some object could be called `name`.
fn possible(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_IDENTIFIER_BYTES && !name.contains('\0')
}

/// `name` as messages show it: a NUL as `\0`.
fn printable(name: &str) -> String {
    name.replace('\0', "\\0")
}

/// A database that exists and accepts connections.
pub fn database(db: &str) -> Result<(), Error> {
    if !possible(db) {
        return Err(not_found_database(db));
    }
    let found = pg::query(
        None,
        "SELECT 1 FROM pg_database WHERE datname = $1 AND datallowconn AND NOT datistemplate",
        &[db.into()],
    )?;
    if found.is_empty() {
        return Err(not_found_database(db));
    }
    Ok(())
}

fn not_found_database(db: &str) -> Error {
    Error::not_found(format!("database \"{}\" not found", printable(db)))
}

/// A schema of `db` (which must exist).
pub fn schema(db: &str, schema: &str) -> Result<(), Error> {
    database(db)?;
    let found = possible(schema)
        && !pg::query(
            Some(db),
            "SELECT 1 FROM pg_namespace WHERE nspname = $1",
            &[schema.into()],
        )?
        .is_empty();
    if !found {
        return Err(Error::not_found(format!(
            "schema \"{}\" not found in database \"{db}\"",
            printable(schema)
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
    let found = possible(name)
        && !pg::query(
            Some(db),
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind::text = ANY($3)",
            &[
                schema_name.into(),
                name.into(),
                pg::Value::TextArray(kinds.iter().map(|k| k.to_string()).collect()),
            ],
        )?
        .is_empty();
    if !found {
        return Err(Error::not_found(format!(
            "{what} \"{}\" not found in schema \"{schema_name}\" of database \"{db}\"",
            printable(name)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_names() {
        assert!(possible("city"));
        assert!(possible(&"é".repeat(31)));
        assert!(possible(&"x".repeat(63)));
        assert!(!possible(&"x".repeat(64)));
        // 32 two-byte characters are 64 bytes.
        assert!(!possible(&"é".repeat(32)));
        assert!(!possible("a\0b"));
        assert!(!possible(""));
        assert_eq!(printable("a\0b"), "a\\0b");
    }
}
