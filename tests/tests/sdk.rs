//! The SDK as a plugin author outside this repository gets it: the example
//! plugin copied out of the repository, depending on the SDK crate alone
//! (whose own copy of the WIT it builds against), built, and served by an
//! agent that was built without it.

use dbagent_tests::{Agent, AgentOptions, PgCluster, target_dir};
use serde_json::json;
use std::path::Path;
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

#[test]
fn the_example_plugin_builds_outside_the_repository_and_serves() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let crate_dir = outside.path().join("hello");
    copy_dir(&repo.join("examples/hello"), &crate_dir);
    // Its own workspace, and the SDK by absolute path: nothing of the
    // repository but the SDK crate itself.
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    let sdk = repo.join("sdk");
    let manifest = manifest.replace(
        "dbagent-sdk = { path = \"../../sdk\" }",
        &format!("dbagent-sdk = {{ path = {:?} }}", sdk.display().to_string()),
    );
    assert!(manifest.contains(&sdk.display().to_string()), "{manifest}");
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        format!("{manifest}\n[workspace]\n\n[profile.release]\nopt-level = \"s\"\nstrip = true\n"),
    )
    .unwrap();
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
        "the example does not build outside the repository"
    );
    let wasm = target_dir().join("wasm-outside/wasm32-wasip2/release/hello.wasm");

    let cluster = PgCluster::start();
    let mut agent = Agent::start(&cluster, AgentOptions::new());
    let plugins = agent.dir().join("plugins");
    std::fs::copy(&wasm, plugins.join("hello.wasm")).unwrap();
    std::fs::copy(crate_dir.join("plugin.toml"), plugins.join("hello.toml")).unwrap();
    let config = std::fs::read_to_string(agent.config_path()).unwrap();
    std::fs::write(
        agent.config_path(),
        format!("{config}\n[plugin.hello]\ngrants = [\"log\"]\n"),
    )
    .unwrap();
    agent.restart().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(agent.get("/hello/ping"), (200, json!({"pong": true})));
}
