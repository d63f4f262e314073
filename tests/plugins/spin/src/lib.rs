//! Never returns: the host's epoch deadline must stop it (504 naming "spin").

use dbagent_sdk::{Error, Request, Response};
use std::hint::black_box;

fn handle(_: &Request) -> Result<Response, Error> {
    let mut counter: u64 = 0;
    loop {
        // black_box keeps the optimiser from proving the loop pointless.
        counter = black_box(counter.wrapping_add(1));
    }
}

dbagent_sdk::export_plugin!(handle);
