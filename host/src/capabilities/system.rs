use crate::runtime::bindings::dbagent::api::system::{Host, HostInfo, ProcessSample};
use crate::runtime::state::PluginState;

/// More pids than any instance has backends; bounds the work of one call.
const MAX_PIDS: usize = 100_000;

impl Host for PluginState {
    async fn process_stats(&mut self, pids: Vec<i32>) -> Vec<ProcessSample> {
        let sampler = &self.capabilities.system;
        pids.into_iter()
            .take(MAX_PIDS)
            .filter_map(|pid| sampler.process(pid))
            .collect()
    }

    async fn get_host_info(&mut self) -> HostInfo {
        self.capabilities.system.host()
    }
}
