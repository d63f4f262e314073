//! The `postgres` interface: typed queries on the managed instance, on a
//! pooled connection with its statements prepared once.

use super::pg_pool::PooledConnection;
use super::pg_values::{Cell, Param};
use crate::runtime::bindings::dbagent::api::postgres::{
    Host, PgError, RowSet, Statement as BatchStatement, Value,
};
use crate::runtime::state::PluginState;
use postgres_types::ToSql;
use tokio_postgres::Statement;

/// Longest SQL text a plugin may send; guards the server against runaway strings.
const MAX_SQL_BYTES: usize = 1024 * 1024;
/// Most parameters PostgreSQL accepts in one statement.
const MAX_PARAMS: usize = 65_535;
/// Most statements in one batch.
const MAX_BATCH: usize = 256;

impl Host for PluginState {
    async fn query(
        &mut self,
        database: Option<String>,
        sql: String,
        params: Vec<Value>,
    ) -> Result<RowSet, PgError> {
        check_statement(&sql, &params)?;
        let mut attempt = 0;
        loop {
            let connection = self.connection(database.as_deref()).await?;
            let outcome = match connection.prepare_cached(&sql).await {
                Ok(statement) => run_query(connection.client(), &statement, &params).await,
                Err(e) => Err(QueryError::Server(e)),
            };
            match outcome {
                Ok(rows) => return Ok(rows),
                Err(QueryError::Decode(e)) => return Err(e),
                Err(QueryError::Server(e)) => {
                    attempt += 1;
                    if attempt > 1 || !self.recover(&sql, &e) {
                        return Err(pg_error(&e));
                    }
                }
            }
        }
    }

    async fn execute(
        &mut self,
        database: Option<String>,
        sql: String,
        params: Vec<Value>,
    ) -> Result<u64, PgError> {
        check_statement(&sql, &params)?;
        let mut attempt = 0;
        loop {
            let connection = self.connection(database.as_deref()).await?;
            let outcome = match connection.prepare_cached(&sql).await {
                Ok(statement) => {
                    let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
                    // The extended protocol runs exactly one statement outside
                    // any explicit transaction block, so VACUUM and ALTER
                    // SYSTEM work here.
                    connection
                        .client()
                        .execute(&statement, &as_sql(&bound))
                        .await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(n) => return Ok(n),
                Err(e) => {
                    attempt += 1;
                    // Only a statement that never reached the server runs again.
                    if attempt > 1 || !(e.is_closed() || is_stale_statement(&e)) {
                        return Err(pg_error(&e));
                    }
                    self.recover(&sql, &e);
                }
            }
        }
    }

    async fn query_batch(
        &mut self,
        database: Option<String>,
        statements: Vec<BatchStatement>,
    ) -> Result<Vec<Result<RowSet, PgError>>, PgError> {
        if statements.len() > MAX_BATCH {
            return Err(PgError {
                sqlstate: "54000".into(),
                message: format!("a batch holds at most {MAX_BATCH} statements"),
                detail: None,
                hint: None,
            });
        }
        for statement in &statements {
            check_statement(&statement.sql, &statement.params)?;
        }
        let connection = self.connection(database.as_deref()).await?;
        // Statements not yet prepared are prepared together, then every
        // query is sent at once: tokio-postgres pipelines requests issued
        // concurrently on one connection, so the batch costs one round trip
        // (two the first time) however many statements it holds.
        let mut prepared = Vec::with_capacity(statements.len());
        for statement in &statements {
            prepared.push(connection.prepare_cached(&statement.sql).await);
        }
        let client = connection.client();
        let runs = statements
            .iter()
            .zip(&prepared)
            .map(|(statement, prepared)| async move {
                match prepared {
                    Ok(prepared) => match run_query(client, prepared, &statement.params).await {
                        Ok(rows) => Ok(rows),
                        Err(QueryError::Server(e)) => Err(pg_error(&e)),
                        Err(QueryError::Decode(e)) => Err(e),
                    },
                    Err(e) => Err(pg_error(e)),
                }
            });
        let results = futures::future::join_all(runs).await;
        for (statement, result) in statements.iter().zip(&results) {
            if let Err(e) = result
                && (e.sqlstate == "0A000" || e.sqlstate == "26000")
            {
                connection.forget(&statement.sql);
            }
        }
        Ok(results)
    }
}

fn as_sql<'a>(bound: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// Why a query gave no rows: the server's error, or a column the host
/// cannot carry (which running it again would not change).
enum QueryError {
    Server(tokio_postgres::Error),
    Decode(PgError),
}

/// Runs a prepared query and turns its rows into WIT values.
async fn run_query(
    client: &tokio_postgres::Client,
    statement: &Statement,
    params: &[Value],
) -> Result<RowSet, QueryError> {
    let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
    let rows = client
        .query(statement, &as_sql(&bound))
        .await
        .map_err(QueryError::Server)?;
    let columns: Vec<String> = statement
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut values = Vec::with_capacity(columns.len());
        for (i, name) in columns.iter().enumerate() {
            let Cell(value) = row.try_get::<_, Cell>(i).map_err(|e| {
                QueryError::Decode(PgError {
                    sqlstate: "0A000".into(),
                    message: format!("column \"{name}\": {}", source_message(&e)),
                    detail: None,
                    hint: Some("cast the column to a supported type in SQL, e.g. col::text".into()),
                })
            })?;
            values.push(value);
        }
        out.push(values);
    }
    Ok(RowSet { columns, rows: out })
}

