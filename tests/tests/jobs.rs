//! The host's jobs: periodic jobs run at their interval, their state
//! survives a restart, and a job that panics is recorded as failed without
//! stopping the next runs.

use dbagent_tests::{Agent, AgentOptions, PgCluster, wait_for};
use serde_json::Value;
use std::time::Duration;

fn ticker(cluster: &PgCluster) -> Agent {
    Agent::start(
        cluster,
        AgentOptions::new()
            .plugin("ticker")
            .config("[plugin.ticker]\ngrants = [\"store\", \"jobs\"]"),
    )
}

fn status(agent: &Agent) -> Value {
    let (code, body) = agent.get("/ticker");
    assert_eq!(code, 200, "{body}");
    body
}

fn job<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == name))
        .unwrap_or_else(|| panic!("no job {name}: {status}"))
}

#[test]
fn periodic_jobs_run_fail_cleanly_and_survive_restart() {
    let cluster = PgCluster::start();
    let mut agent = ticker(&cluster);

    let first = wait_for("three ticks", Duration::from_secs(20), || {
        let s = status(&agent);
        (s["count"].as_u64()? >= 3).then_some(s)
    });
    let tick = job(&first, "tick");
    assert_eq!(tick["every_ms"], 300);
    assert!(tick["id"].as_str().is_some_and(|id| id.len() == 8));

    // The panicking job is recorded as failed with the panic, and keeps running.
    let boom = wait_for("two failed boom runs", Duration::from_secs(20), || {
        let s = status(&agent);
        let boom = job(&s, "boom").clone();
        (boom["runs"].as_u64()? >= 2).then_some(boom)
    });
    assert_eq!(boom["status"], "failed", "{boom}");
    let reason = boom["last_error"].as_str().unwrap_or_default();
    assert!(reason.contains("the boom job always panics"), "{reason}");
    assert!(
        status(&agent)["count"].as_u64().unwrap() >= 3,
        "tick still runs"
    );

    // Counter and schedule live in the state store: a restart resumes them.
    agent
        .restart()
        .unwrap_or_else(|failure| panic!("{failure}"));
    let before = status(&agent)["count"].as_u64().unwrap();
    assert!(before >= 3, "the counter survived the restart: {before}");
    let id_before = tick["id"].clone();
    wait_for("ticks after the restart", Duration::from_secs(20), || {
        (status(&agent)["count"].as_u64()? > before).then_some(())
    });
    assert_eq!(
        job(&status(&agent), "tick")["id"],
        id_before,
        "the same job, not a new one"
    );
    assert_eq!(status(&agent)["jobs"].as_array().unwrap().len(), 2);
}
