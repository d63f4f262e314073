//! VACUUM, ANALYZE and REINDEX run as host jobs, off the request path.
//!
//! A POST checks its target in the catalog and its options, then schedules
//! a one-shot job at `datetime` (now when absent) and answers its id. The
//! host keeps the job in its state store, so a scheduled operation survives
//! an agent restart, and a late one runs at start-up. The job runs the
//! statement on a connection of its own, outside any transaction block;
//! cancelling a running job cancels its statement (`pg_cancel_backend`).
//!
//! One operation of a kind per object at a time: a POST whose operation
//! may overlap in time another one of that kind on the same object, still
//! to run or running, is a 409 naming it (see [`overlaps`]); one scheduled
//! far from it (for 2099) does not block it.

use crate::catalog;
use dbagent_sdk::jobs::{self, Job};
use dbagent_sdk::{Error, Params, Request, Response, notifications, pg, quote_ident};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Vacuum,
    Analyze,
    Reindex,
}

impl Kind {
    fn sql_name(self) -> &'static str {
        match self {
            Kind::Vacuum => "VACUUM",
            Kind::Analyze => "ANALYZE",
            Kind::Reindex => "REINDEX",
        }
    }
}

/// An operation as scheduled: the job's payload, and an entry of the
/// `/scheduled` listings (with the job's id and status).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub kind: Kind,
    pub datetime: String,
    pub dbname: String,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub index: Option<String>,
    /// VACUUM's options, e.g. `full,analyze`; none for a plain VACUUM and
    /// for the other kinds.
    pub mode: Option<String>,
}

impl Operation {
    /// What it acts on, for messages: `db`, `db.schema.table`...
    fn target(&self) -> String {
        let mut parts = vec![self.dbname.as_str()];
        parts.extend(self.schema.as_deref());
        parts.extend(self.table.as_deref().or(self.index.as_deref()));
        parts.join(".")
    }

    fn same_object(&self, other: &Operation) -> bool {
        (&self.dbname, &self.schema, &self.table, &self.index)
            == (&other.dbname, &other.schema, &other.table, &other.index)
    }

    /// The statement, with every name quoted.
    fn sql(&self) -> String {
        let relation = |name: &str| {
            format!(
                "{}.{}",
                quote_ident(self.schema.as_deref().unwrap_or_default()),
                quote_ident(name)
            )
        };
        match self.kind {
            Kind::Vacuum => {
                let options = self
                    .mode
                    .as_deref()
                    .map(|m| format!(" ({})", m.to_uppercase().replace(',', ", ")))
                    .unwrap_or_default();
                let table = self.table.as_deref().map(relation);
                format!(
                    "VACUUM{options}{}",
                    table.map(|t| format!(" {t}")).unwrap_or_default()
                )
            }
            Kind::Analyze => match self.table.as_deref() {
                Some(table) => format!("ANALYZE {}", relation(table)),
                None => "ANALYZE".into(),
            },
            Kind::Reindex => match (self.table.as_deref(), self.index.as_deref()) {
                (Some(table), _) => format!("REINDEX TABLE {}", relation(table)),
                (None, Some(index)) => format!("REINDEX INDEX {}", relation(index)),
                (None, None) => format!("REINDEX DATABASE {}", quote_ident(&self.dbname)),
            },
        }
    }
}

/// The body of a POST: both fields optional.
#[derive(Debug, Default, Deserialize)]
struct Options {
    datetime: Option<Value>,
    mode: Option<Value>,
}

fn options(req: &Request) -> Result<Options, Error> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Options::default());
    }
    let value: Value = req.json()?;
    if !value.is_object() {
        return Err(Error::bad_request(
            "Invalid json format: an object is expected",
        ));
    }
    serde_json::from_value(value).map_err(|_| Error::bad_request("Invalid json format"))
}

/// `mode`: any combination of full, freeze and analyze, comma-separated,
/// each at most once; returned in a canonical order.
fn parse_mode(mode: &str) -> Option<String> {
    const WORDS: [&str; 3] = ["full", "freeze", "analyze"];
    let mut seen = [false; 3];
    for word in mode.split(',') {
        let i = WORDS.iter().position(|w| *w == word)?;
        if seen[i] {
            return None;
        }
        seen[i] = true;
    }
    let chosen: Vec<&str> = WORDS
        .iter()
        .zip(seen)
        .filter_map(|(w, s)| s.then_some(*w))
        .collect();
    Some(chosen.join(","))
}

