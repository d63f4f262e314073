//! Plugins in Python (componentize-py) and JavaScript (componentize-js):
//! the examples are built from source with the tools `scripts/setup`
//! installs, dropped into a real agent, and called over HTTP: a route, a
//! parameterized query through the `postgres` capability, a raised
//! exception (500 naming the plugin, with the error's line), the memory
//! limit (500), and a refusal without the grant.

use dbagent_tests::{Agent, AgentOptions, PgCluster, target_dir};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `examples/<example>` with its build.sh; the component's path.
fn build(example: &str) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out_dir = target_dir().join("wasm-languages");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(format!("{example}.wasm"));
    let output = Command::new(repo.join("examples").join(example).join("build.sh"))
        .arg(&out)
        .output()
        .expect("run the example's build.sh");
    assert!(
        output.status.success(),
        "examples/{example}/build.sh failed (scripts/setup installs the tools):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

fn install(agent: &Agent, example: &str, wasm: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let plugins = agent.dir().join("plugins");
    std::fs::copy(wasm, plugins.join(format!("{example}.wasm"))).unwrap();
    std::fs::copy(
        repo.join("examples").join(example).join("plugin.toml"),
        plugins.join(format!("{example}.toml")),
    )
    .unwrap();
}

fn grant(agent: &Agent, example: &str) {
    let config = std::fs::read_to_string(agent.config_path()).unwrap();
    std::fs::write(
        agent.config_path(),
        format!("{config}\n[plugin.{example}]\ngrants = [\"postgres\", \"log\"]\n"),
    )
    .unwrap();
}

fn error_of(body: &Value) -> String {
    body["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn python_and_javascript_plugins_serve_query_and_fail_cleanly() {
    // Both builds at once: they take seconds each.
    let (py, js) = std::thread::scope(|s| {
        let py = s.spawn(|| build("hello-py"));
        let js = s.spawn(|| build("hello-js"));
        (py.join().unwrap(), js.join().unwrap())
    });
    let cluster = PgCluster::start();
    let mut agent = Agent::start(&cluster, AgentOptions::new());
    install(&agent, "hello-py", &py);
    install(&agent, "hello-js", &js);

    // Without their grants they are refused, by name.
    let failure = agent.restart().expect_err("drop-ins without their grants");
    assert!(
        failure.log.contains("hello-js") || failure.log.contains("hello-py"),
        "{}",
        failure.log
    );
    assert!(failure.log.contains("postgres"), "{}", failure.log);

    grant(&agent, "hello-py");
    grant(&agent, "hello-js");
    agent.restart().unwrap_or_else(|e| panic!("{e}"));

    for (route, language) in [("/hello-py", "python"), ("/hello-js", "javascript")] {
        let (status, body) = agent.get(route);
        assert_eq!(status, 200, "{route}: {body}");
        assert_eq!(body["language"], language);
        assert_eq!(body["hello"], "api-token", "{body}");

        // A bound parameter: a name that would break spliced SQL is data.
        let (status, body) = agent.get(&format!("{route}/databases?prefix=post"));
        assert_eq!(
            (status, body.clone()),
            (200, json!({"databases": ["postgres"]})),
            "{route}"
        );
        let (status, body) = agent.get(&format!(
            "{route}/databases?prefix=x'%3B%20DROP%20TABLE%20t%3B--"
        ));
        assert_eq!(
            (status, body.clone()),
            (200, json!({"databases": []})),
            "{route}"
        );
        assert_eq!(agent.get(&format!("{route}/nosuch")).0, 404);

        // An exception: 500 naming the plugin, with the error's line.
        let (status, body) = agent.get(&format!("{route}/boom"));
        assert_eq!(status, 500, "{route}: {body}");
        let error = error_of(&body);
        let plugin = &route[1..];
        assert!(error.contains(&format!("Plugin '{plugin}'")), "{error}");
        assert!(error.contains(&format!("boom from {plugin}")), "{error}");

        // Past the memory limit: 500, and the plugin keeps serving.
        let (status, body) = agent.get(&format!("{route}/hog"));
        assert_eq!(status, 500, "{route}: {body}");
        assert_eq!(agent.get(route).0, 200);
    }
    let (_, body) = agent.get("/hello-py/boom");
    assert!(
        error_of(&body).contains("RuntimeError"),
        "the traceback's line: {body}"
    );
}

/// componentize-js adds wasi:http unless told not to: the agent refuses
/// such a component at start-up and names the flag.
#[test]
fn a_javascript_plugin_built_with_http_support_is_refused_with_the_flag_to_use() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let example = repo.join("examples/hello-js");
    let work = tempfile::tempdir().unwrap();
    let deps = work.path().join("wit/deps/dbagent-api");
    std::fs::create_dir_all(&deps).unwrap();
    std::fs::copy(
        example.join("wit/world.wit"),
        work.path().join("wit/world.wit"),
    )
    .unwrap();
    for entry in std::fs::read_dir(repo.join("sdk/wit")).unwrap().flatten() {
        std::fs::copy(entry.path(), deps.join(entry.file_name())).unwrap();
    }
    for file in ["app.js", "dbagent.js"] {
        std::fs::copy(example.join(file), work.path().join(file)).unwrap();
    }
    let tool = std::env::var("COMPONENTIZE_JS").unwrap_or_else(|_| {
        format!(
            "{}/js/node_modules/.bin/componentize-js",
            std::env::var("DBAGENT_TEST_OPT").unwrap_or_else(|_| "/opt/dbagent-test".into())
        )
    });
    let output = Command::new(tool)
        .current_dir(work.path())
        .args([
            "app.js",
            "--wit",
            "wit",
            "--world-name",
            "hello-js",
            "-o",
            "with-http.wasm",
        ])
        .output()
        .expect("componentize-js (scripts/setup installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let cluster = PgCluster::start();
    let mut agent = Agent::start(&cluster, AgentOptions::new());
    install(&agent, "hello-js", &work.path().join("with-http.wasm"));
    grant(&agent, "hello-js");
    let failure = agent
        .restart()
        .expect_err("a component importing wasi:http");
    assert!(failure.log.contains("wasi:http"), "{}", failure.log);
    assert!(
        failure.log.contains("--disable http fetch-event"),
        "{}",
        failure.log
    );
}

/// A component using the component model's async ABI (componentize-qjs's
/// default) is refused at start-up with the flag that builds it
/// synchronous; built with it, it loads and serves.
#[test]
fn an_async_abi_component_is_refused_with_the_flag_to_use() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let work = tempfile::tempdir().unwrap();
    let deps = work.path().join("wit/deps/dbagent-api");
    std::fs::create_dir_all(&deps).unwrap();
    std::fs::copy(
        repo.join("examples/hello-js/wit/world.wit"),
        work.path().join("wit/world.wit"),
    )
    .unwrap();
    for entry in std::fs::read_dir(repo.join("sdk/wit")).unwrap().flatten() {
        std::fs::copy(entry.path(), deps.join(entry.file_name())).unwrap();
    }
    std::fs::write(
        work.path().join("tiny.js"),
        "export const handler = {\n  handle(request) {\n    return { status: 200, headers: [], body: new Uint8Array([123, 125]) };\n  },\n};\n",
    )
    .unwrap();
    let tool = format!(
        "{}/js/node_modules/.bin/componentize-qjs",
        std::env::var("DBAGENT_TEST_OPT").unwrap_or_else(|_| "/opt/dbagent-test".into())
    );
    let build = |extra: &[&str], out: &str| {
        let output = Command::new(&tool)
            .current_dir(work.path())
            .args([
                "--wit", "wit", "--js", "tiny.js", "-n", "hello-js", "-o", out,
            ])
            .args(extra)
            .output()
            .expect("componentize-qjs (scripts/setup installs it with componentize-js)");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        work.path().join(out)
    };
    let (async_abi, sync) = (build(&[], "async.wasm"), build(&["--sync"], "sync.wasm"));

    let cluster = PgCluster::start();
    let mut agent = Agent::start(&cluster, AgentOptions::new());
    let plugins = agent.dir().join("plugins");
    std::fs::write(
        plugins.join("tiny.toml"),
        "name = \"tiny\"\nversion = \"0.1.0\"\nroutes = [\"/tiny\"]\ncapabilities = [\"postgres\", \"log\"]\n",
    )
    .unwrap();
    std::fs::copy(&async_abi, plugins.join("tiny.wasm")).unwrap();
    grant(&agent, "tiny");
    let failure = agent.restart().expect_err("an async-ABI component");
    assert!(failure.log.contains("async ABI"), "{}", failure.log);
    assert!(failure.log.contains("--sync"), "{}", failure.log);

    std::fs::copy(&sync, plugins.join("tiny.wasm")).unwrap();
    agent.restart().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(agent.get("/tiny"), (200, json!({})));
}
