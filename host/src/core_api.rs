//! The routes the host serves itself (temBoard's core API and operator
//! endpoints); everything else belongs to a plugin.

use crate::authn::Identity;
use crate::server::{App, HttpResponse, internal_error, json_response};
use hyper::StatusCode;
use serde_json::{Value, json};

/// Agent-wide facts for `/status`, fixed at start-up except the reload time.
pub struct AgentInfo {
    pub start_datetime: String,
    pub reload_datetime: std::sync::RwLock<String>,
    pub os_user: String,
    pub pid: u32,
}

impl AgentInfo {
    pub fn new() -> AgentInfo {
        let now = local_datetime();
        AgentInfo {
            start_datetime: now.clone(),
            reload_datetime: std::sync::RwLock::new(now),
            os_user: os_user(),
            pid: std::process::id(),
        }
    }

    pub fn mark_reloaded(&self) {
        if let Ok(mut at) = self.reload_datetime.write() {
            *at = local_datetime();
        }
    }
}

/// temBoard shows agent times in local time without a zone, e.g. "2018-06-15T15:42:42".
pub fn local_datetime() -> String {
    chrono::Local::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn os_user() -> String {
    // SAFETY: called once at start-up, before other threads look up users;
    // the returned record is copied out at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    std::env::var("USER").unwrap_or_default()
}

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
    let host = app.runtime.capabilities().system.host();
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
                .iter()
                .map(|p| json!({"name": &*p.name, "version": p.manifest.version}))
                .collect::<Vec<_>>(),
        }),
    )
}

pub fn plugins(app: &App) -> HttpResponse {
    let list: Vec<Value> = app
        .plugins
        .iter()
        .map(|p| {
            json!({
                "name": &*p.name,
                "version": p.manifest.version,
                "description": p.manifest.description,
                "routes": p.manifest.routes,
                "capabilities": p.manifest.capabilities,
                "bundled": p.bundled,
            })
        })
        .collect();
    json_response(StatusCode::OK, &Value::Array(list))
}

/// `GET /discover`, in temBoard agent 7's shape: what its UI and its
/// registration tool read. PostgreSQL fields are null while the server is
/// unreachable, so discovery still answers. As in temBoard, the request
/// needs no credential, but a key sent in `X-TemBoard-Agent-Key` must be
/// the right one (the registration tool checks its configuration that way).
pub async fn discover(app: &App, headers: &hyper::HeaderMap) -> HttpResponse {
    if let Some(sent) = headers.get(crate::access::KEY_HEADER) {
        let live = app.live();
        let matches =
            live.config.auth.key.as_ref().is_some_and(|key| {
                crate::access::constant_time_eq(sent.as_bytes(), key.as_bytes())
            });
        if !matches {
            return crate::server::error(StatusCode::UNAUTHORIZED, "Invalid key");
        }
    }
    let host = app.runtime.capabilities().system.host();
    let mut body = json!({
        "hostname": host.hostname,
        "cpu": host.cpu_count,
        "memory_size": host.memory_total_bytes,
        "pg_port": app.config.postgresql.port,
        "pg_version": Value::Null,
        "pg_version_summary": Value::Null,
        "pg_data": Value::Null,
        "pg_block_size": Value::Null,
        "plugins": app.plugins.iter().map(|p| &*p.name).collect::<Vec<_>>(),
    });
    let deadline = std::time::Instant::now() + app.config.postgresql.connect_timeout;
    if let Ok(connection) = app
        .runtime
        .capabilities()
        .postgres
        .get(None, deadline)
        .await
    {
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