/// `YYYY-MM-DDTHH:MM:SSZ`, a real UTC date and time.
fn valid_datetime(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return false;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (Some(y), Some(m), Some(d), Some(h), Some(min), Some(s)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1970 && (1..=days).contains(&d) && h < 24 && min < 60 && s < 60
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
fn now_utc() -> String {
    format_utc(u64::try_from(now_secs()).unwrap_or(0))
}

/// Now, in seconds since the epoch.
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn format_utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The operation a POST asks for, its target checked in the catalog.
fn requested(kind: Kind, req: &Request, params: &Params) -> Result<Operation, Error> {
    let opts = options(req)?;
    let datetime = match opts.datetime {
        None => now_utc(),
        Some(Value::String(text)) if valid_datetime(&text) => text,
        Some(_) => return Err(Error::malformed("datetime")),
    };
    let mode = match (kind, opts.mode) {
        (_, None) => None,
        (Kind::Vacuum, Some(Value::String(text))) => {
            Some(parse_mode(&text).ok_or_else(|| Error::malformed("mode"))?)
        }
        _ => return Err(Error::malformed("mode")),
    };
    let present = |name: &str| Some(params.get(name).to_string()).filter(|v| !v.is_empty());
    let (dbname, schema, table, index) = (
        params.get("db").to_string(),
        present("schema"),
        present("table"),
        present("index"),
    );
    match (&schema, &table, &index) {
        (Some(s), Some(t), _) => catalog::table(&dbname, s, t)?,
        (Some(s), None, Some(i)) => catalog::index(&dbname, s, i)?,
        _ => catalog::database(&dbname)?,
    }
    Ok(Operation {
        kind,
        datetime,
        dbname,
        schema,
        table,
        index,
        mode,
    })
}

/// This plugin's operations with their job's id and status, newest first.
fn operations() -> Vec<(Job, Operation)> {
    jobs::list()
        .into_iter()
        .filter_map(|job| {
            let op = serde_json::from_str::<Operation>(&job.payload).ok()?;
            Some((job, op))
        })
        .collect()
}

/// The longest an operation may run, in seconds: the plugin's
/// `job_timeout_secs` (plugin.toml), after which the host stops it.
const MAX_RUN_SECS: i64 = 86_400;

/// Seconds since the epoch of a valid `YYYY-MM-DDTHH:MM:SSZ`.
fn epoch_secs(datetime: &str) -> Option<i64> {
    let num = |range: std::ops::Range<usize>| datetime.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, min, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + min * 60 + s)
}

/// Whether a new operation due at `new_at` may overlap in time `existing`
/// (of the same kind and object, whose job is `status`), `now` being the
/// current time; all in seconds since the epoch.
///
/// An operation starts at its datetime, or now when that is past, and may
/// run up to [`MAX_RUN_SECS`]: two operations whose starts are closer than
/// that may run at once. So an immediate VACUUM conflicts with one running,
/// due now or due within a day, not with one scheduled for 2099; two
/// schedules a week apart do not conflict. Ended ones never do.
pub fn overlaps(new_at: i64, existing_at: i64, status: &str, now: i64) -> bool {
    let new_start = new_at.max(now);
    let existing_start = match status {
        "doing" => existing_at.min(now),
        "todo" => existing_at.max(now),
        _ => return false,
    };
    (new_start - existing_start).abs() < MAX_RUN_SECS
}

/// Job names are bounded (128 characters): the kind, a nanosecond stamp
/// that makes the name unique, a digest of the whole target so that two
/// long targets never share a name, and the target's start for the log.
/// What the job does is in its payload, never read back from its name.
fn job_name(kind: Kind, target: &str, stamp: u128) -> String {
    /// The host's bound on a job name, in characters.
    const MAX_CHARS: usize = 128;
    let mut name = format!(
        "{} {stamp} {:016x} ",
        kind.sql_name(),
        fnv1a(target.as_bytes())
    );
    let room = MAX_CHARS.saturating_sub(name.chars().count());
    if target.chars().count() <= room {
        name.push_str(target);
    } else if room > 0 {
        name.extend(target.chars().take(room - 1));
        name.push('…');
    }
    name
}

/// FNV-1a, 64 bits: a digest of a target for a job name, not a security one.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn post(kind: Kind, req: &Request, params: &Params) -> Result<Response, Error> {
    let op = requested(kind, req, params)?;
    let now = now_secs();
    let new_at = epoch_secs(&op.datetime).unwrap_or(now);
    if let Some((job, _)) = operations().into_iter().find(|(job, other)| {
        other.kind == kind
            && other.same_object(&op)
            && overlaps(
                new_at,
                epoch_secs(&other.datetime).unwrap_or(now),
                &job.status,
                now,
            )
    }) {
        return Err(Error::new(
            409,
            format!(
                "a {} of {} is already {} (id {})",
                kind.sql_name(),
                op.target(),
                if job.status == "doing" {
                    "running"
                } else {
                    "scheduled"
                },
                job.id
            ),
        ));
    }
    let payload = serde_json::to_string(&op)?;
    // Job names are unique per plugin; the payload says what to do.
    let name = job_name(kind, &op.target(), unique_suffix());
    let id = jobs::schedule_at(&name, &op.datetime, &payload)?;
    Ok(Response::ok(&json!({ "id": id })))
}

