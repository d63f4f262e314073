//! The `store` interface: each plugin's durable key-value state, scoped by
//! the plugin's name so that one plugin never sees another's keys.

use super::call::Call;
use crate::store::Store;
use crate::wit::store::Host;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "store";

const MAX_KEY_BYTES: usize = 1024;
const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;

/// Runs a store operation off the async workers (SQLite blocks on fsync),
/// scoped to `state`'s plugin. Takes what it needs from `state` before
/// awaiting, since the instance's state is not `Sync`.
async fn with_store<T: Send + 'static>(
    (store, plugin): (Store, String),
    op: impl FnOnce(&Store, &str) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, String> {
    let outcome = tokio::task::spawn_blocking(move || {
        let result = op(&store, &plugin);
        if let Err(e) = &result {
            tracing::error!(plugin, "state store: {e:#}");
        }
        result
    })
    .await;
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("state store: {e}")),
        Err(e) => Err(format!("state store: {e}")),
    }
}

pub struct State {
    store: Store,
    plugin: Arc<str>,
}

impl State {
    pub fn new(store: &Store, call: &Call) -> State {
        State {
            store: store.clone(),
            plugin: Arc::clone(&call.plugin),
        }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::store::add_to_linker::<T, HasSelf<State>>(linker, get)
}

fn scope(state: &State) -> (Store, String) {
    (state.store.clone(), state.plugin.to_string())
}

fn check_key(key: &str) -> Result<(), String> {
    if key.len() > MAX_KEY_BYTES {
        return Err(format!("key longer than {MAX_KEY_BYTES} bytes"));
    }
    Ok(())
}

impl Host for State {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        check_key(&key).ok()?;
        with_store(scope(self), move |store, plugin| store.kv_get(plugin, &key))
            .await
            .ok()
            .flatten()
    }

    async fn put(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!("value larger than {MAX_VALUE_BYTES} bytes"));
        }
        with_store(scope(self), move |store, plugin| {
            store.kv_put(plugin, &key, &value)
        })
        .await
    }

    async fn delete(&mut self, key: String) -> Result<bool, String> {
        check_key(&key)?;
        with_store(scope(self), move |store, plugin| {
            store.kv_delete(plugin, &key)
        })
        .await
    }

    async fn list_keys(&mut self, prefix: String) -> Vec<String> {
        if check_key(&prefix).is_err() {
            return Vec::new();
        }
        with_store(scope(self), move |store, plugin| {
            store.kv_list(plugin, &prefix)
        })
        .await
        .unwrap_or_default()
    }
}
