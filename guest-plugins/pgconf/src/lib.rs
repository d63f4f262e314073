//! temBoard's pgconf API: PostgreSQL settings read from `pg_settings` and
//! changed with `ALTER SYSTEM`.
//!
//! - `GET /pgconf/configuration[?filter=TEXT]`: settings by category;
//! - `GET /pgconf/configuration/categories`;
//! - `GET /pgconf/configuration/category/NAME` (percent-encoded; 404 when unknown);
//! - `GET /pgconf/configuration/status`: settings waiting for a restart;
//! - `POST /pgconf/configuration`: `{"settings": [{"name", "setting"}]}`.
//!
//! A change is all or nothing: every item is checked ([`value`]) before
//! the first is written, and should PostgreSQL still refuse one, those
//! already written are put back ([`apply`]).

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

fn category(_: &Request, params: &Params) -> Result<Response, Error> {
    let name = params.get("name");
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
}

/// The items of `{"settings": [{"name", "setting"}, ...]}`: invalid JSON is
/// 400; a body of another shape is 406 naming what is wrong.
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
        let name = name.to_ascii_lowercase();
        if out.iter().any(|r| r.name == name) {
            return Err(Error::not_acceptable(format!(
                "{name}: listed more than once"
            )));
        }
        out.push(Requested { name, setting });
    }
    Ok(out)
}

fn change(req: &Request, _: &Params) -> Result<Response, Error> {
    let requested = requested(req)?;
    let names = requested.iter().map(|r| r.name.clone()).collect();
    let current = catalog::settings(Filter::Named(names))?;

    let mut planned = Vec::with_capacity(requested.len());
    for item in &requested {
        let setting = current
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(&item.name))
            .ok_or_else(|| Error::not_acceptable(format!("{}: unknown setting", item.name)))?;
        let change = value::check(setting, &item.setting).map_err(|why| {
            Error::not_acceptable(format!("{}: invalid setting: {why}", item.name))
        })?;
        planned.push(apply::Planned { setting, change });
    }
    apply::precheck(&planned)?;
    apply::write_all(&planned)?;

    let mut results = Vec::with_capacity(planned.len());
    for p in &planned {
        let previous = p.setting.setting_raw.clone().unwrap_or_default();
        let (shown, message) = match &p.change {
            value::Change::Reset => (
                Json::Null,
                format!(
                    "Setting '{}' reset: '{previous}' -> default",
                    p.setting.name
                ),
            ),
            value::Change::Set { shown, .. } => (
                json!(shown),
                format!(
                    "Setting '{}' changed: '{previous}' -> '{shown}'",
                    p.setting.name
                ),
            ),
        };
        notifications::notify(&message);
        results.push(json!({
            "name": p.setting.name,
            "setting": shown,
            "previous_setting": previous,
            "restart": matches!(p.setting.context.as_str(), "postmaster" | "internal"),
        }));
    }
    apply::reload()?;
    notifications::notify("PostgreSQL reload");
    Ok(Response::ok(&json!({ "settings": results })))
}
