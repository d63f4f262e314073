//! The HTTP front: accepts connections, serves the host's own routes, and
//! hands everything else to the plugin that owns the path.

use crate::config::Config;
use crate::runtime::bindings::dbagent::api::http_types;
use crate::runtime::routes::RouteTable;
use crate::runtime::{CallError, Plugin, Runtime};
use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub const SERVER_HEADER: &str = concat!("dbagent/", env!("CARGO_PKG_VERSION"));

/// A client that has not sent its headers by then is cut off (slow-loris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Response headers a plugin may not set: the host frames the response.
const FRAMING_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "server",
    "trailer",
];

pub struct App {
    pub config: Config,
    pub runtime: Runtime,
    pub plugins: Vec<Arc<Plugin>>,
    pub routes: RouteTable,
}

type HttpResponse = Response<Full<Bytes>>;

pub async fn serve(app: Arc<App>) -> Result<()> {
    let listen = app.config.server.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    if !listen.ip().is_loopback() {
        tracing::warn!(%listen, "serving plain HTTP on a non-loopback address");
    }
    tracing::info!(%listen, plugins = app.plugins.len(), routes = app.routes.len(), "dbagent is serving");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(app.handle(request).await) }
            });
            if let Err(e) = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}

impl App {
    pub async fn handle(&self, request: Request<Incoming>) -> HttpResponse {
        let path = request.uri().path().to_string();
        match (request.method(), path.as_str()) {
            (&Method::GET, "/ping") => {
                return json_response(StatusCode::OK, &json!({"pong": true}));
            }
            (&Method::GET, "/plugins") => {
                return json_response(StatusCode::OK, &self.plugin_list());
            }
            _ => {}
        }
        let Some(found) = self.routes.resolve(&path) else {
            return error(StatusCode::NOT_FOUND, "URL not found.");
        };
        let plugin = Arc::clone(&self.plugins[found.plugin]);
        let prefix = found.prefix.to_string();
        let rest = found.rest.to_string();
        let method = request.method().as_str().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let headers = request
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some(http_types::Header {
                    name: name.as_str().to_string(),
                    value: value.to_str().ok()?.to_string(),
                })
            })
            .collect();
        let body = match Limited::new(request.into_body(), self.config.server.max_body_bytes)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes().to_vec(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.");
            }
            Err(e) => {
                tracing::debug!("cannot read request body: {e}");
                return error(StatusCode::BAD_REQUEST, "Cannot read the request body.");
            }
        };
        let wit_request = http_types::Request {
            method,
            prefix,
            path: rest,
            query,
            headers,
            body,
            user: None,
        };
        match self.runtime.call(&plugin, wit_request).await {
            Ok(response) => plugin_response(&plugin, response),
            Err(CallError::Busy) => {
                tracing::warn!(plugin = %plugin.name, "no free plugin instance within the deadline");
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("Plugin '{}' is busy; try again later.", plugin.name),
                )
            }
            Err(CallError::Timeout(limit)) => {
                tracing::warn!(plugin = %plugin.name, %path, "plugin exceeded its deadline of {limit:?}");
                error(
                    StatusCode::GATEWAY_TIMEOUT,
                    &format!(
                        "Plugin '{}' did not answer within {} s.",
                        plugin.name,
                        limit.as_secs_f64()
                    ),
                )
            }
            Err(CallError::Failed(reason)) => {
                tracing::error!(plugin = %plugin.name, %path, "plugin failed: {reason}");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("Plugin '{}' failed: {reason}", plugin.name),
                )
            }
        }
    }

    fn plugin_list(&self) -> serde_json::Value {
        self.plugins
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
            .collect()
    }
}

/// Turns a plugin's response into HTTP, refusing what a plugin must not do:
/// an invalid status, malformed headers, or headers that frame the response.
fn plugin_response(plugin: &Plugin, response: http_types::Response) -> HttpResponse {
    let Ok(status) = StatusCode::from_u16(response.status) else {
        tracing::error!(plugin = %plugin.name, status = response.status, "plugin returned an invalid status");
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!(
                "Plugin '{}' returned an invalid status {}.",
                plugin.name, response.status
            ),
        );
    };
    let mut http = Response::new(Full::new(Bytes::from(response.body)));
    *http.status_mut() = status;
    let headers = http.headers_mut();
    for header in response.headers {
        let name = header.name.to_ascii_lowercase();
        if FRAMING_HEADERS.contains(&name.as_str()) {
            continue;
        }
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&header.value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => {
                tracing::warn!(plugin = %plugin.name, header = %header.name, "dropping malformed response header")
            }
        }
    }
    headers.insert(SERVER, HeaderValue::from_static(SERVER_HEADER));
    http
}

pub fn json_response(status: StatusCode, value: &serde_json::Value) -> HttpResponse {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(SERVER, HeaderValue::from_static(SERVER_HEADER));
    response
}

pub fn error(status: StatusCode, message: &str) -> HttpResponse {
    json_response(status, &json!({ "error": message }))
}
