//! Grows without bound: the host's memory limit must trap it (500 naming "hog").

use dbagent_sdk::{Error, Request, Response};
use std::hint::black_box;

const CHUNK: usize = 1024 * 1024;

fn handle(_: &Request) -> Result<Response, Error> {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        // Touch every page so the memory is really used, not just reserved.
        for i in (0..CHUNK).step_by(4096) {
            chunk[i] = i as u8;
        }
        kept.push(black_box(chunk));
        black_box(&kept);
    }
}

dbagent_sdk::export_plugin!(handle);
