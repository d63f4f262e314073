//! temBoard's pgconf API: PostgreSQL settings read from `pg_settings` and
//! changed with `ALTER SYSTEM`.
//!
//! - `GET /pgconf/configuration[?filter=TEXT]`: settings by category;
//! - `GET /pgconf/configuration/categories`;
//! - `GET /pgconf/configuration/category/NAME` (percent-encoded, `+` for a
//!   space as temBoard's UI sends it; 404 when unknown);
//! - `GET /pgconf/configuration/status`: settings waiting for a restart;
//! - `POST /pgconf/configuration`: `{"settings": [{"name", "setting"}]}`.
//!
//! A change is all or nothing: every item is checked ([`value`]) before
//! the first is written, and should PostgreSQL still refuse one, those
//! already written are put back ([`apply`]). Only items whose value differs
//! from the current one are written and reported, unless forced; the answer
//! comes once PostgreSQL has applied the reload.

mod apply;
mod catalog;
mod value;

use catalog::Filter;
use dbagent_sdk::{Error, Params, Request, Response, Router, notifications};
use serde_json::{Value as Json, json};

/// Longest `?filter=` accepted.
const MAX_FILTER_CHARS: usize = 128;
/// Most settings one request may change.
const MAX_BATCH: usize = 500;

fn handle(req: &Request) -> Result<Response, Error> {
    Router::new()
        .get("/configuration", configuration)
        .post("/configuration", change)
        .get("/configuration/categories", categories)
        .get("/configuration/category/:name", category)
        .get("/configuration/status", status)
        .handle(req)
}

dbagent_sdk::export_plugin!(handle);

fn configuration(req: &Request, _: &Params) -> Result<Response, Error> {
    let text = req.query_param("filter").unwrap_or_default();
    if text.chars().count() > MAX_FILTER_CHARS || text.chars().any(char::is_control) {
        return Err(Error::malformed("filter"));
    }
    let filter = if text.is_empty() {
        Filter::All
    } else {
        Filter::Matching(&text)
    };
    Ok(Response::ok(&catalog::by_category(&catalog::settings(
        filter,
    )?)))
}

fn categories(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(
        &json!({ "categories": catalog::categories()? }),
    ))
}

/// NAME is percent-decoded by the router; a `+` is then a space, as in the
/// form encoding temBoard's UI uses (`Resource+Usage+%2F+Memory`): no
/// category name holds a `+`. A NUL cannot be in a category: 404.
fn category(_: &Request, params: &Params) -> Result<Response, Error> {
    let name = params.get("name").replace('+', " ");
    if name.contains('\0') {
        return Err(Error::not_found(format!(
            "category \"{}\" not found",
            name.replace('\0', "\\0")
        )));
    }
    let name = name.as_str();
    let settings = catalog::settings(Filter::Category(name))?;
    if settings.is_empty() {
        return Err(Error::not_found(format!("category \"{name}\" not found")));
    }
    Ok(Response::ok(&catalog::by_category(&settings)))
}

fn status(_: &Request, _: &Params) -> Result<Response, Error> {
    let pending = catalog::settings(Filter::PendingRestart)?;
    let changes: Vec<Json> = pending.iter().map(catalog::Setting::to_json).collect();
    Ok(Response::ok(&json!({
        "restart_pending": !changes.is_empty(),
        "restart_changes": changes,
    })))
}

/// One item of a change request, as sent.
struct Requested {
    name: String,
    setting: String,
    /// Write it even when it holds the current value.
    force: bool,
}

/// temBoard's `"force": "true"` (a JSON `true` too); absent is false.
fn force_flag(value: Option<&Json>) -> Result<bool, Error> {
    match value {
        None | Some(Json::Null) | Some(Json::Bool(false)) => Ok(false),
        Some(Json::Bool(true)) => Ok(true),
        Some(Json::String(text)) if text.eq_ignore_ascii_case("true") => Ok(true),
        Some(Json::String(text)) if text.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(Error::malformed("force")),
    }
}

