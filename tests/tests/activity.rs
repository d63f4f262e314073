//! The activity API (temBoard's) against a real cluster: backends, lock
//! waits and blockers, and terminating backends.

use dbagent_tests::{Agent, AgentOptions, PgCluster, wait_for};
use serde_json::{Value, json};
use std::sync::mpsc;
use std::time::Duration;

fn rows(body: &Value) -> &Vec<Value> {
    body["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no \"rows\" array in {body}"))
}

fn row_for(body: &Value, pid: i32) -> Option<&Value> {
    rows(body).iter().find(|row| row["pid"] == json!(pid))
}

fn backend_pid(client: &mut postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0)
}

/// `^\d+\.\d\d(B|K|M|G|T|P)$`, temBoard's human-readable rate.
fn is_human_rate(text: &str) -> bool {
    let Some((number, unit)) = text.split_at_checked(text.len().saturating_sub(1)) else {
        return false;
    };
    let Some((whole, fraction)) = number.split_once('.') else {
        return false;
    };
    ["B", "K", "M", "G", "T", "P"].contains(&unit)
        && !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.len() == 2
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn human_rate_pattern() {
    assert!(is_human_rate("0.00B") && is_human_rate("12.50K"));
    assert!(!is_human_rate("1.0B") && !is_human_rate(".00B") && !is_human_rate("1.00X"));
}

#[test]
fn lists_client_backends_but_not_the_agents_own() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let mut session = cluster.connect("postgres");
    let pid = backend_pid(&mut session);
    session
        .batch_execute("SELECT 'dbagent-test-marker'")
        .unwrap();

    let (status, body) = agent.get("/activity");
    assert_eq!(status, 200, "GET /activity: {body}");
    let row = row_for(&body, pid).unwrap_or_else(|| panic!("pid {pid} not in {body}"));
    assert_eq!(row["database"], "postgres", "{row}");
    assert_eq!(row["user"], "postgres", "{row}");
    assert_eq!(
        row["client"],
        Value::Null,
        "a socket connection has no client address: {row}"
    );
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(row["query"], "SELECT 'dbagent-test-marker'", "{row}");
    assert_eq!(row["wait"], "N", "{row}");
    assert!(row["cpu"].is_number() && row["memory"].is_number(), "{row}");
    assert!(row["duration"].is_number(), "{row}");
    for key in ["read_s", "write_s"] {
        assert!(
            row[key].as_str().is_some_and(is_human_rate),
            "{key} is a human-readable rate: {row}"
        );
    }
    assert!(row["iow"] == "Y" || row["iow"] == "N", "{row}");

    // The agent's pool keeps its connections open, tagged 'dbagent'.
    let own: Vec<i32> = session
        .query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'dbagent'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        !own.is_empty(),
        "the agent holds no connection to check against"
    );
    let (_, body) = agent.get("/activity");
    for own_pid in own {
        assert!(
            row_for(&body, own_pid).is_none(),
            "the agent's own backend {own_pid} is listed: {body}"
        );
    }
}

#[test]
fn limit_parameter() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let _first = cluster.connect("postgres");
    let _second = cluster.connect("postgres");

    let (status, body) = agent.get("/activity?limit=1");
    assert_eq!(status, 200, "{body}");
    assert!(rows(&body).len() <= 1, "limit=1 gave {body}");
    let (status, body) = agent.get("/activity");
    assert_eq!(status, 200, "{body}");
    assert!(rows(&body).len() >= 2, "both sessions are listed: {body}");

    assert_eq!(
        agent.get("/activity?limit=abc"),
        (406, json!({"error": "Parameter 'limit' is malformed."}))
    );
}

