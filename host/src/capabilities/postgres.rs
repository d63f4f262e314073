use super::pg_pool::PooledClient;
use super::pg_values::{Cell, Param};
use crate::runtime::bindings::dbagent::api::postgres::{Host, PgError, RowSet, Value};
use crate::runtime::state::PluginState;
use postgres_types::ToSql;

/// Longest SQL text a plugin may send; guards the server against runaway strings.
const MAX_SQL_BYTES: usize = 1024 * 1024;
/// Most parameters PostgreSQL accepts in one statement.
const MAX_PARAMS: usize = 65_535;

impl Host for PluginState {
    async fn query(
        &mut self,
        database: Option<String>,
        sql: String,
        params: Vec<Value>,
    ) -> Result<RowSet, PgError> {
        check_statement(&sql, &params)?;
        let (client, statement) = self.connection(database.as_deref(), &sql).await?;
        let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = client
            .query(&statement, &refs)
            .await
            .map_err(|e| pg_error(&e))?;
        let columns: Vec<String> = statement
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut values = Vec::with_capacity(columns.len());
            for (i, name) in columns.iter().enumerate() {
                let Cell(value) = row.try_get::<_, Cell>(i).map_err(|e| PgError {
                    sqlstate: "0A000".into(),
                    message: format!("column \"{name}\": {}", source_message(&e)),
                    detail: None,
                    hint: Some("cast the column to a supported type in SQL, e.g. col::text".into()),
                })?;
                values.push(value);
            }
            out.push(values);
        }
        Ok(RowSet { columns, rows: out })
    }

    async fn execute(
        &mut self,
        database: Option<String>,
        sql: String,
        params: Vec<Value>,
    ) -> Result<u64, PgError> {
        check_statement(&sql, &params)?;
        let (client, statement) = self.connection(database.as_deref(), &sql).await?;
        let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        // The extended protocol runs exactly one statement outside any
        // explicit transaction block, so VACUUM and ALTER SYSTEM work here.
        client
            .execute(&statement, &refs)
            .await
            .map_err(|e| pg_error(&e))
    }
}

/// A connection to run one statement on: from the pool for a request, the
/// job's own for a job.
enum Connection<'a> {
    Pooled(PooledClient),
    Job(&'a tokio_postgres::Client),
}

impl std::ops::Deref for Connection<'_> {
    type Target = tokio_postgres::Client;
    fn deref(&self) -> &Self::Target {
        match self {
            Connection::Pooled(client) => client,
            Connection::Job(client) => client,
        }
    }
}

impl PluginState {
    /// A connection to `database` with `sql` prepared on it. A job gets
    /// connections of its own, kept for the run, whose backends are
    /// registered so that cancelling the job cancels its statement.
    async fn connection(
        &mut self,
        database: Option<&str>,
        sql: &str,
    ) -> Result<(Connection<'_>, tokio_postgres::Statement), PgError> {
        let Some(job) = &self.job else {
            let (client, statement) = self.capabilities.postgres.prepare(database, sql).await?;
            return Ok((Connection::Pooled(client), statement));
        };
        let name = self
            .capabilities
            .postgres
            .database_name(database)
            .to_string();
        if !self.job_connections.contains_key(&name) {
            let (client, pid) = self
                .capabilities
                .postgres
                .connect_for_job(&name, job)
                .await?;
            self.capabilities.running_jobs.add(job, pid);
            self.job_connections.insert(name.clone(), client);
        }
        let client = self.job_connections.get(&name).ok_or_else(|| PgError {
            sqlstate: "08003".into(),
            message: "the job's connection is gone".into(),
            detail: None,
            hint: None,
        })?;
        let statement = client.prepare(sql).await.map_err(|e| pg_error(&e))?;
        Ok((Connection::Job(client), statement))
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
    let sqlstate = if e.is_closed() { "08006" } else { "22023" };
    PgError {
        sqlstate: sqlstate.into(),
        message: source_message(e),
        detail: None,
        hint: None,
    }
}
