//! The SDK as a plugin author outside this repository gets it: the example
//! plugin copied out of the repository, depending on the SDK crate alone
//! (whose own copy of the WIT it builds against), built, and served by an
//! agent that was built without it.

use dbagent_tests::{Agent, AgentOptions, PgCluster, Redis, target_dir};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// Copies `examples/<example>` out of the repository, points its SDK
/// dependency at the SDK crate by absolute path (nothing else of the
/// repository), builds it for wasm32-wasip2 and returns the crate's copy
/// and its component.
fn build_outside(outside: &Path, example: &str, wasm_name: &str) -> (PathBuf, PathBuf) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let crate_dir = outside.join(example);
    copy_dir(&repo.join("examples").join(example), &crate_dir);
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    let sdk = repo.join("sdk");
    let mut manifest = manifest.replace(
        "path = \"../../sdk\"",
        &format!("path = {:?}", sdk.display().to_string()),
    );
    assert!(manifest.contains(&sdk.display().to_string()), "{manifest}");
    // Its own workspace, not the examples'.
    if !manifest.contains("[workspace]") {
        manifest.push_str("\n[workspace]\n\n[profile.release]\nopt-level = \"s\"\nstrip = true\n");
    }
    std::fs::write(crate_dir.join("Cargo.toml"), manifest).unwrap();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&crate_dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        // Shared with the other guest builds, so dependencies build once.
        .arg(target_dir().join("wasm-outside"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("run cargo");
    assert!(
        status.success(),
        "examples/{example} does not build outside the repository"
    );
    let wasm = target_dir().join(format!(
        "wasm-outside/wasm32-wasip2/release/{wasm_name}.wasm"
    ));
    (crate_dir, wasm)
}

/// Installs a built component and its manifest as drop-in `name`.
fn install(agent: &Agent, name: &str, wasm: &Path, manifest: &Path) {
    let plugins = agent.dir().join("plugins");
    std::fs::copy(wasm, plugins.join(format!("{name}.wasm"))).unwrap();
    std::fs::copy(manifest, plugins.join(format!("{name}.toml"))).unwrap();
}

#[test]
fn the_example_plugin_builds_outside_the_repository_and_serves() {
    let outside = tempfile::tempdir().unwrap();
    let (crate_dir, wasm) = build_outside(outside.path(), "hello", "hello");

    let cluster = PgCluster::start();
    let mut agent = Agent::start(&cluster, AgentOptions::new());
    install(&agent, "hello", &wasm, &crate_dir.join("plugin.toml"));
    let config = std::fs::read_to_string(agent.config_path()).unwrap();
    std::fs::write(
        agent.config_path(),
        format!("{config}\n[plugin.hello]\ngrants = [\"log\"]\n"),
    )
    .unwrap();
    agent.restart().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(agent.get("/hello/ping"), (200, json!({"pong": true})));
}

/// A vendor's action module, built outside the repository against the SDK
/// alone, adds an action to an engine of an agent built without it; it
/// runs only with its grant, only for its engine, and cannot import what
/// its manifest does not declare.
#[test]
fn a_vendor_action_module_built_outside_the_repository_serves_its_engine() {
    let outside = tempfile::tempdir().unwrap();
    let (crate_dir, wasm) = build_outside(
        outside.path(),
        "vendor-action-module",
        "redis_memory_doctor",
    );
    let manifest = crate_dir.join("plugin.toml");
    let redis = Redis::start();
    let databases = format!(
        "[databases.cache]\nengine = \"redis\"\nhost = \"127.0.0.1\"\nport = {}\n\n\
         [databases.shop]\nengine = \"mysql\"\nhost = \"127.0.0.1\"\nport = {}\n",
        redis.port(),
        dbagent_tests::free_port(),
    );
    let mut agent = Agent::try_start_without_postgres(AgentOptions::new().config(&databases))
        .unwrap_or_else(|f| panic!("{f}"));
    let actions = |agent: &Agent, id: &str| -> Vec<String> {
        agent.get_ok(&format!("/api/databases/{id}/actions"))["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!actions(&agent, "cache").contains(&"memory-doctor".to_string()));

    // Dropped in without its grant: the agent refuses to start, naming it.
    install(&agent, "redis-memory-doctor", &wasm, &manifest);
    let failure = agent.restart().expect_err("a drop-in without its grant");
    assert!(
        failure.log.contains("redis-memory-doctor") && failure.log.contains("'redis'"),
        "{failure}"
    );

    // Granted: served beside the bundled Redis actions.
    let config = std::fs::read_to_string(agent.config_path()).unwrap();
    let granted = format!("{config}\n[plugin.redis-memory-doctor]\ngrants = [\"redis\"]\n");
    std::fs::write(agent.config_path(), &granted).unwrap();
    agent.restart().unwrap_or_else(|e| panic!("{e}"));
    let offered = actions(&agent, "cache");
    assert!(
        offered.contains(&"memory-doctor".to_string()),
        "{offered:?}"
    );
    assert!(offered.contains(&"redis-info".to_string()), "{offered:?}");
    let (status, body) = agent.post_json(
        "/api/databases/cache/action",
        &json!({"action_name": "memory-doctor"}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], 1);
    assert!(
        body["result"]["advice"]
            .as_str()
            .is_some_and(|a| !a.is_empty()),
        "{body}"
    );
    assert!(
        body["result"]["used_memory"]
            .as_u64()
            .is_some_and(|m| m > 0),
        "{body}"
    );

    // Only for its engine: a MySQL database does not offer it.
    assert!(!actions(&agent, "shop").contains(&"memory-doctor".to_string()));
    let (status, body) = agent.post_json(
        "/api/databases/shop/action",
        &json!({"action_name": "memory-doctor"}).to_string(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("engine 'mysql'"),
        "{body}"
    );

    // A manifest that does not declare the engine's capability cannot
    // import it: the agent refuses the module.
    let undeclared = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("capabilities = [\"redis\"]", "capabilities = []");
    std::fs::write(
        agent.dir().join("plugins/redis-memory-doctor.toml"),
        undeclared,
    )
    .unwrap();
    let failure = agent
        .restart()
        .expect_err("an import its manifest does not declare");
    assert!(
        failure.log.contains("does not declare capability 'redis'"),
        "{failure}"
    );
}
