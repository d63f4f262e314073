//! Operating-system probes of the machine the agent runs on.

pub use crate::bindings::dbagent::api::system::{
    HostInfo, ProcessSample, get_host_info as host_info, process_stats,
};
