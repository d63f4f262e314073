//! The `operations` interface: plugins record long work on a managed
//! database and move it through its statuses; clients follow it at
//! `/api/operations/:id`. Kept in the state store, so an operation outlives
//! a restart, and one an agent crash interrupted ends as `error`.

use crate::store::{OperationRow, Store};
use crate::wit::operations::{Host, Operation, Status};
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "operations";

/// Most operations one listing returns.
const LIST_LIMIT: usize = 1000;
/// Longest error message kept.
const MAX_ERROR_CHARS: usize = 8 * 1024;

/// The reason an operation interrupted by the agent's stop ends with.
pub const INTERRUPTED: &str = "interrupted: the agent stopped while the operation was under way";

/// A new operation or database id: 24 lower-case hex characters.
pub fn new_id() -> Result<String, String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot draw an id: {e}"))?;
    Ok(hex::encode(bytes))
}

/// Now, as the reference writes times: `2019-02-05T15:38:14.343+01:00`.
pub fn now() -> String {
    chrono::Local::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

pub struct State {
    store: Store,
}

impl State {
    pub fn new(store: &Store) -> State {
        State {
            store: store.clone(),
        }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::operations::add_to_linker::<T, HasSelf<State>>(linker, get)
}

pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Pending => "pending",
        Status::Running => "running",
        Status::Finished => "finished",
        Status::Error => "error",
        Status::UserError => "user-error",
        Status::Cancelling => "cancelling",
        Status::Cancelled => "cancelled",
    }
}

fn status_of(name: &str) -> Status {
    match name {
        "running" => Status::Running,
        "finished" => Status::Finished,
        "error" => Status::Error,
        "user-error" => Status::UserError,
        "cancelling" => Status::Cancelling,
        "cancelled" => Status::Cancelled,
        _ => Status::Pending,
    }
}

pub fn operation_of(row: OperationRow) -> Operation {
    Operation {
        id: row.id,
        database_id: row.database_id,
        kind: row.kind,
        status: status_of(&row.status),
        created_at: row.created_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
        error: row.error,
    }
}

async fn blocking<T: Send + 'static>(
    store: &Store,
    op: impl FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || op(&store)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            tracing::error!("state store: {e:#}");
            Err(format!("state store: {e}"))
        }
        Err(e) => Err(format!("state store: {e}")),
    }
}

impl Host for State {
    async fn create(&mut self, database_id: String, kind: String) -> Result<Operation, String> {
        if database_id.is_empty() || database_id.len() > 128 {
            return Err("a database id has 1 to 128 characters".into());
        }
        if kind.is_empty() || kind.len() > 64 {
            return Err("an operation kind has 1 to 64 characters".into());
        }
        let id = new_id()?;
        let row = blocking(&self.store, move |s| {
            s.create_operation(&id, &database_id, &kind, &now())
        })
        .await?;
        Ok(operation_of(row))
    }

    async fn update(
        &mut self,
        id: String,
        status: Status,
        error: Option<String>,
    ) -> Result<Operation, String> {
        let error = error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect::<String>());
        let lookup = id.clone();
        let (changed, row) = blocking(&self.store, move |s| {
            let changed = s.update_operation(&id, status_name(status), error.as_deref(), &now())?;
            Ok((changed, s.operation(&id)?))
        })
        .await?;
        match (changed, row) {
            (_, None) => Err(format!("no operation {lookup}")),
            (false, Some(row)) => Err(format!(
                "operation {lookup} has ended ({}); it does not change any more",
                row.status
            )),
            (true, Some(row)) => Ok(operation_of(row)),
        }
    }

    async fn get(&mut self, id: String) -> Option<Operation> {
        blocking(&self.store, move |s| s.operation(&id))
            .await
            .ok()
            .flatten()
            .map(operation_of)
    }

    async fn of_database(&mut self, database_id: String) -> Vec<Operation> {
        blocking(&self.store, move |s| {
            s.operations_of(&database_id, LIST_LIMIT)
        })
        .await
        .map(|rows| rows.into_iter().map(operation_of).collect())
        .unwrap_or_default()
    }
}
