//! Test plugin for the sandbox: `GET /prober` tries to read a file, list
//! the root directory, read the environment and arguments, and open a TCP
//! connection, and reports what happened. The host must allow none of it.

use dbagent_sdk::{Error, Params, Request, Response, Router};
use serde_json::json;

fn outcome<T>(result: std::io::Result<T>) -> serde_json::Value {
    match result {
        Ok(_) => json!("allowed"),
        Err(e) => json!(format!("denied: {e}")),
    }
}

fn probe(req: &Request, _: &Params) -> Result<Response, Error> {
    let port = req.query_param("port").unwrap_or_else(|| "5432".into());
    Ok(Response::ok(&json!({
        "read_file": outcome(std::fs::read("/etc/passwd")),
        "read_dir": outcome(std::fs::read_dir("/")),
        "env": std::env::vars().count(),
        "args": std::env::args().count(),
        "tcp": outcome(std::net::TcpStream::connect(format!("127.0.0.1:{port}"))),
    })))
}

fn handle(req: &Request) -> Result<Response, Error> {
    Router::new().get("/", probe).handle(req)
}

dbagent_sdk::export_plugin!(handle);
