//! The `system` interface: the machine's and the instance's processes'
//! figures, sampled by the host in the background so that asking never waits.

pub mod counters;
pub mod probes;
pub mod sampler;

use crate::wit::system::{Host, HostCounters, HostInfo, ProcessSample};
use sampler::Sampler;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "system";

/// More pids than any instance has backends; bounds the work of one call.
const MAX_PIDS: usize = 100_000;

pub struct State {
    sampler: Arc<Sampler>,
}

impl State {
    pub fn new(sampler: &Arc<Sampler>) -> State {
        State {
            sampler: Arc::clone(sampler),
        }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::system::add_to_linker::<T, HasSelf<State>>(linker, get)
}

impl Host for State {
    async fn process_stats(&mut self, pids: Vec<i32>) -> Vec<ProcessSample> {
        pids.into_iter()
            .take(MAX_PIDS)
            .filter_map(|pid| self.sampler.process(pid))
            .collect()
    }

    async fn get_host_info(&mut self) -> HostInfo {
        self.sampler.host()
    }

    async fn get_host_counters(&mut self) -> HostCounters {
        tokio::task::spawn_blocking(counters::read)
            .await
            .unwrap_or_else(|_| counters::read())
    }
}
