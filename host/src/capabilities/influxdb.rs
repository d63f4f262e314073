//! The `influxdb` interface: InfluxQL on an InfluxDB 1.x server of
//! `[databases]`, over its HTTP API, bound by the host to the database a
//! call addresses. The host makes the HTTP call with the configured URL
//! and credentials (basic authentication); the guest sends only InfluxQL.

use super::call::Call;
use crate::config::databases::{Connection, ManagedDatabase};
use crate::wit::influxdb::{Host, InfluxError, Series, StatementResult, Value};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "influxdb";

/// Largest answer read from InfluxDB.
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;
/// Longest InfluxQL text a plugin may send.
const MAX_QUERY_BYTES: usize = 1024 * 1024;

/// One InfluxDB server the agent reaches.
pub struct Target {
    base: String,
    /// The configured `dbname`: the database of a query that names none.
    database: Option<String>,
    authorization: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Target {
    fn new(db: &ManagedDatabase) -> Option<Target> {
        let Connection::Server {
            host,
            port,
            user,
            password,
            dbname,
        } = &db.connection
        else {
            return None;
        };
        let base = if host.starts_with("http://") {
            host.trim_end_matches('/').to_string()
        } else {
            format!("http://{host}:{port}")
        };
        let authorization = user.as_ref().map(|user| {
            let pair = format!("{user}:{}", password.as_deref().unwrap_or_default());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        Some(Target {
            base,
            database: dbname.clone(),
            authorization,
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        })
    }

    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        deadline: Instant,
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes), InfluxError> {
        let unreachable = |message: String| InfluxError { status: 0, message };
        let answer = tokio::time::timeout_at(deadline.into(), async {
            let response =
                self.client.request(request).await.map_err(|e| {
                    unreachable(format!("cannot reach InfluxDB at {}: {e}", self.base))
                })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| unreachable(format!("InfluxDB's answer: {e}")))?
                .to_bytes();
            Ok((parts.status, parts.headers, body))
        })
        .await;
        answer.unwrap_or_else(|_| {
            Err(unreachable(
                "InfluxDB did not answer within the call's deadline".into(),
            ))
        })
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: String,
    ) -> Result<Request<Full<Bytes>>, InfluxError> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization);
        }
        request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| InfluxError {
                status: 0,
                message: format!("cannot build the request: {e}"),
            })
    }

    /// The server's version (`X-Influxdb-Version` of `/ping`).
    pub async fn ping(&self, deadline: Instant) -> Result<String, InfluxError> {
        let request = self.request(Method::GET, "/ping", String::new())?;
        let (status, headers, body) = self.send(request, deadline).await?;
        if !status.is_success() {
            return Err(InfluxError {
                status: status.as_u16(),
                message: String::from_utf8_lossy(&body).trim().to_string(),
            });
        }
        Ok(headers
            .get("x-influxdb-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string())
    }

    /// Runs `q` (POST `/query`, which every statement accepts).
    pub async fn query(
        &self,
        database: Option<&str>,
        q: &str,
        params: &[(String, Value)],
        deadline: Instant,
    ) -> Result<Vec<StatementResult>, InfluxError> {
        if q.len() > MAX_QUERY_BYTES {
            return Err(InfluxError {
                status: 400,
                message: "query text over 1 MiB".into(),
            });
        }
        let mut form = form_urlencoded(&[("q", q)]);
        if let Some(db) = database.or(self.database.as_deref()) {
            form.push('&');
            form.push_str(&form_urlencoded(&[("db", db)]));
        }
        if !params.is_empty() {
            let bound: serde_json::Map<String, Json> = params
                .iter()
                .map(|(name, value)| (name.clone(), json_of(value)))
                .collect();
            form.push('&');
            form.push_str(&form_urlencoded(&[(
                "params",
                &Json::Object(bound).to_string(),
            )]));
        }
        let request = self.request(Method::POST, "/query", form)?;
        let (status, _, body) = self.send(request, deadline).await?;
        let answer: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
        if !status.is_success() {
            return Err(InfluxError {
                status: status.as_u16(),
                message: answer["error"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string()),
            });
        }
        if let Some(error) = answer["error"].as_str() {
            return Err(InfluxError {
                status: 400,
                message: error.to_string(),
            });
        }
        Ok(answer["results"]
            .as_array()
            .map(|results| results.iter().map(statement_result).collect())
            .unwrap_or_default())
    }
}

fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn json_of(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => Json::from(*f),
        Value::Text(s) => Json::String(s.clone()),
    }
}

fn value_of(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

fn statement_result(result: &Json) -> StatementResult {
    let series = result["series"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|s| Series {
                    name: s["name"].as_str().unwrap_or_default().to_string(),
                    tags: s["tags"]
                        .as_object()
                        .map(|tags| {
                            tags.iter()
                                .map(|(k, v)| {
                                    (k.clone(), v.as_str().unwrap_or_default().to_string())
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    columns: s["columns"]
                        .as_array()
                        .map(|c| {
                            c.iter()
                                .map(|c| c.as_str().unwrap_or_default().to_string())
                                .collect()
                        })
                        .unwrap_or_default(),
                    values: s["values"]
                        .as_array()
                        .map(|rows| {
                            rows.iter()
                                .map(|row| {
                                    row.as_array()
                                        .map(|cells| cells.iter().map(value_of).collect())
                                        .unwrap_or_default()
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    StatementResult {
        series,
        error: result["error"].as_str().map(str::to_string),
    }
}

/// The targets of every InfluxDB database of `[databases]`, by resource id.
pub type Service = super::targets::Targets<Target>;

pub fn service(databases: &[ManagedDatabase]) -> Service {
    Service::new(databases, NAME, Target::new)
}

pub struct State {
    target: Option<Arc<Target>>,
    deadline: Instant,
}

impl State {
    pub fn new(target: Option<&Arc<Target>>, call: &Call) -> State {
        State {
            target: target.cloned(),
            deadline: call.deadline,
        }
    }

    fn target(&self) -> Result<Arc<Target>, InfluxError> {
        self.target.clone().ok_or_else(|| InfluxError {
            status: 0,
            message: "this call is bound to no InfluxDB database".into(),
        })
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::influxdb::add_to_linker::<T, HasSelf<State>>(linker, get)
}

impl Host for State {
    async fn query(
        &mut self,
        database: Option<String>,
        q: String,
        params: Vec<(String, Value)>,
    ) -> Result<Vec<StatementResult>, InfluxError> {
        self.target()?
            .query(database.as_deref(), &q, &params, self.deadline)
            .await
    }

    async fn ping(&mut self) -> Result<String, InfluxError> {
        self.target()?.ping(self.deadline).await
    }

    async fn database(&mut self) -> Option<String> {
        self.target.as_ref().and_then(|t| t.database.clone())
    }
}
