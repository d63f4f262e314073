//! The `metrics` interface: the agent's own figures ([`crate::telemetry`])
//! and the PostgreSQL pool's use, in Prometheus' text format.

use super::postgres;
use crate::wit::metrics::Host;
use std::fmt::Write as _;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "metrics";

pub struct State {
    postgres: Arc<postgres::Service>,
}

impl State {
    pub fn new(postgres: &Arc<postgres::Service>) -> State {
        State {
            postgres: Arc::clone(postgres),
        }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::metrics::add_to_linker::<T, HasSelf<State>>(linker, get)
}

impl Host for State {
    async fn agent_metrics(&mut self) -> String {
        let mut out = crate::telemetry::get().render();
        out.push_str("# HELP dbagent_pg_pool_connections Connections of the agent's pools to the managed instance, by use, database and state.\n# TYPE dbagent_pg_pool_connections gauge\n");
        let mut waiting = String::new();
        for (usage, database, size, idle, max, waiters) in self.postgres.managed().usage() {
            let database = database.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "dbagent_pg_pool_connections{{use=\"{usage}\",database=\"{database}\",state=\"busy\"}} {}",
                size.saturating_sub(idle)
            );
            let _ = writeln!(
                out,
                "dbagent_pg_pool_connections{{use=\"{usage}\",database=\"{database}\",state=\"idle\"}} {idle}"
            );
            let _ = writeln!(
                out,
                "dbagent_pg_pool_connections{{use=\"{usage}\",database=\"{database}\",state=\"bound\"}} {max}"
            );
            let _ = writeln!(
                waiting,
                "dbagent_pg_pool_waiting{{use=\"{usage}\",database=\"{database}\"}} {waiters}"
            );
        }
        out.push_str("# HELP dbagent_pg_pool_waiting Callers waiting for a pool connection.\n# TYPE dbagent_pg_pool_waiting gauge\n");
        out.push_str(&waiting);
        out
    }
}