/// Nanoseconds now: two POSTs never share a job name.
fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn list(kind: Kind, params: &Params, filter_table: bool) -> Result<Response, Error> {
    let wanted = |name: &str| Some(params.get(name)).filter(|v| !v.is_empty());
    let (db, schema) = (wanted("db"), wanted("schema"));
    let table = if filter_table { wanted("table") } else { None };
    let listed: Vec<Value> = operations()
        .into_iter()
        .filter(|(_, op)| {
            op.kind == kind
                && db.is_none_or(|d| op.dbname == d)
                && schema.is_none_or(|s| op.schema.as_deref() == Some(s))
                && table.is_none_or(|t| op.table.as_deref() == Some(t))
        })
        .map(|(job, op)| {
            json!({
                "datetime": op.datetime,
                "dbname": op.dbname,
                "id": job.id,
                "index": op.index,
                "mode": op.mode,
                "schema": op.schema,
                "status": job.status,
                "table": op.table,
            })
        })
        .collect();
    Ok(Response::ok(&listed))
}

fn cancel(kind: Kind, params: &Params) -> Result<Response, Error> {
    let id = params.get("id");
    let found = operations()
        .into_iter()
        .find(|(job, op)| job.id == id && op.kind == kind);
    let Some((job, op)) = found else {
        return Err(Error::not_found(format!(
            "no {} operation with id \"{id}\"",
            kind.sql_name()
        )));
    };
    if !jobs::cancel(&job.id)? {
        return Err(Error::new(
            409,
            format!("{} {id} is already {}", kind.sql_name(), job.status),
        ));
    }
    notifications::notify(&format!(
        "{} of {} canceled (id {id})",
        kind.sql_name(),
        op.target()
    ));
    Ok(Response::ok(&json!({ "response": "ok" })))
}

/// Runs a scheduled operation; its completion or failure is announced.
pub fn run_job(job: &Job) -> Result<(), String> {
    let op: Operation = serde_json::from_str(&job.payload)
        .map_err(|e| format!("job {} has an unreadable payload: {e}", job.id))?;
    let what = format!("{} of {} (id {})", op.kind.sql_name(), op.target(), job.id);
    match pg::execute(Some(&op.dbname), &op.sql(), &[]) {
        Ok(_) => {
            notifications::notify(&format!("{what} done"));
            Ok(())
        }
        Err(e) => {
            let reason = format!("{what} failed: {}", e.message);
            notifications::notify(&reason);
            Err(reason)
        }
    }
}

pub fn init() -> Result<(), String> {
    Ok(())
}

macro_rules! handlers {
    ($($kind:ident: $post:ident, $list:ident, $cancel:ident;)*) => {$(
        pub fn $post(req: &Request, params: &Params) -> Result<Response, Error> {
            post(Kind::$kind, req, params)
        }
        pub fn $list(_: &Request, params: &Params) -> Result<Response, Error> {
            list(Kind::$kind, params, true)
        }
        pub fn $cancel(_: &Request, params: &Params) -> Result<Response, Error> {
            cancel(Kind::$kind, params)
        }
    )*};
}

handlers! {
    Vacuum: post_vacuum, list_vacuum, cancel_vacuum;
    Analyze: post_analyze, list_analyze, cancel_analyze;
    Reindex: post_reindex, list_reindex, cancel_reindex;
}

