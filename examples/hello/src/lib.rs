//! An example dbagent plugin, the smallest useful one: it answers under
//! `/hello` and needs only the `log` capability.
//!
//! - `GET /hello` → `{"hello": "<authenticated user>"}` (or `"world"`)
//! - `GET /hello/ping` → `{"pong": true}`, the plugin twin of the host's
//!   native `GET /ping` (the benchmark compares the two)
//! - `GET /hello/echo?name=x` → `{"name": "x"}`
//! - `GET /hello/request` → what the plugin was given: header names, query, user

use dbagent_sdk::{Error, Params, Request, Response, Router};
use serde_json::json;

fn hello(req: &Request, _: &Params) -> Result<Response, Error> {
    let name = req.user.as_deref().unwrap_or("world");
    dbagent_sdk::log::info(&format!("saying hello to {name}"));
    Ok(Response::ok(&json!({ "hello": name })))
}

fn ping(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(&json!({ "pong": true })))
}

fn echo(req: &Request, _: &Params) -> Result<Response, Error> {
    let name = req
        .query_param("name")
        .ok_or_else(|| Error::not_acceptable("Parameter 'name' not sent."))?;
    Ok(Response::ok(&json!({ "name": name })))
}

fn request(req: &Request, _: &Params) -> Result<Response, Error> {
    let headers: Vec<&str> = req.headers.iter().map(|(name, _)| name.as_str()).collect();
    Ok(Response::ok(&json!({
        "headers": headers,
        "query": req.query,
        "user": req.user,
    })))
}

fn handle(req: &Request) -> Result<Response, Error> {
    Router::new()
        .get("/", hello)
        .get("/ping", ping)
        .get("/echo", echo)
        .get("/request", request)
        .handle(req)
}

dbagent_sdk::export_plugin!(handle);
