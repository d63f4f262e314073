//! Writing checked changes with `ALTER SYSTEM`, all or nothing.
//!
//! `ALTER SYSTEM` takes no parameters and cannot run in a transaction
//! block, so each change is its own statement with the name quoted as an
//! identifier and every value as a string literal. Should PostgreSQL refuse
//! one (a check the plugin cannot make, or a privilege), the changes
//! already written are put back to what `postgresql.auto.conf` held.

use crate::catalog::Setting;
use crate::value::{self, Change};
use dbagent_sdk::pg::{self, Value};
use dbagent_sdk::{Error, log, quote_ident, quote_literal};

pub struct Planned<'a> {
    pub setting: &'a Setting,
    pub change: Change,
}

/// SQLSTATEs of a value PostgreSQL refuses: the client's mistake, a 406
/// (22021: a NUL or a byte sequence the server's encoding cannot hold).
fn refuses_value(sqlstate: Option<&str>) -> bool {
    matches!(
        sqlstate,
        Some("22023" | "22P02" | "42704" | "22003" | "22021")
    )
}

/// A setting `ALTER SYSTEM` may not change at all (`data_directory`,
/// `config_file`...: 55P02 "parameter cannot be changed"): also the
/// client's mistake, a 406 with PostgreSQL's message.
fn refuses_setting(sqlstate: Option<&str>) -> bool {
    sqlstate == Some("55P02")
}

fn naming(name: &str, e: Error) -> Error {
    if refuses_value(e.sqlstate.as_deref()) {
        Error {
            sqlstate: e.sqlstate,
            ..Error::not_acceptable(format!("{name}: invalid setting: {}", e.message))
        }
    } else if refuses_setting(e.sqlstate.as_deref()) {
        Error {
            sqlstate: e.sqlstate,
            ..Error::not_acceptable(format!("{name}: {}", e.message))
        }
    } else {
        Error {
            message: format!("{name}: {}", e.message),
            ..e
        }
    }
}

