//! The plugin runtime seen from outside: deadlines, memory limits, panics,
//! grants, route conflicts, drop-in plugins and the compiled-code cache.

use dbagent_tests::{Agent, AgentOptions, PgCluster, StartFailure, error_text};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The host answers its own route, a bundled plugin and a drop-in plugin.
fn assert_still_serving(agent: &Agent) {
    let (status, body) = agent.get("/ping");
    assert_eq!(status, 200, "GET /ping: {body}");
    let (status, body) = agent.get("/activity");
    assert_eq!(status, 200, "GET /activity: {body}");
    let (status, body) = agent.get("/hello/ping");
    assert_eq!(status, 200, "GET /hello/ping: {body}");
}

/// The agent's start-up, which must be refused. Without a cluster, the
/// agent points at a PostgreSQL that does not exist: refusals come before
/// any connection.
fn refusal(cluster: Option<&PgCluster>, opts: AgentOptions) -> StartFailure {
    let started = match cluster {
        Some(cluster) => Agent::try_start(cluster, opts),
        None => Agent::try_start_without_postgres(opts),
    };
    match started {
        Ok(agent) => panic!(
            "the agent started but should have refused to; its log:\n{}",
            agent.log_text()
        ),
        Err(failure) => {
            let status = failure
                .status
                .unwrap_or_else(|| panic!("the agent hung instead of exiting: {failure}"));
            assert!(
                !status.success(),
                "the agent exited with success: {failure}"
            );
            failure
        }
    }
}

#[test]
fn endless_loop_is_stopped_by_the_deadline() {
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .plugin("spin")
            .plugin("hello")
            .config("[plugin.spin]\ngrants = []\ntimeout_secs = 2")
            .config("[plugin.hello]\ngrants = [\"log\"]"),
    );
    let started = Instant::now();
    let (status, body) = agent.get("/spin");
    let elapsed = started.elapsed();
    assert_eq!(status, 504, "GET /spin: {body}");
    assert!(
        error_text(&body).contains("spin"),
        "error names the plugin: {body}"
    );
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed <= Duration::from_secs(10),
        "the 2 s deadline took {elapsed:?}"
    );
    assert_still_serving(&agent);
}

#[test]
fn memory_hog_is_trapped_at_its_limit() {
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .plugin("hog")
            .plugin("hello")
            .config("[plugin.hog]\ngrants = []\nmemory_mib = 16")
            .config("[plugin.hello]\ngrants = [\"log\"]"),
    );
    for _ in 0..2 {
        let (status, body) = agent.get("/hog");
        assert_eq!(status, 500, "GET /hog: {body}");
        assert!(
            error_text(&body).contains("hog"),
            "error names the plugin: {body}"
        );
        assert!(
            error_text(&body).contains("memory limit of 16 MiB"),
            "error says the memory limit was hit: {body}"
        );
    }
    assert_still_serving(&agent);
}

#[test]
fn panic_message_reaches_the_client() {
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .plugin("panicky")
            .plugin("hello")
            .config("[plugin.panicky]\ngrants = []")
            .config("[plugin.hello]\ngrants = [\"log\"]"),
    );
    let (status, body) = agent.get("/panicky");
    assert_eq!(status, 500, "GET /panicky: {body}");
    assert!(
        error_text(&body).contains("deliberate panic for the test"),
        "the panic message is in the error: {body}"
    );
    assert_still_serving(&agent);
}

#[test]
fn plugin_importing_ungranted_capability_is_refused() {
    for config in ["[plugin.greedy]\ngrants = [\"log\"]", ""] {
        let failure = refusal(None, AgentOptions::new().plugin("greedy").config(config));
        assert!(
            failure.log.contains("greedy") && failure.log.contains("postgres"),
            "the refusal names the plugin and the capability (config {config:?}): {failure}"
        );
    }
}

#[test]
fn granted_capability_is_usable() {
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .plugin("greedy")
            .config("[plugin.greedy]\ngrants = [\"postgres\"]"),
    );
    let (status, body) = agent.get("/greedy");
    assert_eq!((status, body), (200, json!({"rows": 1})));
}

#[test]
fn duplicate_route_prefix_is_refused() {
    let failure = refusal(
        None,
        AgentOptions::new()
            .plugin("dup")
            .config("[plugin.dup]\ngrants = []"),
    );
    assert!(
        failure.log.contains("activity") && failure.log.contains("dup"),
        "the refusal names both plugins: {failure}"
    );
}

#[test]
fn unknown_path_is_a_json_404() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let (status, body) = agent.get("/nope");
    assert_eq!(status, 404, "GET /nope: {body}");
    error_text(&body);
}

#[test]
fn example_plugin_as_a_drop_in() {
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .plugin("hello")
            .config("[plugin.hello]\ngrants = [\"log\"]"),
    );
    assert_eq!(agent.get("/hello/ping"), (200, json!({"pong": true})));
    assert_eq!(agent.get("/ping"), (200, json!({"pong": true})));
    assert_eq!(
        agent.get("/hello/echo?name=x%20y"),
        (200, json!({"name": "x y"}))
    );
    let (status, body) = agent.get("/hello");
    assert_eq!(status, 200, "GET /hello: {body}");
    assert!(
        body["hello"].as_str().is_some_and(|name| !name.is_empty()),
        "GET /hello greets someone: {body}"
    );
    // The plugin's log line reaches the agent's log.
    dbagent_tests::wait_for("the plugin's log line", Duration::from_secs(5), || {
        agent.log_text().contains("saying hello to").then_some(())
    });
}