#[test]
fn lock_conflict_waiting_blocking_and_kill() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let mut setup = cluster.connect("postgres");
    setup
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1);")
        .unwrap();

    let mut holder = cluster.connect("postgres");
    let holder_pid = backend_pid(&mut holder);
    holder
        .batch_execute("BEGIN; UPDATE t SET v = v WHERE id = 1;")
        .unwrap();

    let mut waiter = cluster.connect("postgres");
    let waiter_pid = backend_pid(&mut waiter);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = waiter.execute("UPDATE t SET v = 2 WHERE id = 1", &[]);
        let _ = done_tx.send(result.map_err(|e| e.to_string()));
    });

    let timeout = Duration::from_secs(30);
    let waiting = wait_for("the waiter in /activity/waiting", timeout, || {
        let (status, body) = agent.get("/activity/waiting");
        assert_eq!(status, 200, "GET /activity/waiting: {body}");
        row_for(&body, waiter_pid).cloned()
    });
    assert!(
        ["transactionid", "tuple", "relation"].contains(&waiting["type"].as_str().unwrap_or("")),
        "lock type: {waiting}"
    );
    assert!(
        waiting["mode"]
            .as_str()
            .is_some_and(|m| m.ends_with("Lock")),
        "{waiting}"
    );
    assert!(
        waiting["query"]
            .as_str()
            .is_some_and(|q| q.contains("UPDATE t SET v = 2")),
        "{waiting}"
    );

    let blocking = wait_for("the holder in /activity/blocking", timeout, || {
        let (status, body) = agent.get("/activity/blocking");
        assert_eq!(status, 200, "GET /activity/blocking: {body}");
        row_for(&body, holder_pid).cloned()
    });
    assert!(
        blocking["mode"]
            .as_str()
            .is_some_and(|m| m.ends_with("Lock")),
        "{blocking}"
    );

    let (status, body) = agent.get("/activity");
    assert_eq!(status, 200, "{body}");
    let row = row_for(&body, waiter_pid).unwrap_or_else(|| panic!("waiter not in {body}"));
    assert_eq!(row["wait"], "Y", "the waiter waits: {row}");
    assert_eq!(
        done_rx.try_recv(),
        Err(mpsc::TryRecvError::Empty),
        "the waiter did not wait"
    );

    assert_eq!(
        agent.post_json("/activity/kill", &format!(r#"{{"pids": [{holder_pid}]}}"#)),
        (
            200,
            json!({"backends": [{"pid": holder_pid, "killed": true}]})
        )
    );
    let finished = done_rx
        .recv_timeout(timeout)
        .expect("the waiter's UPDATE did not finish once the holder was killed");
    assert_eq!(finished, Ok(1), "the waiter's UPDATE");
    assert!(
        holder.is_valid(Duration::from_secs(5)).is_err(),
        "the holder survived"
    );
}

#[test]
fn kill_rejects_malformed_bodies_and_reports_non_backends() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    assert_eq!(
        agent.post_json("/activity/kill", r#"{"pids": [999999]}"#),
        (200, json!({"backends": [{"pid": 999999, "killed": false}]}))
    );
    for body in [r#"{"pids": "x"}"#, r#"{"pids": [1, "a"]}"#, "{}"] {
        assert_eq!(
            agent.post_json("/activity/kill", body),
            (406, json!({"error": "Parameter 'pids' is malformed."})),
            "body {body}"
        );
    }
}

#[test]
fn postgresql_down_is_503_and_the_agent_reconnects_by_itself() {
    let mut cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    // Fill the agent's pool first, so the restart leaves it stale connections.
    assert_eq!(agent.get("/activity").0, 200);

    cluster.stop();
    let (status, body) = agent.get("/activity");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("PostgreSQL is unavailable")),
        "{body}"
    );

    cluster.restart();
    let (status, body) = agent.get("/activity");
    assert_eq!(status, 200, "no agent restart needed: {body}");
}

#[test]
fn kill_with_a_body_that_is_not_json_is_400() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    for body in ["not json", "", r#"{"pids": [1"#] {
        assert_eq!(
            agent.post_json("/activity/kill", body),
            (400, json!({"error": "Invalid json format"})),
            "body {body:?}"
        );
    }
}

#[test]
fn a_pid_listed_twice_is_killed_and_reported_once() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let mut victim = cluster.connect("postgres");
    let pid = backend_pid(&mut victim);
    let (status, body) = agent.post_json(
        "/activity/kill",
        &format!(r#"{{"pids": [{pid}, 999999, {pid}, 999999]}}"#),
    );
    assert_eq!(
        (status, body),
        (
            200,
            json!({"backends": [
                {"pid": pid, "killed": true},
                {"pid": 999999, "killed": false},
            ]})
        )
    );
    let (_, feed) = agent.get("/notifications");
    let kills = feed
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["message"] == format!("Backend {pid} terminated"))
        .count();
    assert_eq!(kills, 1, "{feed}");
}

#[test]
fn malformed_escapes_in_a_query_string_are_406() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    for path in ["/activity", "/activity/waiting", "/activity/blocking"] {
        for query in ["limit=%zz", "limit=1%+0", "limit=%", "limit=5&x=%2"] {
            let (status, body) = agent.get(&format!("{path}?{query}"));
            assert_eq!(status, 406, "GET {path}?{query}: {body}");
            assert!(
                body["error"]
                    .as_str()
                    .is_some_and(|e| e.ends_with("is malformed.")),
                "GET {path}?{query}: {body}"
            );
        }
        assert_eq!(agent.get(&format!("{path}?limit=%35")).0, 200, "{path}");
    }
    // In a path, a malformed escape names nothing: 404.
    for path in ["/activity/%zz", "/activity/kil%", "/activity/%+1"] {
        assert_eq!(agent.get(path).0, 404, "GET {path}");
    }
}
