//! The `settings` interface: a plugin reads its own `[plugin.NAME.settings]`.
//! Every plugin has it; it is no grant.

use crate::wit::settings::Host;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "settings";

pub struct State {
    /// The plugin's settings as a JSON object.
    settings: Arc<str>,
}

impl State {
    pub fn new(settings: Arc<str>) -> State {
        State { settings }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::settings::add_to_linker::<T, HasSelf<State>>(linker, get)
}

impl Host for State {
    async fn get_settings(&mut self) -> String {
        self.settings.to_string()
    }
}
