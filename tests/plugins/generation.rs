// Shared by generation1 and generation2, which differ only in GENERATION:
// the hot-reload test swaps one for the other under load.

use dbagent_sdk::{Error, Params, Request, Response, Router};
use serde_json::json;

fn generation(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::ok(&json!({ "generation": GENERATION })))
}

/// Answers after `ms` milliseconds (at most 5 s): a request in flight
/// across a swap.
fn slow(req: &Request, _: &Params) -> Result<Response, Error> {
    let ms: u64 = req
        .query_param("ms")
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(300)
        .min(5000);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    Ok(Response::ok(
        &json!({ "generation": GENERATION, "slept_ms": ms }),
    ))
}

fn handle(req: &Request) -> Result<Response, Error> {
    Router::new()
        .get("/", generation)
        .get("/slow", slow)
        .handle(req)
}

dbagent_sdk::export_plugin!(handle);
