//! The HTTP front: accepts connections, serves the host's own routes, and
//! hands everything else to the plugin that owns the path.

use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::TokenSet;
use crate::config::Config;
use crate::http::canned_errors::JsonCannedErrors;
use crate::http::connections::ConnectionLimits;
use crate::runtime::bindings::dbagent::api::http_types;
use crate::runtime::routes;
use crate::runtime::routes::RouteTable;
use crate::runtime::{CallError, Plugin, Runtime};
use crate::store::Store;
use crate::{access, authn, core_api};
use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    CONTENT_TYPE, HeaderName, HeaderValue, SERVER,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub const SERVER_HEADER: &str = concat!("dbagent/", env!("CARGO_PKG_VERSION"));

/// Bound on the request line plus headers (hyper answers 431 past it).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Bound on the request target (path and query): 414 past it.
const MAX_URI_BYTES: usize = 16 * 1024;

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
    pub info: crate::core_api::AgentInfo,
    /// The configuration the agent started with; what a reload may change
    /// lives in [`Live`].
    pub config: Config,
    live: std::sync::RwLock<Arc<Live>>,
    pub runtime: Runtime,
    pub plugins: Vec<Arc<Plugin>>,
    pub routes: RouteTable,
    pub store: Store,
    pub throttle: LoginThrottle,
    /// Password checks running at once: about one per core, since each
    /// holds ~19 MiB (Argon2id) and a full CPU while it runs.
    pub login_checks: tokio::sync::Semaphore,
}

/// The settings a SIGHUP reload replaces: users file, key, tokens, session
/// timeout, grants, notification retention.
pub struct Live {
    pub config: Arc<Config>,
    pub tokens: TokenSet,
}

impl Live {
    /// Keeps only the tokens' digests: the plain tokens leave memory with
    /// the configuration text.
    pub fn new(mut config: Config) -> Live {
        let tokens = TokenSet::new(&std::mem::take(&mut config.auth.api_tokens));
        Live {
            tokens,
            config: Arc::new(config),
        }
    }
}

pub type HttpResponse = Response<Full<Bytes>>;

