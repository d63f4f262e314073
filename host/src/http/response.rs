//! Responses the host writes itself: JSON bodies, temBoard's `{"error": ...}`,
//! CORS preflights, and a plugin's answer checked before it goes out.

use crate::auth::Denied;
use crate::plugins::runtime::Plugin;
use crate::wit::http_types;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, CONTENT_TYPE, HeaderName,
    HeaderValue, RETRY_AFTER, SERVER,
};
use hyper::{Response, StatusCode};
use serde_json::json;

pub const SERVER_HEADER: &str = concat!("dbagent/", env!("CARGO_PKG_VERSION"));

pub type HttpResponse = Response<Full<Bytes>>;

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

pub fn json_response(status: StatusCode, value: &serde_json::Value) -> HttpResponse {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    json_bytes(status, Bytes::from(body))
}

/// A JSON body serialized already.
pub fn json_bytes(status: StatusCode, body: Bytes) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(SERVER, HeaderValue::from_static(SERVER_HEADER));
    response
}

/// temBoard's error shape: `{"error": message}`.
pub fn error(status: StatusCode, message: &str) -> HttpResponse {
    json_response(status, &json!({ "error": message }))
}

/// A failure of the agent itself: the detail goes to the log, never to the client.
pub fn internal_error(detail: &str) -> HttpResponse {
    denied(Denied::internal(detail))
}

/// A caller turned away, with `Retry-After` (whole seconds) when it helps.
pub fn denied(denied: Denied) -> HttpResponse {
    let mut response = error(denied.status, &denied.message);
    if let Some(after) = denied.retry_after {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        if let Ok(value) = HeaderValue::from_str(&secs.max(1).to_string()) {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
    }
    response
}

/// The answer to a CORS preflight: what browsers may send.
pub fn preflight() -> HttpResponse {
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
pub fn from_plugin(plugin: &Plugin, response: http_types::Response) -> HttpResponse {
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
