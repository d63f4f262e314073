//! Every capability the host offers, in one list that the manifest checks,
//! the loader's grant checks and the linker all read. Adding a capability
//! is one module under `capabilities/`, one WIT interface and one entry here.

use super::state::{InstanceState, TypeOnly};
use crate::capabilities::{
    barman, control, databases, influxdb, kv, log, metrics, mysql, notifications, operations,
    postgres, redis, settings, system,
};
use crate::jobs;
use wasmtime::component::{HasSelf, Linker};

/// One capability: its grant name, who may have it, how it is linked.
pub struct Capability {
    /// The name in manifests, grants and the interface: `dbagent:api/<name>`.
    pub name: &'static str,
    /// The one bundled plugin allowed to have it, whatever the grants.
    pub reserved_to: Option<&'static str>,
    pub link: fn(&mut Linker<InstanceState>) -> wasmtime::Result<()>,
}

pub const CAPABILITIES: &[Capability] = &[
    Capability {
        name: postgres::NAME,
        reserved_to: None,
        link: |l| postgres::add_to_linker(l, |s| &mut s.postgres),
    },
    Capability {
        name: system::NAME,
        reserved_to: None,
        link: |l| system::add_to_linker(l, |s| &mut s.system),
    },
    Capability {
        name: log::NAME,
        reserved_to: None,
        link: |l| log::add_to_linker(l, |s| &mut s.log),
    },
    Capability {
        name: notifications::NAME,
        reserved_to: None,
        link: |l| notifications::add_to_linker(l, |s| &mut s.notifications),
    },
    Capability {
        name: kv::NAME,
        reserved_to: None,
        link: |l| kv::add_to_linker(l, |s| &mut s.kv),
    },
    Capability {
        name: jobs::capability::NAME,
        reserved_to: None,
        link: |l| jobs::capability::add_to_linker(l, |s| &mut s.jobs),
    },
    Capability {
        name: control::NAME,
        reserved_to: Some(control::RESERVED_TO),
        link: |l| control::add_to_linker(l, |s| &mut s.control),
    },
    Capability {
        name: barman::NAME,
        reserved_to: Some(barman::RESERVED_TO),
        link: |l| barman::add_to_linker(l, |s| &mut s.barman),
    },
    Capability {
        name: metrics::NAME,
        reserved_to: None,
        link: |l| metrics::add_to_linker(l, |s| &mut s.metrics),
    },
    Capability {
        name: operations::NAME,
        reserved_to: None,
        link: |l| operations::add_to_linker(l, |s| &mut s.operations),
    },
    Capability {
        name: databases::NAME,
        reserved_to: Some(databases::RESERVED_TO),
        link: |l| databases::add_to_linker(l, |s| &mut s.databases),
    },
    Capability {
        name: mysql::NAME,
        reserved_to: None,
        link: |l| mysql::add_to_linker(l, |s| &mut s.mysql),
    },
    Capability {
        name: redis::NAME,
        reserved_to: None,
        link: |l| redis::add_to_linker(l, |s| &mut s.redis),
    },
    Capability {
        name: influxdb::NAME,
        reserved_to: None,
        link: |l| influxdb::add_to_linker(l, |s| &mut s.influxdb),
    },
];

/// Interfaces of the package every plugin may import: they carry types
/// only, or the plugin's own settings.
pub const UNGRANTED: &[&str] = &["http-types", "job-types", "action-types", settings::NAME];

pub fn find(name: &str) -> Option<&'static Capability> {
    CAPABILITIES.iter().find(|c| c.name == name)
}

/// Links what every plugin gets: WASI (sandboxed by the store's context),
/// the type-only interfaces and its settings.
pub fn link_ungranted(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    crate::wit::http_types::add_to_linker::<_, HasSelf<TypeOnly>>(linker, |s| &mut s.types)?;
    crate::wit::job_types::add_to_linker::<_, HasSelf<TypeOnly>>(linker, |s| &mut s.types)?;
    crate::wit::action_types::add_to_linker::<_, HasSelf<TypeOnly>>(linker, |s| &mut s.types)?;
    settings::add_to_linker(linker, |s| &mut s.settings)
}
