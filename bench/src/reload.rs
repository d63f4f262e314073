//! Hot reload under load: the `hello` drop-in replaced by a new version
//! (other bytes, the same code: a custom section added, so that the cache
//! misses and the swap compiles, in a child process) while wrk keeps 16, then 64 connections on
//! its route. Reports the swap's time (SIGHUP to serving, from the agent's
//! log), the load's throughput and p99 across it, and failed requests.

use crate::load;
use dbagent_tests::{Agent, AgentOptions, PgCluster};
use std::time::Duration;

pub fn run(cluster: &PgCluster, seconds: u64) {
    let agent = Agent::start(
        cluster,
        AgentOptions::new()
            .plugin("hello")
            .config("[plugin.hello]\ngrants = [\"log\"]\n"),
    );
    let wasm_path = agent.dir().join("plugins/hello.wasm");
    let original = std::fs::read(&wasm_path).expect("the hello drop-in");
    let url = agent.url("/hello/ping");
    for (generation, connections) in [(1u8, 16), (2, 64)] {
        let load = {
            let url = url.clone();
            std::thread::spawn(move || load::wrk(&url, connections, seconds))
        };
        std::thread::sleep(Duration::from_millis(seconds * 1000 / 2));
        let staged = agent.dir().join("plugins/.hello.wasm.new");
        std::fs::write(&staged, with_custom_section(&original, generation))
            .expect("write the new version");
        std::fs::rename(&staged, &wasm_path).expect("put the new version in place");
        let swapped = agent.reload_plugins();
        let log = agent.log_text();
        let inside_ms = crate::logged_elapsed_ms(&log, "plugins reloaded");
        let replaced = log
            .lines()
            .rfind(|l| l.contains("plugins reloaded"))
            .is_some_and(|l| l.contains("replaced=[\"hello\"]"));
        let run = load.join().expect("the load thread");
        println!(
            "hot reload, c={connections}: swap {:.0} ms after SIGHUP (reload itself {} ms, replaced: {replaced}); {:.0} req/s, p99 {} ms, {} failed",
            swapped.as_secs_f64() * 1000.0,
            inside_ms.map_or("?".into(), |ms| ms.to_string()),
            run.per_second,
            run.p99_ms.map_or("?".into(), |ms| format!("{ms:.2}")),
            run.errors
        );
        println!(
            "target {}: a swap under {connections} connections takes <= 1 s and fails no request",
            if swapped <= Duration::from_secs(1) && run.errors == 0 && replaced {
                "met"
            } else {
                "MISSED"
            }
        );
    }
}

/// `component` with a custom section appended: other bytes, same meaning.
/// The section holds the time too, so that no earlier run's cache entry
/// matches and every swap compiles.
fn with_custom_section(component: &[u8], generation: u8) -> Vec<u8> {
    let name = b"dbagent-bench-generation";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.push(generation);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    payload.extend_from_slice(&now.to_le_bytes());
    let mut out = component.to_vec();
    out.push(0); // custom section id
    out.push(payload.len() as u8); // LEB128, under 128
    out.extend_from_slice(&payload);
    out
}
