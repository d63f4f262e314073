//! The plugin's own durable key-value state (survives agent restarts).

use crate::Error;
use crate::bindings::dbagent::api::store as raw;

pub fn get(key: &str) -> Option<Vec<u8>> {
    raw::get(key)
}

pub fn put(key: &str, value: &[u8]) -> Result<(), Error> {
    raw::put(key, value).map_err(Error::internal)
}

pub fn delete(key: &str) -> Result<bool, Error> {
    raw::delete(key).map_err(Error::internal)
}

/// Keys starting with `prefix`, in byte order.
pub fn list(prefix: &str) -> Vec<String> {
    raw::list_keys(prefix)
}

/// A JSON value stored under `key`, if present and readable as `T`.
pub fn get_json<T: serde::de::DeserializeOwned>(key: &str) -> Option<T> {
    get(key).and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

pub fn put_json<T: serde::Serialize>(key: &str, value: &T) -> Result<(), Error> {
    put(key, &serde_json::to_vec(value)?)
}
