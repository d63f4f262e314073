//! Checking a requested value against what `pg_settings` says of the
//! setting, before anything is written: type, unit, bounds and enum values.
//!
//! The syntax accepted is PostgreSQL's own for configuration values: a
//! number may carry a unit (`128MB`, `5min`, `1.5s`) whose kind (memory or
//! time) must fit the setting's; the number is converted to the setting's
//! unit and rounded, as the server does, and then compared with `min_val`
//! and `max_val`. Booleans take PostgreSQL's spellings; enum values match
//! case-insensitively and are written in the server's spelling. Hexadecimal
//! and octal integers, which PostgreSQL also reads, are refused here.

use crate::catalog::Setting;

/// Longest string value accepted; settings are short (a command, a list).
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

/// What is to be written for one setting.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `ALTER SYSTEM RESET`.
    Reset,
    /// `ALTER SYSTEM SET name TO` these literals (several for a list setting).
    Set {
        shown: String,
        literals: Vec<String>,
    },
}

/// Settings that PostgreSQL parses as lists of quoted items
/// (`GUC_LIST_QUOTE`): one string literal would become a single item, so
/// each item is passed as a literal of its own.
const LIST_SETTINGS: &[&str] = &[
    "search_path",
    "temp_tablespaces",
    "shared_preload_libraries",
    "session_preload_libraries",
    "local_preload_libraries",
];

/// Checks `value` for `setting`; the error says what is wrong (the caller
/// names the setting).
pub fn check(setting: &Setting, value: &str) -> Result<Change, String> {
    if setting.context == "internal" {
        return Err("it is fixed at build or initdb time and cannot be changed".into());
    }
    if value.is_empty() {
        return Ok(Change::Reset);
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!("a value is at most {MAX_VALUE_BYTES} bytes"));
    }
    if value.contains('\0') {
        return Err("a value cannot contain a NUL character".into());
    }
    let shown = match setting.vartype.as_str() {
        "bool" => boolean(value)?.to_string(),
        "integer" => {
            let n = number(value, setting.unit.as_deref())?;
            let rounded = n.round();
            if !(i32::MIN as f64..=i32::MAX as f64).contains(&rounded) {
                return Err(format!("{value} is out of range"));
            }
            bounds(setting, rounded, value)?;
            value.trim().to_string()
        }
        "real" => {
            let n = number(value, setting.unit.as_deref())?;
            bounds(setting, n, value)?;
            value.trim().to_string()
        }
        "enum" => enum_value(setting, value)?,
        _ => value.to_string(),
    };
    let literals = literals(&setting.name, &shown)?;
    Ok(Change::Set { shown, literals })
}

/// The literals `ALTER SYSTEM SET name TO ...` takes for `value`.
pub fn literals(name: &str, value: &str) -> Result<Vec<String>, String> {
    if LIST_SETTINGS.contains(&name) {
        list_items(value)
    } else {
        Ok(vec![value.to_string()])
    }
}

/// Whether writing `change` would leave the setting's current value (its
/// `setting` in `pg_settings`) as it is, comparing normalised values: an
/// integer or real in the setting's unit (`4MB` is `4096` kB), a boolean
/// as on/off, an enum case-insensitively, a list item by item. A real is
/// compared to the 6 significant digits `pg_settings` shows. A reset is
/// never judged here (its effect depends on the configuration files), nor
/// a setting whose current value the agent may not read.
pub fn same_as_current(setting: &Setting, change: &Change) -> bool {
    let (Change::Set { shown, .. }, Some(current)) = (change, setting.setting.as_deref()) else {
        return false;
    };
    match setting.vartype.as_str() {
        "bool" => boolean(shown).ok() == boolean(current).ok(),
        "integer" => {
            let wanted = number(shown, setting.unit.as_deref()).map(f64::round);
            matches!((wanted, current.trim().parse::<f64>()), (Ok(a), Ok(b)) if a == b)
        }
        "real" => {
            let wanted = number(shown, setting.unit.as_deref());
            matches!((wanted, current.trim().parse::<f64>()),
                (Ok(a), Ok(b)) if (a - b).abs() <= 5e-6 * a.abs().max(b.abs()))
        }
        "enum" => shown.eq_ignore_ascii_case(current),
        _ if LIST_SETTINGS.contains(&setting.name.as_str()) => {
            match (list_items(shown), list_items(current)) {
                (Ok(a), Ok(b)) => a == b,
                // An empty list shows as "".
                (Err(_), Err(_)) => shown.trim() == current.trim(),
                _ => false,
            }
        }
        _ => shown == current,
    }
}

