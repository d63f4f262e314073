//! A plugin's OpenAPI fragment: the description of its own routes it
//! ships beside its manifest, checked when the plugin is loaded and merged
//! into `GET /openapi.json` by `crate::http::openapi`.

use super::manifest::Manifest;
use anyhow::{Result, bail};
use serde_json::{Map, Value};

/// Path item keys that are operations.
pub const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "options", "head", "trace",
];
/// Path item keys that are not operations.
const PATH_ITEM_FIELDS: &[&str] = &["summary", "description", "parameters", "servers"];

/// A plugin's own description of its routes: OpenAPI `paths` and
/// `components.schemas`, checked to stay under its route prefixes.
#[derive(Debug)]
pub struct Fragment {
    pub paths: Map<String, Value>,
    pub schemas: Map<String, Value>,
}

impl Fragment {
    /// `{"paths": {...}, "components": {"schemas": {...}}}`; a path outside
    /// the plugin's prefixes, or an unknown key, is an error naming it.
    pub fn parse(text: &str, manifest: &Manifest) -> Result<Fragment> {
        let Value::Object(mut top) = serde_json::from_str::<Value>(text)? else {
            bail!("it is not a JSON object");
        };
        let Some(Value::Object(paths)) = top.remove("paths") else {
            bail!("it has no \"paths\" object");
        };
        let schemas = match top.remove("components") {
            None => Map::new(),
            Some(Value::Object(mut components)) => {
                let schemas = match components.remove("schemas") {
                    None => Map::new(),
                    Some(Value::Object(schemas)) => schemas,
                    Some(_) => bail!("\"components.schemas\" is not an object"),
                };
                if let Some(key) = components.keys().next() {
                    bail!("\"components.{key}\" is not supported: only schemas");
                }
                schemas
            }
            Some(_) => bail!("\"components\" is not an object"),
        };
        if let Some(key) = top.keys().next() {
            bail!("unknown key \"{key}\": a fragment holds \"paths\" and \"components\"");
        }
        for (path, item) in &paths {
            let under_a_prefix = manifest.routes.iter().any(|prefix| {
                path == prefix
                    || path
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            });
            if !under_a_prefix {
                bail!(
                    "path \"{path}\" is not under the plugin's routes {:?}",
                    manifest.routes
                );
            }
            let Value::Object(item) = item else {
                bail!("path \"{path}\" is not an object");
            };
            for (key, operation) in item {
                if METHODS.contains(&key.as_str()) {
                    if !operation.is_object() {
                        bail!("\"{key} {path}\" is not an object");
                    }
                } else if !PATH_ITEM_FIELDS.contains(&key.as_str()) {
                    bail!("path \"{path}\" has unknown key \"{key}\"");
                }
            }
        }
        Ok(Fragment { paths, schemas })
    }
}
