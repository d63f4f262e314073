//! Where a request goes: the native route table or the plugin that owns the
//! path, after authentication for what the route needs.
//!
//! Unknown paths are 404 before authentication, as in temBoard; open routes
//! are answered without looking at credentials.

use super::core;
use super::response::{self, HttpResponse, error};
use super::routes::{self, Handler};
use crate::app::App;
use crate::auth::access;
use crate::auth::{Denied, Identity};
use crate::plugins::PluginSet;
use crate::plugins::runtime::CallError;
use crate::wit::http_types;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// Bound on the request target (path and query): 414 past it.
const MAX_URI_BYTES: usize = 16 * 1024;

/// Answers one request, with the CORS header the operator configured.
pub async fn handle(app: &App, request: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
    let mut response = if request.method() == Method::OPTIONS {
        response::preflight()
    } else {
        route(app, request, peer).await
    };
    if let Some(origin) = &app.config.server.cors_allow_origin
        && let Ok(value) = HeaderValue::from_str(origin)
    {
        response
            .headers_mut()
            .insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    response
}

async fn route(app: &App, request: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
    let path = request.uri().path().to_string();
    // One set of plugins for the whole request: a reload meanwhile cannot
    // route it to one version and run it on another.
    let plugins = app.plugins.current();
    let response = route_unrecorded(app, &plugins, request, peer).await;
    // The route's own name (a native path or a plugin's prefix), never the
    // request's path: the figures' labels stay few.
    let label = match routes::native_paths().into_iter().find(|p| *p == path) {
        Some(native) => native.to_string(),
        None => plugins
            .routes
            .resolve(&path)
            .map_or_else(|| "unmatched".to_string(), |found| found.prefix.to_string()),
    };
    crate::telemetry::get().request(&label, response.status().as_u16());
    response
}

async fn route_unrecorded(
    app: &App,
    plugins: &PluginSet,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> HttpResponse {
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
    let native = routes::find(method.as_str(), &path);
    let found = plugins.routes.resolve(&path);
    if native.is_none() && found.is_none() && !routes::is_native_path(&path) {
        return error(StatusCode::NOT_FOUND, "URL not found.");
    }
    let manifest = found
        .as_ref()
        .and_then(|m| plugins.list.get(m.plugin))
        .map(|p| &p.manifest);
    let class = routes::class_of(method.as_str(), native, manifest);

    let identity = if class == access::RouteClass::Open {
        None
    } else {
        let raw_query = request.uri().query().unwrap_or_default();
        let presented = access::presented(request.headers(), raw_query);
        match app.auth.authenticate(presented, class).await {
            Ok(identity) => Some(identity),
            Err(denied) => return response::denied(denied),
        }
    };
    if let Some(route) = native {
        return native_route(app, route.handler, request, peer, identity.as_ref()).await;
    }
    let (Some(found), Some(identity)) = (found, identity) else {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
    };
    plugin_route(app, plugins, request, &found, &identity, &method, &path).await
}

/// Answers a metrics-only listener (`[metrics] listen`): `GET /metrics`,
/// served by the plugin that owns `/metrics` as the agent key would read
/// it, without credentials; nothing else.
pub async fn metrics_only(app: &App, request: Request<Incoming>) -> HttpResponse {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    if path != "/metrics" {
        return error(StatusCode::NOT_FOUND, "URL not found.");
    }
    if method != Method::GET && method != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
    }
    let plugins = app.plugins.current();
    let Some(found) = plugins.routes.resolve(&path) else {
        return error(StatusCode::NOT_FOUND, "URL not found.");
    };
    let response = plugin_route(
        app,
        &plugins,
        request,
        &found,
        &Identity::Key,
        &Method::GET,
        &path,
    )
    .await;
    crate::telemetry::get().request("/metrics", response.status().as_u16());
    response
}

/// Calls the plugin that owns `path` for an authenticated request.
async fn plugin_route(
    app: &App,
    plugins: &PluginSet,
    request: Request<Incoming>,
    found: &crate::plugins::routes::Match<'_>,
    identity: &Identity,
    method: &Method,
    path: &str,
) -> HttpResponse {
    let Some(plugin) = plugins.list.get(found.plugin).map(Arc::clone) else {
        return response::internal_error("a route points at no plugin");
    };
    if let Some(reason) = plugin.disabled_reason() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("Plugin '{}' is disabled: {reason}", plugin.name),
        );
    }
    let raw_query = request.uri().query().unwrap_or_default();
    let mut wit_request = http_types::Request {
        method: method.as_str().to_string(),
        prefix: found.prefix.to_string(),
        path: found.rest.to_string(),
        query: access::query_without_key(raw_query),
        headers: request
            .headers()
            .iter()
            .filter(|(name, _)| !access::is_credential_header(name.as_str()))
            .filter_map(|(name, value)| {
                Some(http_types::Header {
                    name: name.as_str().to_string(),
                    value: value.to_str().ok()?.to_string(),
                })
            })
            .collect(),
        body: Vec::new(),
        user: identity.user_name().map(str::to_string),
    };
    wit_request.body = match read_body(app, request).await {
        Ok(body) => body,
        Err(denied) => return response::denied(denied),
    };
    let started = std::time::Instant::now();
    let answer = plugins.runtime.call(&plugin, wit_request).await;
    let telemetry = crate::telemetry::get();
    telemetry.plugin_call(&plugin.name, started.elapsed());
    match &answer {
        Err(CallError::Busy) => telemetry.plugin_failure(&plugin.name, "busy"),
        Err(CallError::Timeout(_)) => telemetry.plugin_failure(&plugin.name, "timeout"),
        Err(CallError::Failed(_)) => telemetry.plugin_failure(&plugin.name, "failed"),
        Ok(_) => {}
    }
    match answer {
        Ok(answer) => response::from_plugin(&plugin, answer),
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

async fn native_route(
    app: &App,
    handler: Handler,
    request: Request<Incoming>,
    peer: SocketAddr,
    identity: Option<&Identity>,
) -> HttpResponse {
    match (handler, identity) {
        (Handler::Status, _) => core::status(app),
        (Handler::Discover, _) => core::discover(app, request.headers()).await,
        (Handler::Login, _) => match read_body(app, request).await {
            Ok(body) => match app.auth.login(&body, peer).await {
                Ok(session) => {
                    response::json_response(StatusCode::OK, &json!({ "session": session }))
                }
                Err(denied) => response::denied(denied),
            },
            Err(denied) => response::denied(denied),
        },
        (Handler::Ping, _) => core::ping(),
        (Handler::Plugins, _) => core::plugins(app),
        (Handler::OpenApi, _) => core::openapi(app),
        (Handler::Notifications, _) => core::notifications(app).await,
        (Handler::Profile, Some(identity)) => core::profile(identity),
        (Handler::Logout, Some(identity)) => match app.auth.logout(identity).await {
            Ok(()) => response::json_response(StatusCode::OK, &json!({ "logout": true })),
            Err(denied) => response::denied(denied),
        },
        // The table gives these routes a class that always authenticates.
        (Handler::Profile | Handler::Logout, None) => {
            response::internal_error("an authenticated route was served without identity")
        }
    }
}

/// The request body, bounded by `[server] max_body_bytes` (413 past it,
/// at once when `Content-Length` says so, before any `100 Continue`)
/// and in time by `[server] request_timeout_secs` (408 past it).
async fn read_body(app: &App, request: Request<Incoming>) -> Result<Vec<u8>, Denied> {
    let limit = app.config.server.max_body_bytes;
    let too_large = || Denied::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.");
    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let reading = Limited::new(request.into_body(), limit).collect();
    match tokio::time::timeout(app.config.server.request_timeout, reading).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes().to_vec()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => {
            tracing::debug!("cannot read request body: {e}");
            Err(Denied::new(
                StatusCode::BAD_REQUEST,
                "Cannot read the request body.",
            ))
        }
        Err(_) => Err(Denied::new(
            StatusCode::REQUEST_TIMEOUT,
            "Request body not received in time.",
        )),
    }
}