/// Names of settings whose value may hold a secret: a password inside a
/// connection string (`primary_conninfo`), a command that may carry one
/// (`ssl_passphrase_command`, `archive_command`, `restore_command`, ...), or
/// an extension's `*.password`, `*_secret`, `*.api_key`... Their values are
/// never written to notifications or to the log.
pub fn may_hold_secret(name: &str) -> bool {
    const FRAGMENTS: [&str; 5] = ["password", "passphrase", "secret", "conninfo", "token"];
    let name = name.to_ascii_lowercase();
    FRAGMENTS.iter().any(|f| name.contains(f))
        || name.ends_with("_command")
        || name
            .split(['.', '_'])
            .any(|word| word == "key" || word == "dsn")
}

/// `value` as notifications and log lines may show it.
pub fn shown_safely<'a>(name: &str, value: &'a str) -> &'a str {
    if may_hold_secret(name) {
        "********"
    } else {
        value
    }
}

fn boolean(value: &str) -> Result<&'static str, String> {
    let lower = value.trim().to_ascii_lowercase();
    match lower.as_str() {
        "on" | "true" | "yes" | "1" | "t" | "tr" | "tru" | "y" | "ye" => Ok("on"),
        "off" | "false" | "no" | "0" | "of" | "f" | "fa" | "fal" | "fals" | "n" => Ok("off"),
        _ => Err(format!("{value:?} is not a boolean (on or off)")),
    }
}

fn enum_value(setting: &Setting, value: &str) -> Result<String, String> {
    let allowed = setting.enumvals.as_deref().unwrap_or_default();
    let wanted = value.trim();
    allowed
        .iter()
        .find(|v| v.eq_ignore_ascii_case(wanted))
        .cloned()
        .ok_or_else(|| format!("{value:?} is not one of {}", allowed.join(", ")))
}

fn bounds(setting: &Setting, n: f64, value: &str) -> Result<(), String> {
    let parse = |bound: &Option<String>| bound.as_deref().and_then(|b| b.parse::<f64>().ok());
    let unit = setting
        .unit
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    if let Some(min) = parse(&setting.min_val)
        && n < min
    {
        return Err(format!("{value} is below the minimum of {min}{unit}"));
    }
    if let Some(max) = parse(&setting.max_val)
        && n > max
    {
        return Err(format!("{value} is above the maximum of {max}{unit}"));
    }
    Ok(())
}

/// What a unit measures, and its size in the kind's smallest unit (bytes,
/// microseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Memory(f64),
    Time(f64),
}

/// A unit as written in a value: PostgreSQL's spellings, case-sensitive.
fn unit_named(name: &str) -> Option<Unit> {
    const KB: f64 = 1024.0;
    Some(match name {
        "B" => Unit::Memory(1.0),
        "kB" => Unit::Memory(KB),
        "MB" => Unit::Memory(KB * KB),
        "GB" => Unit::Memory(KB * KB * KB),
        "TB" => Unit::Memory(KB * KB * KB * KB),
        "us" => Unit::Time(1.0),
        "ms" => Unit::Time(1e3),
        "s" => Unit::Time(1e6),
        "min" => Unit::Time(60e6),
        "h" => Unit::Time(3600e6),
        "d" => Unit::Time(86400e6),
        _ => return None,
    })
}

/// The unit of a setting as `pg_settings` shows it: `8kB`, `16MB`, `ms`...
fn setting_unit(unit: &str) -> Option<Unit> {
    let digits = unit.len() - unit.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let factor: f64 = if digits == 0 {
        1.0
    } else {
        unit[..digits].parse().ok()?
    };
    match unit_named(&unit[digits..])? {
        Unit::Memory(size) => Some(Unit::Memory(size * factor)),
        Unit::Time(size) => Some(Unit::Time(size * factor)),
    }
}

/// The value of `text` in the setting's unit.
fn number(text: &str, setting_unit_name: Option<&str>) -> Result<f64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(trimmed.len());
    // "1e" followed by a unit letter would be split inside the unit; the
    // units never start with e/E, so only a trailing exponent is at risk.
    let (digits, unit) = trimmed.split_at(split);
    let n: f64 = digits
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| format!("{text:?} is not a number"))?;
    let unit = unit.trim();
    if unit.is_empty() {
        return Ok(n);
    }
    let given = unit_named(unit).ok_or_else(|| {
        format!("{unit:?} is not a unit (memory: B, kB, MB, GB, TB; time: us, ms, s, min, h, d)")
    })?;
    let target = setting_unit_name
        .and_then(setting_unit)
        .ok_or_else(|| format!("{text:?}: this setting takes no unit"))?;
    match (given, target) {
        (Unit::Memory(from), Unit::Memory(to)) | (Unit::Time(from), Unit::Time(to)) => {
            Ok(n * from / to)
        }
        (Unit::Memory(_), Unit::Time(_)) => Err(format!(
            "{text:?}: this setting is a time, not a memory size"
        )),
        (Unit::Time(_), Unit::Memory(_)) => Err(format!(
            "{text:?}: this setting is a memory size, not a time"
        )),
    }
}