/// The items of `{"settings": [{"name", "setting"}, ...]}`: invalid JSON is
/// 400; a body of another shape is 406 naming what is wrong. `force` may be
/// given for the whole body or per item (temBoard's UI sends it per item).
fn requested(req: &Request) -> Result<Vec<Requested>, Error> {
    let body: Json = req.json()?;
    let items = body
        .get("settings")
        .and_then(Json::as_array)
        .filter(|items| !items.is_empty())
        .ok_or_else(|| Error::malformed("settings"))?;
    if items.len() > MAX_BATCH {
        return Err(Error::not_acceptable(format!(
            "at most {MAX_BATCH} settings can be changed at once"
        )));
    }
    let force_all = force_flag(body.get("force"))?;
    let mut out: Vec<Requested> = Vec::with_capacity(items.len());
    for item in items {
        let name = item
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| Error::not_acceptable("setting item malformed: no \"name\""))?;
        // A number or a boolean is taken as its text, as a client may send 100 for "100".
        let setting = match item.get("setting") {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Number(n)) => n.to_string(),
            Some(Json::Bool(b)) => if *b { "on" } else { "off" }.to_string(),
            _ => {
                return Err(Error::not_acceptable(format!(
                    "setting item malformed: \"{name}\" has no \"setting\" string"
                )));
            }
        };
        let force = force_all || force_flag(item.get("force"))?;
        // No setting has another character (extensions' are `ext.name`);
        // such a name never reaches PostgreSQL, which refuses a NUL as a
        // server error.
        let is_setting_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
        if name.is_empty() || !name.chars().all(is_setting_char) {
            return Err(Error::not_acceptable(format!("{name:?}: unknown setting")));
        }
        let name = name.to_ascii_lowercase();
        if out.iter().any(|r| r.name == name) {
            return Err(Error::not_acceptable(format!(
                "{name}: listed more than once"
            )));
        }
        out.push(Requested {
            name,
            setting,
            force,
        });
    }
    Ok(out)
}

fn change(req: &Request, _: &Params) -> Result<Response, Error> {
    let requested = requested(req)?;
    let names = requested.iter().map(|r| r.name.clone()).collect();
    let current = catalog::settings(Filter::Named(names))?;

    // Every item is checked, changed or not, before anything is written.
    let mut checked = Vec::with_capacity(requested.len());
    for item in &requested {
        let setting = current
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(&item.name))
            .ok_or_else(|| Error::not_acceptable(format!("{}: unknown setting", item.name)))?;
        let change = value::check(setting, &item.setting).map_err(|why| {
            Error::not_acceptable(format!("{}: invalid setting: {why}", item.name))
        })?;
        let same = value::same_as_current(setting, &change);
        checked.push((item, apply::Planned { setting, change }, same));
    }
    // A reset changes nothing when postgresql.auto.conf does not hold the
    // setting; when the agent may not read it, the reset is written.
    let resets: Vec<String> = checked
        .iter()
        .filter(|(item, p, _)| !item.force && p.change == value::Change::Reset)
        .map(|(_, p, _)| p.setting.name.clone())
        .collect();
    let in_auto_conf = if resets.is_empty() {
        None
    } else {
        apply::auto_conf(&resets)
    };
    let planned: Vec<(apply::Planned<'_>, bool)> = checked
        .into_iter()
        .filter(|(item, p, same)| {
            if item.force {
                return true;
            }
            match (&p.change, &in_auto_conf) {
                (value::Change::Reset, Some(files)) => files
                    .iter()
                    .any(|(name, value)| *name == p.setting.name && value.is_some()),
                (value::Change::Reset, None) => true,
                _ => !same,
            }
        })
        .map(|(_, p, same)| (p, same))
        .collect();
    if planned.is_empty() {
        return Ok(Response::ok(&json!({ "settings": [] })));
    }
    let (planned, same): (Vec<apply::Planned<'_>>, Vec<bool>) = planned.into_iter().unzip();
    apply::precheck(&planned)?;
    apply::write_all(&planned)?;

    let mut results = Vec::with_capacity(planned.len());
    for (p, same) in planned.iter().zip(same) {
        let name = &p.setting.name;
        let previous = p.setting.setting_raw.clone().unwrap_or_default();
        let shown_previous = value::shown_safely(name, &previous);
        let (shown, message) = match &p.change {
            value::Change::Reset => (
                Json::Null,
                format!("Setting '{name}' reset: '{shown_previous}' -> default"),
            ),
            value::Change::Set { shown, .. } => (
                json!(shown),
                format!(
                    "Setting '{name}' changed: '{shown_previous}' -> '{}'",
                    value::shown_safely(name, shown)
                ),
            ),
        };
        notifications::notify(&message);
        results.push(json!({
            "name": name,
            "setting": shown,
            "previous_setting": previous,
            // Written but equal to the running value (forced): nothing to restart for.
            "restart": !same && matches!(p.setting.context.as_str(), "postmaster" | "internal"),
        }));
    }
    apply::reload_and_wait()?;
    notifications::notify("PostgreSQL reload");
    Ok(Response::ok(&json!({ "settings": results })))
}
