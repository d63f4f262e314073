//! The servers of one engine's `[databases]` entries, by resource id, each
//! built once at start-up by that engine's capability (its pool or client,
//! with the credentials the host holds).

use crate::config::databases::ManagedDatabase;
use std::collections::HashMap;
use std::sync::Arc;

pub struct Targets<T> {
    by_id: HashMap<String, Arc<T>>,
}

impl<T> Targets<T> {
    /// A target for each entry of `engine` that `build` can make one for.
    pub fn new(
        databases: &[ManagedDatabase],
        engine: &str,
        build: impl Fn(&ManagedDatabase) -> Option<T>,
    ) -> Targets<T> {
        Targets {
            by_id: databases
                .iter()
                .filter(|db| db.engine == engine)
                .filter_map(|db| Some((db.resource_id.clone(), Arc::new(build(db)?))))
                .collect(),
        }
    }

    pub fn target(&self, resource_id: &str) -> Option<&Arc<T>> {
        self.by_id.get(resource_id)
    }
}
