//! What the jobs capability and the scheduler share.

use crate::capabilities::postgres;
use crate::store::Store;
use std::sync::Arc;

pub struct Service {
    pub store: Store,
    /// Woken when a job is added, cancelled or finished, so the scheduler
    /// looks at the store again.
    pub changed: tokio::sync::Notify,
    /// Where the statements of running jobs are, to cancel them.
    pub postgres: Arc<postgres::Service>,
}

impl Service {
    pub fn new(store: Store, postgres: Arc<postgres::Service>) -> Service {
        Service {
            store,
            changed: tokio::sync::Notify::new(),
            postgres,
        }
    }
}