/// The server replanned a cached statement whose tables changed, or lost it.
fn is_stale_statement(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        let code = db.code().code();
        code == "26000" || (code == "0A000" && db.message().contains("cached plan"))
    })
}

impl PluginState {
    /// The connection this call runs on. A call holds one connection at a
    /// time, kept from one statement to the next while they name the same
    /// database and given back before it waits for another (so that no call
    /// waits while holding one). A job's connection has no statement timeout
    /// and its backend is registered, so that cancelling the job cancels
    /// its statement.
    async fn connection(
        &mut self,
        database: Option<&str>,
    ) -> Result<&mut PooledConnection, PgError> {
        let postgres = &self.capabilities.postgres;
        let name = postgres.database_name(database);
        if self.connection.as_ref().is_some_and(|(db, _)| db != name) {
            self.connection = None;
        }
        if self.connection.is_none() {
            let name = name.to_string();
            let connection = match &self.job {
                None => postgres.get(Some(&name), self.deadline).await?,
                Some(job) => {
                    let connection = postgres
                        .get_for_job(Some(&name), job, self.deadline)
                        .await?;
                    self.capabilities
                        .running_jobs
                        .add(job, connection.backend_pid());
                    connection
                }
            };
            self.connection = Some((name, connection));
        }
        match &mut self.connection {
            Some((_, connection)) => Ok(connection),
            None => Err(PgError {
                sqlstate: "08003".into(),
                message: "the connection is gone".into(),
                detail: None,
                hint: None,
            }),
        }
    }

    /// Makes a failed statement worth one more try: drops a connection the
    /// server closed (a restart), or forgets a statement the server
    /// replanned. False when the failure is the statement's own.
    fn recover(&mut self, sql: &str, e: &tokio_postgres::Error) -> bool {
        if e.is_closed() {
            tracing::debug!("pooled PostgreSQL connection was closed; reconnecting");
            if let Some((_, closed)) = self.connection.take() {
                // Not back to the pool: it is dead.
                drop(deadpool::managed::Object::take(closed));
            }
            return true;
        }
        if is_stale_statement(e) {
            if let Some((_, connection)) = &mut self.connection {
                connection.forget(sql);
            }
            return true;
        }
        false
    }
}

fn check_statement(sql: &str, params: &[Value]) -> Result<(), PgError> {
    let problem = if sql.len() > MAX_SQL_BYTES {
        "statement text exceeds 1 MiB"
    } else if sql.contains('\0') {
        "statement text contains a NUL byte"
    } else if params.len() > MAX_PARAMS {
        "too many parameters"
    } else {
        return Ok(());
    };
    Err(PgError {
        sqlstate: "54000".into(),
        message: problem.into(),
        detail: None,
        hint: None,
    })
}

/// The innermost message of an error chain (tokio-postgres wraps the cause).
fn source_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// A server error keeps its SQLSTATE, message, detail and hint; a closed
/// connection is "08006"; anything else (e.g. a parameter that cannot be
/// encoded) is "22023" with the cause.
pub fn pg_error(e: &tokio_postgres::Error) -> PgError {
    if let Some(db) = e.as_db_error() {
        return PgError {
            sqlstate: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
        };
    }
    if e.is_closed() {
        return PgError {
            sqlstate: "08006".into(),
            message: source_message(e),
            detail: None,
            hint: None,
        };
    }
    PgError {
        sqlstate: "22023".into(),
        message: source_message(e),
        detail: None,
        hint: None,
    }
}