#[test]
fn example_plugin_without_its_grant_is_refused() {
    let failure = refusal(None, AgentOptions::new().plugin("hello"));
    assert!(
        failure.log.contains("hello") && failure.log.contains("log"),
        "the refusal names the plugin and the capability: {failure}"
    );
}

/// Every file under `dir` with its modification time.
fn files_with_mtimes(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                out.insert(entry.path(), meta.modified().unwrap());
            }
        }
    }
    out
}

#[test]
fn restart_reuses_the_compiled_code_cache() {
    let cluster = PgCluster::start();
    let cache = tempfile::tempdir().unwrap();
    let mut agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .plugin("hello")
            .config("[plugin.hello]\ngrants = [\"log\"]")
            .cache_dir(cache.path()),
    );
    let first = files_with_mtimes(cache.path());
    // One file per component at least: the bundled activity plugin and hello.
    assert!(
        first.len() >= 2,
        "the cache holds the compiled plugins after the first start: {first:?}"
    );
    // A cold cache is filled by a child `dbagent compile`: the compiler's
    // memory leaves with it.
    let log = agent.log_text();
    assert!(
        log.contains("compiling plugins ahead in a child process"),
        "{log}"
    );
    assert!(log.contains("plugins compiled"), "{log}");
    assert!(
        !log.contains("plugins::cache: compiled plugin"),
        "the agent compiled in-process: {log}"
    );
    let resident_mib = agent.resident_bytes() / (1 << 20);
    println!("agent resident after a cold start: {resident_mib} MiB");
    assert!(resident_mib < 200, "{resident_mib} MiB");

    agent
        .restart()
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(agent.get("/hello/ping"), (200, json!({"pong": true})));
    let second = files_with_mtimes(cache.path());
    assert_eq!(first, second, "the second start rewrote the cache");
    let log = agent.log_text();
    assert!(
        !log.contains("compiling plugins ahead"),
        "a warm start compiles: {log}"
    );

    // `dbagent compile` finds nothing to do either.
    let said = agent.compile_ahead();
    assert!(said.starts_with("compiled 0 plugin(s); "), "{said}");
    assert_eq!(files_with_mtimes(cache.path()), first);
}

#[test]
fn dbagent_compile_fills_the_cache_ahead_of_a_start() {
    let cluster = PgCluster::start();
    let cache = tempfile::tempdir().unwrap();
    let mut agent = Agent::start(&cluster, AgentOptions::new().cache_dir(cache.path()));
    // Emptied, then filled by the command, not by a start.
    agent.signal(libc::SIGKILL);
    for entry in std::fs::read_dir(cache.path()).unwrap().flatten() {
        std::fs::remove_file(entry.path()).unwrap();
    }
    let said = agent.compile_ahead();
    assert!(
        said.contains("activity") && said.contains("; 0 already in"),
        "{said}"
    );
    let filled = files_with_mtimes(cache.path());
    agent
        .restart()
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(agent.get("/activity").0, 200);
    assert_eq!(
        files_with_mtimes(cache.path()),
        filled,
        "the start compiled"
    );
    assert!(!agent.log_text().contains("compiling plugins ahead"));
}

#[test]
fn plugins_get_no_filesystem_environment_or_network() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new().plugin("prober"));
    // The agent's own HTTP port is certainly listening on 127.0.0.1.
    let port = agent
        .url("")
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let (status, body) = agent.get(&format!("/prober?port={port}"));
    assert_eq!(status, 200, "{body}");
    for probe in ["read_file", "read_dir", "tcp"] {
        assert!(
            body[probe]
                .as_str()
                .is_some_and(|o| o.starts_with("denied")),
            "{probe} must be denied: {body}"
        );
    }
    assert_eq!(body["env"], json!(0), "no environment variables: {body}");
}

#[test]
fn control_capability_is_reserved_to_the_bundled_administration_plugin() {
    let cluster = PgCluster::start();
    let failure = refusal(
        Some(&cluster),
        AgentOptions::new()
            .plugin("usurper")
            .config("[plugin.usurper]\ngrants = [\"control\"]"),
    );
    assert!(
        failure.log.contains("usurper") && failure.log.contains("administration"),
        "the refusal names the plugin and who may have the capability: {failure}"
    );
    // The server is still up: nothing ran.
    cluster
        .connect("postgres")
        .simple_query("SELECT 1")
        .unwrap();
}

#[test]
fn a_drop_in_built_against_a_narrower_world_loads_and_serves() {
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .plugin("narrow")
            .config("[plugin.narrow]\ngrants = [\"postgres\", \"log\"]"),
    );
    let (status, body) = agent.get("/narrow");
    assert_eq!((status, body), (200, json!({"sum": 42})));
    // It schedules no jobs and exports no lifecycle: start-up ran no hook for it.
    assert!(!agent.log_text().contains("plugin start-up hook failed"));
}