pub async fn serve(app: Arc<App>) -> Result<()> {
    let listen = app.config.server.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let tls = match &app.config.server.tls {
        Some((cert, key)) => Some(crate::tls::acceptor(cert, key)?),
        None => {
            if !listen.ip().is_loopback() {
                tracing::warn!(%listen, "serving plain HTTP on a non-loopback address: set [server] tls_cert and tls_key");
            }
            None
        }
    };
    let limits = ConnectionLimits::new(
        app.config.server.max_connections,
        app.config.server.max_connections_per_address,
    );
    tracing::info!(%listen, plugins = app.plugins.len(), routes = app.routes.len(), "dbagent is serving");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than
                // spin; connections already accepted keep being served.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admitted = match limits.admit(peer.ip()) {
            Ok(admitted) => admitted,
            Err(refused) => {
                tracing::debug!(%peer, ?refused, "too many connections; closing a new one");
                if tls.is_none() {
                    tokio::spawn(turn_away(stream));
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            let handshake_timeout = app.config.server.request_timeout;
            match tls {
                None => serve_connection(app, stream, peer).await,
                Some(acceptor) => {
                    // The handshake gets the same bound as reading a request.
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(app, stream, peer).await,
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Answers a connection over the limits with a short 503, never waiting on
/// the client for long. What the client sent is read and dropped before
/// closing, so that its TCP stack delivers the answer instead of a reset.
async fn turn_away(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = r#"{"error": "Too many connections; try again later."}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\nserver: {SERVER_HEADER}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

async fn serve_connection<S>(app: Arc<App>, stream: S, peer: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let request_timeout = app.config.server.request_timeout;
    let service = service_fn(move |request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(app.handle(request, peer).await) }
    });
    if let Err(e) = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(request_timeout)
        .max_header_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(JsonCannedErrors::new(stream)), service)
        .await
    {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

impl App {
    pub fn new(
        config: Config,
        runtime: Runtime,
        plugins: Vec<Arc<Plugin>>,
        routes: RouteTable,
        store: Store,
    ) -> App {
        App {
            info: crate::core_api::AgentInfo::new(),
            live: std::sync::RwLock::new(Arc::new(Live::new(config.clone()))),
            config: Config {
                auth: crate::config::Auth {
                    api_tokens: Vec::new(),
                    ..config.auth.clone()
                },
                ..config
            },
            runtime,
            plugins,
            routes,
            store,
            throttle: LoginThrottle::default(),
            login_checks: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            ),
        }
    }

    /// The settings in force now.
    pub fn live(&self) -> Arc<Live> {
        match self.live.read() {
            Ok(live) => Arc::clone(&live),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn replace_live(&self, live: Live) {
        match self.live.write() {
            Ok(mut current) => *current = Arc::new(live),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(live),
        }
    }

    pub async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
        let mut response = if request.method() == Method::OPTIONS {
            preflight()
        } else {
            self.route(request, peer).await
        };
        if let Some(origin) = &self.config.server.cors_allow_origin
            && let Ok(value) = HeaderValue::from_str(origin)
        {
            response
                .headers_mut()
                .insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
        }
        response
    }

    async fn route(&self, request: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
        let target_len = request
            .uri()
            .path_and_query()
            .map_or(0, |target| target.as_str().len());
        if target_len > MAX_URI_BYTES {
            return error(StatusCode::URI_TOO_LONG, "URI too long.");
        }
        let path = request.uri().path().to_string();
        // HEAD is GET without the body, which hyper leaves out.
        let method = match request.method() {
            &Method::HEAD => Method::GET,
            other => other.clone(),
        };
        let class = access::classify(&method, &path);
        match (&method, path.as_str()) {
            (&Method::GET, "/status") => return core_api::status(self),
            (&Method::GET, "/discover") => {
                return core_api::discover(self, request.headers()).await;
            }
            (&Method::POST, "/login") => {
                return match self.read_body(request).await {
                    Ok(body) => authn::login(self, &body, peer).await,
                    Err(refusal) => refusal.into_response(),
                };
            }
            _ => {}
        }
        // Unknown paths are 404 before authentication, as in temBoard.
        let found = self.routes.resolve(&path);
        if found.is_none() && !routes::NATIVE_ROUTES.contains(&path.as_str()) {
            return error(StatusCode::NOT_FOUND, "URL not found.");
        }
        let raw_query = request.uri().query().unwrap_or_default();
        let presented = access::presented(request.headers(), raw_query);
        let identity = match authn::authenticate(self, presented, class).await {
            Ok(identity) => identity,
            Err(refusal) => return refusal.into_response(),
        };
        match (&method, path.as_str()) {
            (&Method::GET, "/ping") => return core_api::ping(),
            (&Method::GET, "/plugins") => return core_api::plugins(self),
            (&Method::GET, "/logout") => return authn::logout(self, &identity).await,
            (&Method::GET, "/profile") => return core_api::profile(&identity),
            (&Method::GET, "/notifications") => return core_api::notifications(self).await,
            _ => {}
        }
        let Some(found) = found else {
            return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
        };
        let plugin = Arc::clone(&self.plugins[found.plugin]);
        if let Some(reason) = plugin.disabled_reason() {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("Plugin '{}' is disabled: {reason}", plugin.name),
            );
        }
        let prefix = found.prefix.to_string();
        let rest = found.rest.to_string();
        let method = method.as_str().to_string();
        let query = access::query_without_key(raw_query);
        let headers = request
            .headers()
            .iter()
            .filter(|(name, _)| !access::is_credential_header(name.as_str()))
            .filter_map(|(name, value)| {
                Some(http_types::Header {
                    name: name.as_str().to_string(),
                    value: value.to_str().ok()?.to_string(),
                })
            })
            .collect();
        let body = match self.read_body(request).await {
            Ok(body) => body,
            Err(refusal) => return refusal.into_response(),
        };
        let wit_request = http_types::Request {
            method,
            prefix,
            path: rest,
            query,
            headers,
            body,
            user: identity.user_name().map(str::to_string),
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
}

impl App {
    /// The request body, bounded by `[server] max_body_bytes` (413 past it,
    /// at once when `Content-Length` says so, before any `100 Continue`)
    /// and in time by `[server] request_timeout_secs` (408 past it).
    async fn read_body(&self, request: Request<Incoming>) -> Result<Vec<u8>, Refusal> {
        let limit = self.config.server.max_body_bytes;
        let too_large = || Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.");
        let declared = request
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let reading = Limited::new(request.into_body(), limit).collect();
        match tokio::time::timeout(self.config.server.request_timeout, reading).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes().to_vec()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Ok(Err(e)) => {
                tracing::debug!("cannot read request body: {e}");
                Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "Cannot read the request body.",
                ))
            }
            Err(_) => Err(Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                "Request body not received in time.",
            )),
        }
    }
}

/// The answer to a CORS preflight: what browsers may send.
fn preflight() -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static(SERVER_HEADER));
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, X-Session, X-TemBoard-Agent-Key, Authorization"),
    );
    response
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

/// A request refused before it reached its handler: a status and temBoard's
/// `{"error": ...}` message. Small, so `Result`s carrying it stay cheap.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }

    /// A failure of the agent itself: the detail goes to the log only.
    pub fn internal(detail: &str) -> Refusal {
        tracing::error!("internal error: {detail}");
        Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error.")
    }

    pub fn into_response(self) -> HttpResponse {
        error(self.status, &self.message)
    }
}

pub fn error(status: StatusCode, message: &str) -> HttpResponse {
    json_response(status, &json!({ "error": message }))
}

/// A failure of the agent itself: the detail goes to the log, never to the client.
pub fn internal_error(detail: &str) -> HttpResponse {
    tracing::error!("internal error: {detail}");
    error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error.")
}