/// The items of a list value: comma-separated, each trimmed, a double-quoted
/// item taken as written (`""` is a quote inside it).
fn list_items(value: &str) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        item.push('"');
                    }
                    Some('"') => break,
                    Some(c) => item.push(c),
                    None => return Err(format!("{value:?}: unterminated quoted item")),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err(format!("{value:?}: text after a quoted item"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                item.push(c);
                chars.next();
            }
            item = item.trim_end().to_string();
        }
        if item.is_empty() {
            return Err(format!("{value:?}: empty item in the list"));
        }
        items.push(item);
        match chars.next() {
            Some(',') => continue,
            _ => break,
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(name: &str, vartype: &str, unit: Option<&str>, min: &str, max: &str) -> Setting {
        Setting {
            name: name.into(),
            vartype: vartype.into(),
            unit: unit.map(Into::into),
            min_val: (!min.is_empty()).then(|| min.into()),
            max_val: (!max.is_empty()).then(|| max.into()),
            context: "sighup".into(),
            ..Setting::default()
        }
    }

    fn shown(change: Result<Change, String>) -> String {
        match change {
            Ok(Change::Set { shown, .. }) => shown,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn memory_settings_convert_units_before_the_bounds() {
        let shared_buffers = setting("shared_buffers", "integer", Some("8kB"), "16", "1073741823");
        assert_eq!(shown(check(&shared_buffers, "128MB")), "128MB");
        assert_eq!(shown(check(&shared_buffers, "16384")), "16384");
        // 100kB is 12.5 pages of 8kB: below the minimum of 16.
        assert!(
            check(&shared_buffers, "100kB")
                .unwrap_err()
                .contains("minimum")
        );
        assert!(
            check(&shared_buffers, "9000TB")
                .unwrap_err()
                .contains("range")
        );
        assert!(
            check(&shared_buffers, "5min")
                .unwrap_err()
                .contains("memory size")
        );
        assert!(
            check(&shared_buffers, "12 parsecs")
                .unwrap_err()
                .contains("not a unit")
        );
        assert!(
            check(&shared_buffers, "12mb")
                .unwrap_err()
                .contains("not a unit")
        );
        assert!(
            check(&shared_buffers, "lots")
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn time_settings() {
        let lmds = setting(
            "log_min_duration_statement",
            "integer",
            Some("ms"),
            "-1",
            "2147483647",
        );
        assert_eq!(shown(check(&lmds, "250")), "250");
        assert_eq!(shown(check(&lmds, "2s")), "2s");
        assert_eq!(shown(check(&lmds, "1.5 min")), "1.5 min");
        assert!(check(&lmds, "-2").unwrap_err().contains("minimum"));
        assert!(check(&lmds, "1GB").unwrap_err().contains("time"));
        let cost_delay = setting("vacuum_cost_delay", "real", Some("ms"), "0", "100");
        assert_eq!(shown(check(&cost_delay, "0.5")), "0.5");
        assert!(check(&cost_delay, "1s").unwrap_err().contains("maximum"));
    }

    #[test]
    fn unitless_settings_refuse_units() {
        let conns = setting("max_connections", "integer", None, "1", "262143");
        assert!(check(&conns, "100MB").unwrap_err().contains("no unit"));
        assert_eq!(shown(check(&conns, "100")), "100");
        assert!(check(&conns, "0").unwrap_err().contains("minimum"));
    }

    #[test]
    fn booleans_and_enums() {
        let b = setting("autovacuum", "bool", None, "", "");
        assert_eq!(shown(check(&b, "TRUE")), "on");
        assert_eq!(shown(check(&b, "off")), "off");
        assert!(check(&b, "maybe").unwrap_err().contains("boolean"));
        let mut e = setting("wal_level", "enum", None, "", "");
        e.enumvals = Some(vec!["minimal".into(), "replica".into(), "logical".into()]);
        assert_eq!(shown(check(&e, "Logical")), "logical");
        assert!(check(&e, "archive").unwrap_err().contains("replica"));
    }

    #[test]
    fn reset_internal_and_strings() {
        let s = setting("application_name", "string", None, "", "");
        assert_eq!(check(&s, ""), Ok(Change::Reset));
        assert_eq!(
            check(&s, "it's"),
            Ok(Change::Set {
                shown: "it's".into(),
                literals: vec!["it's".into()]
            })
        );
        assert!(check(&s, "a\0b").is_err());
        assert!(check(&s, &"x".repeat(MAX_VALUE_BYTES + 1)).is_err());
        let mut internal = s.clone();
        internal.context = "internal".into();
        assert!(check(&internal, "x").is_err());
        assert!(check(&internal, "").is_err());
    }

    #[test]
    fn list_settings_pass_one_literal_per_item() {
        let spl = setting("shared_preload_libraries", "string", None, "", "");
        let literals = |v: &str| match check(&spl, v) {
            Ok(Change::Set { literals, .. }) => literals,
            other => panic!("{other:?}"),
        };
        assert_eq!(literals("pg_stat_statements"), ["pg_stat_statements"]);
        assert_eq!(
            literals(" pg_stat_statements , auto_explain"),
            ["pg_stat_statements", "auto_explain"]
        );
        assert_eq!(literals(r#""$user", public"#), ["$user", "public"]);
        assert_eq!(literals(r#""a,""b", c"#), [r#"a,"b"#, "c"]);
        assert!(check(&spl, "a,,b").is_err());
        assert!(check(&spl, r#""open"#).is_err());
    }

    fn with_current(mut s: Setting, current: &str) -> Setting {
        s.setting = Some(current.into());
        s
    }

    fn same(s: &Setting, value: &str) -> bool {
        same_as_current(s, &check(s, value).unwrap())
    }

    #[test]
    fn unchanged_values_are_recognised_in_any_spelling() {
        let shared_buffers = with_current(
            setting("shared_buffers", "integer", Some("8kB"), "16", "1073741823"),
            "16384",
        );
        assert!(same(&shared_buffers, "128MB"));
        assert!(same(&shared_buffers, "16384"));
        assert!(same(&shared_buffers, " 131072kB"));
        assert!(!same(&shared_buffers, "256MB"));
        let timeout = with_current(
            setting(
                "statement_timeout",
                "integer",
                Some("ms"),
                "0",
                "2147483647",
            ),
            "0",
        );
        assert!(same(&timeout, "0"));
        assert!(!same(&timeout, "1s"));
        let naptime = with_current(
            setting("autovacuum_naptime", "integer", Some("s"), "1", "2147483"),
            "60",
        );
        assert!(same(&naptime, "1min"));
        assert!(same(&naptime, "60000ms"));
        let b = with_current(setting("autovacuum", "bool", None, "", ""), "on");
        assert!(same(&b, "on") && same(&b, "TRUE") && same(&b, "1"));
        assert!(!same(&b, "off"));
        let mut e = with_current(setting("wal_level", "enum", None, "", ""), "replica");
        e.enumvals = Some(vec!["minimal".into(), "replica".into(), "logical".into()]);
        assert!(same(&e, "Replica"));
        assert!(!same(&e, "logical"));
        let real = with_current(
            setting("checkpoint_completion_target", "real", None, "0", "1"),
            "0.9",
        );
        assert!(same(&real, "0.9") && same(&real, "0.90"));
        assert!(!same(&real, "0.8"));
        // pg_settings shows reals with 6 significant digits.
        let tiny = with_current(setting("x", "real", None, "0", "1"), "0.123457");
        assert!(same(&tiny, "0.123456789"));
        let path = with_current(
            setting("search_path", "string", None, "", ""),
            "\"$user\", public",
        );
        assert!(same(&path, "\"$user\",public"));
        assert!(!same(&path, "public"));
        let s = with_current(setting("application_name", "string", None, "", ""), "psql");
        assert!(same(&s, "psql"));
        assert!(!same(&s, "Psql"));
        // A reset, or a value the agent may not read, is never "the same".
        assert!(!same_as_current(&s, &Change::Reset));
        let hidden = setting("application_name", "string", None, "", "");
        assert!(!same(&hidden, "psql"));
    }

    #[test]
    fn secrets_are_recognised_by_name() {
        for secret in [
            "primary_conninfo",
            "ssl_passphrase_command",
            "archive_command",
            "restore_command",
            "archive_cleanup_command",
            "recovery_end_command",
            "myext.password",
            "myext.admin_password",
            "myext.api_key",
            "myext.client_secret",
            "myext.token",
            "myext.dsn",
            // Not a secret, but "anything with password in its name".
            "password_encryption",
        ] {
            assert!(may_hold_secret(secret), "{secret}");
            assert_eq!(shown_safely(secret, "x"), "********");
        }
        for plain in [
            "work_mem",
            "shared_buffers",
            "log_line_prefix",
            "primary_slot_name",
            "tcp_keepalives_idle",
            "ssl_cert_file",
        ] {
            assert!(!may_hold_secret(plain), "{plain}");
        }
        assert_eq!(shown_safely("work_mem", "4MB"), "4MB");
    }

    #[test]
    fn setting_units() {
        assert_eq!(setting_unit("8kB"), Some(Unit::Memory(8192.0)));
        assert_eq!(
            setting_unit("16MB"),
            Some(Unit::Memory(16.0 * 1024.0 * 1024.0))
        );
        assert_eq!(setting_unit("min"), Some(Unit::Time(60e6)));
        assert_eq!(setting_unit("furlongs"), None);
    }
}
