//! The `log` interface: plugins' lines in the agent's log, tagged with the
//! plugin's name.

use super::call::Call;
use crate::wit::log::{Host, Level};
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "log";

/// Longest message kept from one log call; a plugin cannot flood the log with one line.
const MAX_MESSAGE: usize = 8 * 1024;

pub struct State {
    plugin: Arc<str>,
}

impl State {
    pub fn new(call: &Call) -> State {
        State {
            plugin: Arc::clone(&call.plugin),
        }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::log::add_to_linker::<T, HasSelf<State>>(linker, get)
}

impl Host for State {
    async fn log(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let cut = message.floor_char_boundary(MAX_MESSAGE);
            message.truncate(cut);
            message.push('…');
        }
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}
