//! Operating-system probes of the machine the agent runs on.

pub use crate::bindings::dbagent::api::system::{
    Filesystem, HostCounters, HostInfo, ProcessSample, get_host_counters as host_counters,
    get_host_info as host_info, process_stats,
};
