//! `POST /administration/control` over real HTTP: pg_ctl run by the agent
//! on the test's own cluster, and the agent following the server down and
//! back up without being restarted.

use dbagent_tests::{Agent, AgentOptions, PgCluster, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

fn control(agent: &Agent, action: &str) -> (u16, Value) {
    agent.post_json(
        "/administration/control",
        &json!({ "action": action }).to_string(),
    )
}

fn messages(agent: &Agent) -> Vec<String> {
    let (status, feed) = agent.get("/notifications");
    assert_eq!(status, 200, "{feed}");
    feed.as_array()
        .expect("a list")
        .iter()
        .filter_map(|n| n["message"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn stop_then_start_without_restarting_the_agent() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    assert_eq!(agent.get("/activity").0, 200);

    assert_eq!(
        control(&agent, "stop"),
        (200, json!({"action": "stop", "state": "ok"}))
    );
    let (status, body) = agent.get("/activity");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("PostgreSQL is unavailable")),
        "{body}"
    );
    assert_eq!(agent.get("/pgconf/configuration/status").0, 503);

    assert_eq!(
        control(&agent, "start"),
        (200, json!({"action": "start", "state": "ok"}))
    );
    let (status, body) = agent.get("/activity");
    assert_eq!(status, 200, "{body}");
    cluster
        .connect("postgres")
        .simple_query("SELECT 1")
        .unwrap();

    let feed = messages(&agent);
    assert!(
        feed.iter().any(|m| m == "PostgreSQL stop") && feed.iter().any(|m| m == "PostgreSQL start"),
        "{feed:?}"
    );
}

#[test]
fn restart_applies_a_pending_setting() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let (status, body) = agent.post_json(
        "/pgconf/configuration",
        r#"{"settings": [{"name": "shared_buffers", "setting": "256MB"}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    wait_for("restart_pending", Duration::from_secs(10), || {
        let (_, body) = agent.get("/pgconf/configuration/status");
        (body["restart_pending"] == true).then_some(())
    });
    assert_eq!(
        control(&agent, "restart"),
        (200, json!({"action": "restart", "state": "ok"}))
    );
    let (status, body) = agent.get("/pgconf/configuration/status");
    assert_eq!(
        (status, body),
        (
            200,
            json!({"restart_pending": false, "restart_changes": []})
        )
    );
    let shown: String = cluster
        .connect("postgres")
        .query_one("SHOW shared_buffers", &[])
        .unwrap()
        .get(0);
    assert_eq!(shown, "256MB");
    assert!(messages(&agent).iter().any(|m| m == "PostgreSQL restart"));
}

#[test]
fn reload_rereads_the_configuration() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    cluster
        .connect("postgres")
        .batch_execute("ALTER SYSTEM SET log_min_duration_statement = '1234ms'")
        .unwrap();
    assert_eq!(
        control(&agent, "reload"),
        (200, json!({"action": "reload", "state": "ok"}))
    );
    wait_for("the reloaded value", Duration::from_secs(10), || {
        let shown: String = cluster
            .connect("postgres")
            .query_one("SHOW log_min_duration_statement", &[])
            .unwrap()
            .get(0);
        (shown == "1234ms").then_some(())
    });
}

#[test]
fn anything_but_the_four_actions_is_malformed() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let malformed = json!({"error": "Parameter 'action' is malformed."});
    for body in [
        r#"{"action": "promote"}"#,
        r#"{"action": "START"}"#,
        r#"{"action": ["stop"]}"#,
        r#"{}"#,
        r#"["stop"]"#,
        "",
        "{not json",
    ] {
        assert_eq!(
            agent.post_json("/administration/control", body),
            (406, malformed.clone()),
            "{body:?}"
        );
    }
    // Nothing was done: the server still answers.
    cluster
        .connect("postgres")
        .simple_query("SELECT 1")
        .unwrap();
}

#[test]
fn a_failed_pg_ctl_is_a_500_with_its_output() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    // Starting a running server fails: pg_ctl says so.
    let (status, body) = control(&agent, "start");
    assert_eq!(status, 500, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("pg_ctl start failed") && error.contains("another server might be running"),
        "{error}"
    );
    assert!(
        messages(&agent)
            .iter()
            .any(|m| m == "PostgreSQL start failed")
    );
    assert_eq!(agent.get("/activity").0, 200);
}
