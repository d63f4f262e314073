//! Panics: the host must answer 500 with the panic message and keep serving.

use dbagent_sdk::{Error, Request, Response};

fn handle(_: &Request) -> Result<Response, Error> {
    panic!("deliberate panic for the test");
}

dbagent_sdk::export_plugin!(handle);
