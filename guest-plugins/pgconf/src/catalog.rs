//! Settings as `pg_settings` describes them, and their JSON form.

use dbagent_sdk::Error;
use dbagent_sdk::pg::{self, Row, Value};
use serde_json::{Map, Value as Json, json};

/// Every column the API shows; `setting_raw` is `current_setting()`, the
/// value with its unit as one would write it (`128MB`).
const SELECT: &str = "SELECT name, setting, current_setting(name) AS setting_raw, unit, vartype,
        min_val, max_val, enumvals::text[] AS enumvals, context, category,
        short_desc || ' ' || coalesce(extra_desc, '') AS \"desc\",
        boot_val, reset_val, pending_restart
   FROM pg_settings";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Setting {
    pub name: String,
    pub setting: Option<String>,
    pub setting_raw: Option<String>,
    pub unit: Option<String>,
    pub vartype: String,
    pub min_val: Option<String>,
    pub max_val: Option<String>,
    pub enumvals: Option<Vec<String>>,
    pub context: String,
    pub category: String,
    pub desc: String,
    pub boot_val: Option<String>,
    pub reset_val: Option<String>,
    pub pending_restart: bool,
}

impl Setting {
    fn from_row(row: &Row<'_>) -> Result<Setting, Error> {
        Ok(Setting {
            name: row.get("name")?,
            setting: row.get("setting")?,
            setting_raw: row.get("setting_raw")?,
            unit: row.get("unit")?,
            vartype: row.get("vartype")?,
            min_val: row.get("min_val")?,
            max_val: row.get("max_val")?,
            enumvals: row.get("enumvals")?,
            context: row.get("context")?,
            category: row.get("category")?,
            desc: row.get("desc")?,
            boot_val: row.get("boot_val")?,
            reset_val: row.get("reset_val")?,
            pending_restart: row.get::<Option<bool>>("pending_restart")?.unwrap_or(false),
        })
    }

    /// The reference's 13 keys, in its order. Values of integer and real
    /// settings are numbers, as in temBoard; `enumvals` is PostgreSQL's array
    /// text (`{a,b}`); `pending_restart` is `"t"` or `"f"`.
    pub fn to_json(&self) -> Json {
        let value = |v: &Option<String>| -> Json {
            let Some(text) = v else { return Json::Null };
            let number = match self.vartype.as_str() {
                "integer" => text.parse::<i64>().ok().map(Json::from),
                "real" => text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Json::Number),
                _ => None,
            };
            number.unwrap_or_else(|| Json::String(text.clone()))
        };
        let enumvals = self
            .enumvals
            .as_ref()
            .map(|values| Json::String(format!("{{{}}}", values.join(","))));
        let mut out = Map::new();
        out.insert("context".into(), json!(self.context));
        out.insert("enumvals".into(), enumvals.unwrap_or(Json::Null));
        out.insert("max_val".into(), value(&self.max_val));
        out.insert("vartype".into(), json!(self.vartype));
        out.insert("boot_val".into(), value(&self.boot_val));
        out.insert("reset_val".into(), value(&self.reset_val));
        out.insert("unit".into(), json!(self.unit));
        out.insert("desc".into(), json!(self.desc));
        out.insert("name".into(), json!(self.name));
        out.insert("min_val".into(), value(&self.min_val));
        out.insert("setting".into(), value(&self.setting));
        out.insert("setting_raw".into(), json!(self.setting_raw));
        out.insert(
            "pending_restart".into(),
            json!(if self.pending_restart { "t" } else { "f" }),
        );
        Json::Object(out)
    }
}

/// Which settings to read.
pub enum Filter<'a> {
    All,
    /// Names or descriptions containing this text (case-insensitive).
    Matching(&'a str),
    Category(&'a str),
    /// These names, in any case (`timezone` is `TimeZone`).
    Named(Vec<String>),
    PendingRestart,
}

/// Settings ordered by category then name.
pub fn settings(filter: Filter<'_>) -> Result<Vec<Setting>, Error> {
    let (condition, params): (&str, Vec<Value>) = match filter {
        Filter::All => ("", vec![]),
        Filter::Matching(text) => (
            " WHERE name ILIKE $1 OR short_desc ILIKE $1 OR extra_desc ILIKE $1",
            vec![format!("%{}%", like_escape(text)).into()],
        ),
        Filter::Category(category) => (" WHERE category = $1", vec![category.into()]),
        Filter::Named(names) => (
            " WHERE lower(name) = ANY($1)",
            vec![Value::TextArray(names)],
        ),
        Filter::PendingRestart => (" WHERE pending_restart", vec![]),
    };
    let rows = pg::query(
        None,
        &format!("{SELECT}{condition} ORDER BY category, name"),
        &params,
    )?;
    rows.iter().map(|row| Setting::from_row(&row)).collect()
}

/// `[{"category", "rows": [...]}]`, one entry per category in order.
pub fn by_category(settings: &[Setting]) -> Json {
    let mut groups: Vec<(String, Vec<Json>)> = Vec::new();
    for s in settings {
        match groups.last_mut() {
            Some((category, rows)) if *category == s.category => rows.push(s.to_json()),
            _ => groups.push((s.category.clone(), vec![s.to_json()])),
        }
    }
    Json::Array(
        groups
            .into_iter()
            .map(|(category, rows)| json!({ "category": category, "rows": rows }))
            .collect(),
    )
}

pub fn categories() -> Result<Vec<String>, Error> {
    let rows = pg::query(
        None,
        "SELECT DISTINCT category FROM pg_settings ORDER BY category",
        &[],
    )?;
    rows.iter().map(|row| row.get("category")).collect()
}

/// `text` with LIKE's wildcards and escape character taken literally.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_numeric_settings_only() {
        let shared_buffers = Setting {
            name: "shared_buffers".into(),
            setting: Some("16384".into()),
            setting_raw: Some("128MB".into()),
            unit: Some("8kB".into()),
            vartype: "integer".into(),
            min_val: Some("16".into()),
            max_val: Some("1073741823".into()),
            context: "postmaster".into(),
            boot_val: Some("1024".into()),
            reset_val: Some("16384".into()),
            pending_restart: true,
            ..Setting::default()
        };
        let j = shared_buffers.to_json();
        assert_eq!(j["setting"], json!(16384));
        assert_eq!(j["max_val"], json!(1073741823));
        assert_eq!(j["setting_raw"], json!("128MB"));
        assert_eq!(j["pending_restart"], json!("t"));
        assert_eq!(j.as_object().map(|o| o.len()), Some(13));

        let wal_level = Setting {
            vartype: "enum".into(),
            setting: Some("replica".into()),
            enumvals: Some(vec!["minimal".into(), "replica".into()]),
            ..Setting::default()
        };
        let j = wal_level.to_json();
        assert_eq!(j["setting"], json!("replica"));
        assert_eq!(j["enumvals"], json!("{minimal,replica}"));
        assert_eq!(j["min_val"], Json::Null);
    }

    #[test]
    fn like_wildcards_are_literal() {
        assert_eq!(like_escape(r"50%_a\b"), r"50\%\_a\\b");
    }
}