/// The reference's alias of the schema-level REINDEX listing, which does not
/// filter on the table its path names.
pub fn list_reindex_in_schema(_: &Request, params: &Params) -> Result<Response, Error> {
    list(Kind::Reindex, params, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: Kind, schema: Option<&str>, table: Option<&str>, index: Option<&str>) -> Operation {
        Operation {
            kind,
            datetime: "2026-01-01T00:00:00Z".into(),
            dbname: "my db".into(),
            schema: schema.map(Into::into),
            table: table.map(Into::into),
            index: index.map(Into::into),
            mode: None,
        }
    }

    #[test]
    fn statements_quote_every_name() {
        let mut vacuum = op(Kind::Vacuum, Some("odd \"s\""), Some("t.x"), None);
        assert_eq!(vacuum.sql(), r#"VACUUM "odd ""s"""."t.x""#);
        vacuum.mode = Some("full,analyze".into());
        assert_eq!(vacuum.sql(), r#"VACUUM (FULL, ANALYZE) "odd ""s"""."t.x""#);
        vacuum.table = None;
        vacuum.schema = None;
        assert_eq!(vacuum.sql(), "VACUUM (FULL, ANALYZE)");
        assert_eq!(op(Kind::Analyze, None, None, None).sql(), "ANALYZE");
        assert_eq!(
            op(Kind::Analyze, Some("public"), Some("city"), None).sql(),
            r#"ANALYZE "public"."city""#
        );
        assert_eq!(
            op(Kind::Reindex, Some("public"), None, Some("city_pkey")).sql(),
            r#"REINDEX INDEX "public"."city_pkey""#
        );
        assert_eq!(
            op(Kind::Reindex, Some("public"), Some("city"), None).sql(),
            r#"REINDEX TABLE "public"."city""#
        );
        assert_eq!(
            op(Kind::Reindex, None, None, None).sql(),
            r#"REINDEX DATABASE "my db""#
        );
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("full").as_deref(), Some("full"));
        assert_eq!(parse_mode("analyze,full").as_deref(), Some("full,analyze"));
        assert_eq!(
            parse_mode("freeze,analyze,full").as_deref(),
            Some("full,freeze,analyze")
        );
        for bad in [
            "",
            "full,",
            "FULL",
            "full,full",
            "verbose",
            "full, analyze",
            "full;drop",
        ] {
            assert_eq!(parse_mode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn datetimes() {
        assert!(valid_datetime("2026-11-28T12:00:00Z"));
        assert!(valid_datetime("2024-02-29T23:59:59Z"));
        for bad in [
            "2026-11-28 12:00:00Z",
            "2026-11-28T12:00:00",
            "2026-11-28T12:00:00+01:00",
            "2025-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-1a-28T12:00:00Z",
            "tomorrow",
            "",
        ] {
            assert!(!valid_datetime(bad), "{bad:?}");
        }
    }

    #[test]
    fn epoch_seconds_of_datetimes() {
        for secs in [0, 951_782_400, 1_795_000_000, 4_102_444_800] {
            assert_eq!(epoch_secs(&format_utc(secs)), Some(secs as i64));
        }
        assert_eq!(epoch_secs("2099-01-01T00:00:00Z"), Some(4_070_908_800));
        assert_eq!(epoch_secs("garbage"), None);
    }

    #[test]
    fn only_operations_close_in_time_overlap() {
        let now = 1_800_000_000;
        let far = epoch_secs("2099-01-01T00:00:00Z").unwrap();
        let day = 86_400;
        // Now against one running, or due now (late), or due within a day.
        assert!(overlaps(now, now - 3600, "doing", now));
        assert!(overlaps(now, now - 3600, "todo", now));
        assert!(overlaps(now - 10, now + 30, "todo", now));
        assert!(overlaps(now, now + 3600, "todo", now));
        assert!(!overlaps(now, now + day, "todo", now));
        // Now against one scheduled far ahead, in either order.
        assert!(!overlaps(now, far, "todo", now));
        assert!(!overlaps(far, now, "todo", now));
        assert!(!overlaps(far, now - 5, "doing", now));
        // The same schedule twice; schedules an hour, or a week, apart.
        assert!(overlaps(far, far, "todo", now));
        assert!(overlaps(far + 3600, far, "todo", now));
        assert!(!overlaps(far + 7 * day, far, "todo", now));
        // Ended operations never block.
        for ended in ["done", "failed", "canceled"] {
            assert!(!overlaps(now, now, ended, now));
        }
    }

    #[test]
    fn job_names_are_bounded_and_unique_per_target() {
        let long = format!("db.{}.{}", "s".repeat(63), "t".repeat(63));
        let name = job_name(Kind::Vacuum, &long, u128::from(u64::MAX));
        assert!(name.chars().count() <= 128, "{name}");
        assert!(name.starts_with("VACUUM "), "{name}");
        let mut other = long.clone();
        other.push('x');
        assert_ne!(
            job_name(Kind::Vacuum, &other, 1),
            job_name(Kind::Vacuum, &long, 1)
        );
        let longest = "é".repeat(63 * 3 + 2);
        let name = job_name(Kind::Reindex, &longest, u128::MAX);
        assert!(
            name.chars().count() <= 128,
            "{} {name}",
            name.chars().count()
        );
        assert_eq!(
            job_name(Kind::Analyze, "db.public.city", 7),
            format!("ANALYZE 7 {:016x} db.public.city", fnv1a(b"db.public.city"))
        );
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_795_000_000), "2026-11-18T11:06:40Z");
        assert!(valid_datetime(&now_utc()));
    }
}
