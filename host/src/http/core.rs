//! The routes the host serves itself (temBoard's core API and operator
//! endpoints); everything else belongs to a plugin.

use super::response::{HttpResponse, error, internal_error, json_response};
use crate::app::App;
use crate::auth::Identity;
use hyper::StatusCode;
use serde_json::{Value, json};

/// `GET /profile`: who the request was authenticated as.
pub fn profile(identity: &Identity) -> HttpResponse {
    json_response(StatusCode::OK, &json!({ "username": identity.user_name() }))
}

/// Most notifications one `GET /notifications` returns.
const NOTIFICATIONS_PAGE: usize = 1000;

/// `GET /notifications`: the feed, newest first.
pub async fn notifications(app: &App) -> HttpResponse {
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || store.notifications(NOTIFICATIONS_PAGE)).await {
        Ok(Ok(list)) => json_response(StatusCode::OK, &json!(list)),
        Ok(Err(e)) => internal_error(&format!("notifications: {e:#}")),
        Err(e) => internal_error(&format!("notifications: {e}")),
    }
}

pub fn ping() -> HttpResponse {
    json_response(StatusCode::OK, &json!({"pong": true}))
}

pub fn status(app: &App) -> HttpResponse {
    let info = &app.info;
    let host = app.services.sampler.host();
    let reload = info
        .reload_datetime
        .read()
        .map(|r| r.clone())
        .unwrap_or_default();
    json_response(
        StatusCode::OK,
        &json!({
            "start_datetime": info.start_datetime,
            "version": env!("CARGO_PKG_VERSION"),
            "user": info.os_user,
            "reload_datetime": reload,
            "pid": info.pid,
            "configfile": app.config.file.display().to_string(),
            // Beyond temBoard's fields: what /discover carried before it
            // took temBoard 7's exact shape.
            "hostname": host.hostname,
            "os": host.os,
            "pg_host": app.config.postgresql.host,
            "pg_port": app.config.postgresql.port,
            "plugins": app
                .plugins
                .current()
                .list
                .iter()
                .map(|p| json!({"name": &*p.name, "version": p.manifest.version}))
                .collect::<Vec<_>>(),
        }),
    )
}

pub fn plugins(app: &App) -> HttpResponse {
    let set = app.plugins.current();
    let mut list: Vec<Value> = set
        .list
        .iter()
        .map(|p| {
            let disabled = p.disabled_reason();
            json!({
                "name": &*p.name,
                "version": p.manifest.version,
                "description": p.manifest.description,
                "routes": p.manifest.routes,
                "capabilities": p.manifest.capabilities,
                "bundled": p.bundled,
                "key_read": p.manifest.key_read,
                "status": if disabled.is_some() { "disabled" } else { "serving" },
                "reason": disabled,
            })
        })
        .collect();
    // What the last reload refused: the version serving, if any, is above.
    list.extend(app.plugins.refused().iter().map(|r| {
        json!({
            "name": r.name,
            "origin": r.origin,
            "status": "refused",
            "reason": r.reason,
        })
    }));
    json_response(StatusCode::OK, &Value::Array(list))
}

/// `GET /openapi.json`, built once per set of plugins.
pub fn openapi(app: &App) -> HttpResponse {
    let set = app.plugins.current();
    let body = set
        .openapi
        .get_or_init(|| {
            bytes::Bytes::from(
                serde_json::to_vec(&super::openapi::document(&set)).unwrap_or_default(),
            )
        })
        .clone();
    super::response::json_bytes(StatusCode::OK, body)
}

/// `GET /discover`, in temBoard agent 7's shape: what its UI and its
/// registration tool read. PostgreSQL fields are null while the server is
/// unreachable, so discovery still answers. As in temBoard, the request
/// needs no credential, but a key sent in `X-TemBoard-Agent-Key` must be
/// the right one (the registration tool checks its configuration that way).
pub async fn discover(app: &App, headers: &hyper::HeaderMap) -> HttpResponse {
    if let Some(sent) = headers.get(crate::auth::access::KEY_HEADER)
        && !app.auth.is_key(sent.as_bytes())
    {
        return error(StatusCode::UNAUTHORIZED, "Invalid key");
    }
    let host = app.services.sampler.host();
    let mut body = json!({
        "hostname": host.hostname,
        "cpu": host.cpu_count,
        "memory_size": host.memory_total_bytes,
        "pg_port": app.config.postgresql.port,
        "pg_version": Value::Null,
        "pg_version_summary": Value::Null,
        "pg_data": Value::Null,
        "pg_block_size": Value::Null,
        "plugins": app.plugins.current().list.iter().map(|p| &*p.name).collect::<Vec<_>>(),
    });
    let deadline = std::time::Instant::now() + app.config.postgresql.connect_timeout;
    if let Ok(connection) = app.services.postgres.managed().get(None, deadline).await {
        let client = connection.client();
        let query = "SELECT version() AS version, \
                     current_setting('data_directory', true) AS data, \
                     current_setting('block_size')::int AS block_size, \
                     current_setting('port')::int AS port";
        match client.query_one(query, &[]).await {
            Ok(row) => {
                let version: String = row.get("version");
                body["pg_version_summary"] = json!(version_summary(&version));
                body["pg_version"] = json!(version);
                body["pg_data"] = json!(row.get::<_, Option<String>>("data"));
                body["pg_block_size"] = json!(row.get::<_, i32>("block_size"));
                body["pg_port"] = json!(row.get::<_, i32>("port"));
            }
            Err(e) => tracing::warn!("discover: {e}"),
        }
    }
    json_response(StatusCode::OK, &body)
}

/// "PostgreSQL 15.4" out of `version()`'s "PostgreSQL 15.4 (Debian …) on
/// x86_64-pc-linux-gnu, …": its first two words, as temBoard takes them.
fn version_summary(version: &str) -> String {
    version.split(' ').take(2).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_summary_is_the_first_two_words() {
        assert_eq!(
            super::version_summary(
                "PostgreSQL 15.4 (Debian 15.4-1) on x86_64-pc-linux-gnu, compiled by gcc"
            ),
            "PostgreSQL 15.4"
        );
        assert_eq!(super::version_summary("PostgreSQL"), "PostgreSQL");
    }
}
