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

/// SQLSTATEs of a value PostgreSQL refuses: the client's mistake, a 406.
fn refuses_value(sqlstate: Option<&str>) -> bool {
    matches!(sqlstate, Some("22023" | "22P02" | "42704" | "22003"))
}

fn naming(name: &str, e: Error) -> Error {
    if refuses_value(e.sqlstate.as_deref()) {
        Error::not_acceptable(format!("{name}: invalid setting: {}", e.message))
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
fn auto_conf(names: &[String]) -> Option<Vec<(String, Option<String>)>> {
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
        let sql = match previous.map(|raw| value::literals(name, raw)) {
            None => statement(name, None),
            Some(Ok(literals)) => statement(name, Some(&literals)),
            Some(Err(why)) => {
                log::error(&format!("cannot put back {name}: {why}"));
                continue;
            }
        };
        if let Err(e) = pg::execute(None, &sql, &[]) {
            log::error(&format!("cannot put back {name}: {}", e.message));
        }
    }
}

pub fn reload() -> Result<(), Error> {
    pg::query(None, "SELECT pg_reload_conf()", &[])?;
    Ok(())
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
