//! `dbagent plugin new` in each language: the plugin it writes (outside the
//! repository) builds with its own build script and serves its route from a
//! real agent after one copy and one grant; the Rust one's own test passes.

use dbagent_tests::{Agent, AgentOptions, PgCluster, binary, target_dir};
use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command, what: &str) -> String {
    let output = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{what} failed:\n{said}");
    said
}

/// Writes and builds plugin `name` in `lang` under `dir`; its component.
fn new_plugin(dir: &Path, name: &str, lang: &str) -> std::path::PathBuf {
    let plugin_dir = dir.join(name);
    let said = run(
        Command::new(binary())
            .args(["plugin", "new", name, "--lang", lang, "--dir"])
            .arg(&plugin_dir),
        "dbagent plugin new",
    );
    assert!(said.contains("build.sh"), "{said}");
    let opt = std::env::var("DBAGENT_TEST_OPT").unwrap_or_else(|_| "/opt/dbagent-test".into());
    run(
        Command::new(plugin_dir.join("build.sh"))
            .env(
                "COMPONENTIZE_PY",
                format!("{opt}/componentize-py-venv/bin/componentize-py"),
            )
            .env(
                "COMPONENTIZE_JS",
                format!("{opt}/js/node_modules/.bin/componentize-js"),
            )
            // Shared with the other out-of-tree builds: wit-bindgen builds once.
            .env("CARGO_TARGET_DIR", target_dir().join("wasm-outside"))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS"),
        &format!("{name}/build.sh"),
    );
    plugin_dir.join(format!("{name}.wasm"))
}

#[test]
fn new_plugins_build_and_serve_in_each_language() {
    let outside = tempfile::tempdir().unwrap();
    let built: Vec<(&str, std::path::PathBuf)> = std::thread::scope(|s| {
        let handles: Vec<_> = [
            ("greet-rust", "rust"),
            ("greet-python", "python"),
            ("greet-js", "js"),
        ]
        .into_iter()
        .map(|(name, lang)| {
            let dir = outside.path();
            s.spawn(move || (name, new_plugin(dir, name, lang)))
        })
        .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // The Rust template's own test.
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .arg("test")
            .current_dir(outside.path().join("greet-rust"))
            .env("CARGO_TARGET_DIR", target_dir().join("template-native"))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS"),
        "cargo test of the Rust template",
    );

    let cluster = PgCluster::start();
    let mut agent = Agent::start(&cluster, AgentOptions::new());
    let plugins = agent.dir().join("plugins");
    let mut grants = String::new();
    for (name, wasm) in &built {
        std::fs::copy(wasm, plugins.join(format!("{name}.wasm"))).unwrap();
        std::fs::copy(
            outside.path().join(name).join("plugin.toml"),
            plugins.join(format!("{name}.toml")),
        )
        .unwrap();
        grants.push_str(&format!(
            "\n[plugin.{name}]\ngrants = [\"postgres\", \"log\"]\n"
        ));
    }
    let config = std::fs::read_to_string(agent.config_path()).unwrap();
    std::fs::write(agent.config_path(), format!("{config}{grants}")).unwrap();
    agent.restart().unwrap_or_else(|e| panic!("{e}"));
    for (name, _) in &built {
        let (status, body) = agent.get(&format!("/{name}"));
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["hello"], "api-token", "{name}: {body}");
        assert!(body["databases"].as_i64().unwrap() >= 2, "{name}: {body}");
    }
}