/// Runs PostgreSQL's own checks (such as a time zone's name) on values of
/// settings a session may set, without changing anything: `set_config` is
/// local to the statement's own transaction.
pub fn precheck(planned: &[Planned<'_>]) -> Result<(), Error> {
    for p in planned {
        let Change::Set { shown, .. } = &p.change else {
            continue;
        };
        if !matches!(p.setting.context.as_str(), "user" | "superuser") {
            continue;
        }
        let checked = pg::query(
            None,
            "SELECT set_config($1, $2, true)",
            &[p.setting.name.as_str().into(), shown.as_str().into()],
        );
        match checked {
            Err(e) if refuses_value(e.sqlstate.as_deref()) => {
                return Err(naming(&p.setting.name, e));
            }
            // Not allowed to try (e.g. a superuser setting): ALTER SYSTEM decides.
            _ => {}
        }
    }
    Ok(())
}

/// `"a"."b"` for a setting name such as `pg_stat_statements.max`.
fn setting_ident(name: &str) -> String {
    name.split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

fn statement(name: &str, literals: Option<&[String]>) -> String {
    match literals {
        None => format!("ALTER SYSTEM RESET {}", setting_ident(name)),
        Some(values) => format!(
            "ALTER SYSTEM SET {} TO {}",
            setting_ident(name),
            values
                .iter()
                .map(|v| quote_literal(v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What `postgresql.auto.conf` holds now for these settings (None: not in
/// it), or None when the agent may not read it.
pub fn auto_conf(names: &[String]) -> Option<Vec<(String, Option<String>)>> {
    let rows = pg::query(
        None,
        "SELECT n AS name,
                (SELECT f.setting FROM pg_file_settings f
                  WHERE f.name = n AND f.sourcefile ~ '/postgresql\\.auto\\.conf$'
                  ORDER BY f.seqno DESC LIMIT 1) AS setting
           FROM unnest($1::text[]) AS n",
        &[Value::TextArray(names.to_vec())],
    );
    match rows {
        Ok(rows) => rows
            .iter()
            .map(|row| Ok((row.get("name")?, row.get("setting")?)))
            .collect::<Result<_, Error>>()
            .ok(),
        Err(e) => {
            log::warn(&format!(
                "cannot read postgresql.auto.conf through pg_file_settings, a failed change cannot be undone: {}",
                e.message
            ));
            None
        }
    }
}

pub fn write_all(planned: &[Planned<'_>]) -> Result<(), Error> {
    let names: Vec<String> = planned.iter().map(|p| p.setting.name.clone()).collect();
    let before = if planned.len() > 1 {
        auto_conf(&names)
    } else {
        None
    };
    for (done, p) in planned.iter().enumerate() {
        let literals = match &p.change {
            Change::Reset => None,
            Change::Set { literals, .. } => Some(literals.as_slice()),
        };
        if let Err(e) = pg::execute(None, &statement(&p.setting.name, literals), &[]) {
            undo(&planned[..done], before.as_deref());
            return Err(naming(&p.setting.name, e));
        }
    }
    Ok(())
}

fn undo(written: &[Planned<'_>], before: Option<&[(String, Option<String>)]>) {
    let Some(before) = before else { return };
    for p in written {
        let name = &p.setting.name;
        let previous = before
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref());
        // The reasons quote values: none for a setting that may hold a secret.
        let why = |reason: &str| {
            if value::may_hold_secret(name) {
                "(reason withheld: the value may hold a secret)".to_string()
            } else {
                reason.to_string()
            }
        };
        let sql = match previous.map(|raw| value::literals(name, raw)) {
            None => statement(name, None),
            Some(Ok(literals)) => statement(name, Some(&literals)),
            Some(Err(reason)) => {
                log::error(&format!("cannot put back {name}: {}", why(&reason)));
                continue;
            }
        };
        if let Err(e) = pg::execute(None, &sql, &[]) {
            log::error(&format!("cannot put back {name}: {}", why(&e.message)));
        }
    }
}

/// How long [`reload_and_wait`] waits for the reload to be applied.
const RELOAD_WAIT_SECS: f64 = 2.0;

/// Asks PostgreSQL to reload its configuration and waits, at most
/// [`RELOAD_WAIT_SECS`], until it has: `pg_reload_conf()` only signals the
/// postmaster, which re-reads the files and then signals every backend, so
/// a client reading `pg_settings` right after could still see the old
/// state. A backend re-reads the files before running its next statement
/// once signalled, and `pg_conf_load_time()` then tells when it did: the
/// reload is applied once a statement sees a load time after the moment
/// just before the signal. Answers whether it was seen in time.
pub fn reload_and_wait() -> Result<bool, Error> {
    let before = pg::query(
        None,
        "SELECT extract(epoch FROM clock_timestamp())::float8 AS t0",
        &[],
    )?;
    let t0: f64 = before
        .first()
        .ok_or_else(|| Error::internal("no answer from PostgreSQL"))?
        .get("t0")?;
    pg::query(None, "SELECT pg_reload_conf()", &[])?;
    loop {
        let rows = pg::query(
            None,
            "SELECT extract(epoch FROM pg_conf_load_time())::float8 >= $1 AS applied,
                    extract(epoch FROM clock_timestamp())::float8 - $1 AS waited",
            &[t0.into()],
        )?;
        let row = rows
            .first()
            .ok_or_else(|| Error::internal("no answer from PostgreSQL"))?;
        if row.get::<bool>("applied")? {
            return Ok(true);
        }
        if row.get::<f64>("waited")? > RELOAD_WAIT_SECS {
            log::warn(&format!(
                "PostgreSQL had not applied the configuration reload after {RELOAD_WAIT_SECS} s; answering anyway"
            ));
            return Ok(false);
        }
        pg::execute(None, "SELECT pg_sleep(0.01)", &[])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_quote_names_and_values() {
        assert_eq!(
            statement("work_mem", Some(&["64MB".to_string()])),
            r#"ALTER SYSTEM SET "work_mem" TO '64MB'"#
        );
        assert_eq!(
            statement("pg_stat_statements.max", None),
            r#"ALTER SYSTEM RESET "pg_stat_statements"."max""#
        );
        assert_eq!(
            statement(
                "search_path",
                Some(&["$user".to_string(), "it's".to_string()])
            ),
            r#"ALTER SYSTEM SET "search_path" TO '$user', 'it''s'"#
        );
    }
}
