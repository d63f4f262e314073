//! The operator's settings for this plugin (`[plugin.NAME.settings]`).

use serde::de::DeserializeOwned;

/// The settings as a JSON object.
pub fn raw() -> serde_json::Value {
    serde_json::from_str(&crate::bindings::dbagent::api::settings::get_settings())
        .unwrap_or_else(|_| serde_json::Value::Object(Default::default()))
}

/// One setting read as `T`, if present and of that type.
pub fn get<T: DeserializeOwned>(name: &str) -> Option<T> {
    raw()
        .get(name)
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
}
