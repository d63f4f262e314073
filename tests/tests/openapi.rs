//! `GET /openapi.json` describes what the running agent serves, and
//! schemathesis, fuzzing every operation with a session, meets no server
//! error and no answer the description does not allow.

use dbagent_tests::{
    Agent, AgentOptions, Barman, PgCluster, barman_executable, user_add, wait_for,
};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

fn schemathesis() -> PathBuf {
    let opt = std::env::var_os("DBAGENT_TEST_OPT").unwrap_or_else(|| "/opt/dbagent-test".into());
    let st = PathBuf::from(opt).join("schemathesis-venv/bin/st");
    assert!(
        st.is_file(),
        "no schemathesis at {}: run scripts/setup",
        st.display()
    );
    st
}

/// An agent over a cluster with Barman, so that every area has something
/// real behind it, and a session of user alice.
fn agent_with_everything(
    cluster: &PgCluster,
    barman: &Barman,
    targets: &std::path::Path,
) -> (Agent, String) {
    let run_as = if unsafe { libc::geteuid() } == 0 {
        "run_as = \"postgres\"\n"
    } else {
        ""
    };
    let config = format!(
        "[backups]\nbarman = {:?}\nconfig = {:?}\n{run_as}\n\
         [backups.servers.pg.targets.local]\npath = {:?}\n\n\
         [databases.main]\nengine = \"postgresql\"\nmanaged = true\nbarman_server = \"pg\"\n",
        barman_executable().display().to_string(),
        barman.config_path().display().to_string(),
        targets.join("local").display().to_string(),
    );
    let agent = Agent::start(cluster, AgentOptions::new().config(&config));
    user_add(agent.config_path(), "alice", "alice-secret");
    agent.signal(libc::SIGHUP);
    let session = wait_for(
        "alice to be able to log in",
        Duration::from_secs(20),
        || {
            let (status, body) =
                agent.login(r#"{"username": "alice", "password": "alice-secret"}"#);
            (status == 200).then(|| body["session"].as_str().unwrap().to_string())
        },
    );
    (agent, session)
}

/// An agent with the `hello` example as a drop-in (no fragment of its own).
fn agent_with_hello(cluster: &PgCluster) -> Agent {
    Agent::start(
        cluster,
        AgentOptions::new()
            .plugin("hello")
            .config("[plugin.hello]\ngrants = [\"log\"]\n"),
    )
}

#[test]
fn the_description_covers_every_route_with_its_access() {
    let cluster = PgCluster::start();
    let agent = agent_with_hello(&cluster);
    // Open, like /discover: tools fetch it before they have a credential.
    let (status, doc) = dbagent_tests::send(agent.anonymous(reqwest::Method::GET, "/openapi.json"));
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    // Every plugin's routes, and the host's.
    let plugins = agent.get_ok("/plugins");
    for plugin in plugins.as_array().unwrap() {
        for prefix in plugin["routes"].as_array().unwrap() {
            let prefix = prefix.as_str().unwrap();
            assert!(
                paths
                    .keys()
                    .any(|p| p == prefix || p.starts_with(&format!("{prefix}/"))),
                "nothing described under {prefix}"
            );
        }
    }
    for native in [
        "/status",
        "/login",
        "/discover",
        "/plugins",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(native), "{native}");
    }
    // The three schemes, applied by route.
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for scheme in ["session", "bearer", "agentKey"] {
        assert!(schemes.contains_key(scheme), "{scheme}");
    }
    let security = |path: &str, method: &str| -> Value { paths[path][method]["security"].clone() };
    assert_eq!(security("/login", "post"), serde_json::json!([]));
    assert!(
        security("/activity", "get")
            .to_string()
            .contains("agentKey")
    );
    assert!(
        !security("/activity/kill", "post")
            .to_string()
            .contains("agentKey")
    );
    assert_eq!(
        security("/api/databases", "get"),
        serde_json::json!([{"bearer": []}, {"session": []}])
    );
    // A drop-in without a fragment is listed as undescribed; schema names
    // are the plugin's own.
    assert!(
        paths["/hello"]["get"]["summary"]
            .as_str()
            .unwrap()
            .contains("ships no description")
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(
        schemas.keys().any(|k| k.starts_with("activity.")),
        "{:?}",
        schemas.keys()
    );
    assert!(schemas.contains_key("Error"));
}

#[test]
fn schemathesis_meets_no_server_error_and_no_answer_off_the_description() {
    let st = schemathesis();
    let cluster = PgCluster::start();
    let barman = Barman::for_cluster(&cluster);
    barman.backup();
    let targets = tempfile::tempdir().unwrap();
    let (agent, session) = agent_with_everything(&cluster, &barman, targets.path());
    // Schemathesis keeps a cache of what it found in its working directory.
    let workdir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&st)
        .current_dir(workdir.path())
        .arg("run")
        .arg(agent.url("/openapi.json"))
        .args(["-H", &format!("X-Session: {session}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "15",
            // Reproducible: a failure here fails again on a rerun.
            "--seed",
            "20261201",
            // Not fuzzed: what stops the cluster, restores over it, or ends
            // the session the run uses.
            "--exclude-path-regex",
            "^/administration/control$|/pitr/restore$|^/logout$",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It ran every operation but the excluded ones.
    assert!(report.contains("Tested: "), "{report}");
    // The cluster came through it serving.
    assert_eq!(agent.get("/activity").0, 200);
}

#[test]
fn a_drop_in_describes_its_routes_and_a_fragment_out_of_bounds_is_refused() {
    let cluster = PgCluster::start();
    let agent = agent_with_hello(&cluster);
    let fragment = agent.dir().join("plugins/hello.openapi.json");
    std::fs::write(
        &fragment,
        r##"{"paths": {"/hello/ping": {"get": {"operationId": "hello_ping", "responses": {"200": {"description": "pong", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pong"}}}}}}}},
            "components": {"schemas": {"Pong": {"type": "object", "properties": {"pong": {"type": "boolean"}}}}}}"##,
    )
    .unwrap();
    agent.reload_plugins();
    let doc = agent.get_ok("/openapi.json");
    let ping = &doc["paths"]["/hello/ping"]["get"];
    assert_eq!(
        ping["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/hello.Pong",
        "{ping}"
    );
    assert!(doc["components"]["schemas"]["hello.Pong"].is_object());
    // The host's answers and the plugin's access are added.
    assert!(ping["responses"]["500"].is_object() && ping["responses"]["406"].is_object());
    assert_eq!(
        ping["security"],
        serde_json::json!([{"session": []}, {"bearer": []}])
    );

    // A fragment describing another plugin's route: refused, the version
    // in service stays, described as before.
    std::fs::write(&fragment, r#"{"paths": {"/activity/x": {"get": {}}}}"#).unwrap();
    agent.reload_plugins();
    assert_eq!(agent.get_ok("/hello/ping")["pong"], true);
    let refused: Vec<Value> = agent
        .get_ok("/plugins")
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "hello" && p["status"] == "refused")
        .cloned()
        .collect();
    let reason = refused[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("OpenAPI fragment") && reason.contains("\"/activity/x\" is not under"),
        "{reason}"
    );
    assert!(agent.get_ok("/openapi.json")["paths"]["/hello/ping"].is_object());
}
