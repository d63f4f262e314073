//! Maintenance operations over real HTTP: VACUUM, ANALYZE and REINDEX run
//! now or at a time, listed, cancelled (before and while they run), and
//! surviving a `kill -9` of the agent.

use dbagent_tests::{Agent, AgentOptions, PgCluster, wait_for};
use postgres::Client;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const SETUP: &str = r#"
CREATE TABLE city (id int PRIMARY KEY, name text) WITH (autovacuum_enabled = false);
INSERT INTO city SELECT i, 'city ' || i FROM generate_series(1, 2000) i;
CREATE INDEX city_name ON city (name);
CREATE SCHEMA "odd ""schema""";
CREATE TABLE "odd ""schema""".".dotted table" (i int) WITH (autovacuum_enabled = false);
INSERT INTO "odd ""schema""".".dotted table" SELECT generate_series(1, 100);
"#;

fn cluster_with_tables() -> (PgCluster, Client) {
    let cluster = PgCluster::start();
    let mut client = cluster.connect("postgres");
    client.batch_execute(SETUP).unwrap();
    (cluster, client)
}

/// A time `secs` from now in the API's format, from the server's clock.
fn in_secs(client: &mut Client, secs: i32) -> String {
    client
        .query_one(
            "SELECT to_char((now() + make_interval(secs => $1)) AT TIME ZONE 'UTC',
                            'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            &[&f64::from(secs)],
        )
        .unwrap()
        .get(0)
}

/// Waits until the server's clock is a second past `at` (the API's format).
fn wait_past(client: &mut Client, at: &str) {
    wait_for(
        &format!("the server's clock to pass {at}"),
        Duration::from_secs(30),
        || {
            let past: bool = client
                .query_one(
                    "SELECT now() > $1::text::timestamptz + interval '1 second'",
                    &[&at],
                )
                .unwrap()
                .get(0);
            past.then_some(())
        },
    );
}

fn stat(client: &mut Client, column: &str, table: &str) -> Option<String> {
    client
        .query_one(
            &format!("SELECT {column}::text FROM pg_stat_user_tables WHERE relname = $1"),
            &[&table],
        )
        .unwrap()
        .get(0)
}

fn schedule(agent: &Agent, path: &str, body: Value) -> String {
    let (status, answer) = agent.post_json(path, &body.to_string());
    assert_eq!(status, 200, "POST {path} {body}: {answer}");
    let id = answer["id"].as_str().expect("an id").to_string();
    assert!(
        id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    id
}

fn listed(agent: &Agent, path: &str) -> Vec<Value> {
    let (status, body) = agent.get(path);
    assert_eq!(status, 200, "GET {path}: {body}");
    body.as_array().expect("a list").clone()
}

fn status_of(agent: &Agent, kind: &str, id: &str) -> String {
    listed(agent, &format!("/maintenance/{kind}/scheduled"))
        .into_iter()
        .find(|op| op["id"] == id)
        .and_then(|op| op["status"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("operation {id} is not listed"))
}

fn wait_status(agent: &Agent, kind: &str, id: &str, wanted: &str) {
    wait_for(
        &format!("{kind} {id} to be {wanted}"),
        Duration::from_secs(30),
        || (status_of(agent, kind, id) == wanted).then_some(()),
    );
}

fn notifications(agent: &Agent) -> Vec<String> {
    let (_, feed) = agent.get("/notifications");
    feed.as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["message"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn vacuum_now_runs_and_is_recorded() {
    let (cluster, mut client) = cluster_with_tables();
    let agent = Agent::start(&cluster, AgentOptions::new());
    assert_eq!(stat(&mut client, "last_vacuum", "city"), None);
    let id = schedule(
        &agent,
        "/maintenance/postgres/schema/public/table/city/vacuum",
        json!({"mode": "analyze"}),
    );
    wait_status(&agent, "vacuum", &id, "done");
    assert!(stat(&mut client, "last_vacuum", "city").is_some());
    assert!(stat(&mut client, "last_analyze", "city").is_some());
    let entry = listed(
        &agent,
        "/maintenance/postgres/schema/public/table/city/vacuum/scheduled",
    );
    assert_eq!(entry.len(), 1);
    let entry = &entry[0];
    assert_eq!(entry["dbname"], "postgres");
    assert_eq!(entry["schema"], "public");
    assert_eq!(entry["table"], "city");
    assert_eq!(entry["index"], Value::Null);
    assert_eq!(entry["mode"], "analyze");
    assert_eq!(entry["id"], json!(id));
    assert_eq!(entry.as_object().unwrap().len(), 8, "{entry}");
    let feed = notifications(&agent);
    assert!(
        feed.contains(&format!("VACUUM of postgres.public.city (id {id}) done")),
        "{feed:?}"
    );

    // A database-wide VACUUM FULL, FREEZE.
    let id = schedule(
        &agent,
        "/maintenance/postgres/vacuum",
        json!({"mode": "full,freeze"}),
    );
    wait_status(&agent, "vacuum", &id, "done");
}

/// Found by schemathesis: `POST /maintenance/vacuum/vacuum` was taken for
/// `DELETE /maintenance/vacuum/:id` and answered 405.
#[test]
fn databases_named_like_an_operation_are_maintained_too() {
    let (cluster, mut client) = cluster_with_tables();
    let agent = Agent::start(&cluster, AgentOptions::new());
    for name in ["vacuum", "analyze", "reindex"] {
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
    }
    for (db, action) in [
        ("vacuum", "vacuum"),
        ("analyze", "analyze"),
        ("vacuum", "reindex"),
        ("reindex", "vacuum"),
    ] {
        let id = schedule(&agent, &format!("/maintenance/{db}/{action}"), json!({}));
        wait_status(&agent, action, &id, "done");
    }
}

#[test]
fn scheduled_vacuum_waits_for_its_time() {
    let (cluster, mut client) = cluster_with_tables();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let at = in_secs(&mut client, 3);
    let id = schedule(
        &agent,
        "/maintenance/postgres/schema/public/table/city/vacuum",
        json!({"datetime": at}),
    );
    assert_eq!(status_of(&agent, "vacuum", &id), "todo");
    let entry = listed(&agent, "/maintenance/postgres/vacuum/scheduled");
    assert_eq!(entry[0]["datetime"], json!(at));
    assert_eq!(entry[0]["mode"], Value::Null);
    assert_eq!(stat(&mut client, "last_vacuum", "city"), None);
    wait_status(&agent, "vacuum", &id, "done");
    assert!(stat(&mut client, "last_vacuum", "city").is_some());
}

#[test]
fn a_cancelled_operation_never_runs() {
    let (cluster, mut client) = cluster_with_tables();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let at = in_secs(&mut client, 2);
    let id = schedule(
        &agent,
        "/maintenance/postgres/schema/public/table/city/analyze",
        json!({"datetime": at}),
    );
    let delete = |path: &str| dbagent_tests::send(agent.request(Method::DELETE, path));
    assert_eq!(
        delete(&format!("/maintenance/analyze/{id}")),
        (200, json!({"response": "ok"}))
    );
    assert_eq!(status_of(&agent, "analyze", &id), "canceled");
    wait_past(&mut client, &at);
    assert_eq!(stat(&mut client, "last_analyze", "city"), None);
    assert_eq!(status_of(&agent, "analyze", &id), "canceled");

    // Cancelling again, or with another kind's path, or an unknown id.
    assert_eq!(delete(&format!("/maintenance/analyze/{id}")).0, 409);
    assert_eq!(delete(&format!("/maintenance/vacuum/{id}")).0, 404);
    let (status, body) = delete("/maintenance/analyze/00000000");
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("00000000"));
}

#[test]
fn a_running_operation_is_cancelled_on_the_server() {
    let (cluster, mut client) = cluster_with_tables();
    let agent = Agent::start(&cluster, AgentOptions::new());
    // Hold a lock the VACUUM FULL waits for, so that it is still running.
    let mut holder = cluster.connect("postgres");
    holder
        .batch_execute("BEGIN; LOCK TABLE city IN ACCESS SHARE MODE")
        .unwrap();
    let id = schedule(
        &agent,
        "/maintenance/postgres/schema/public/table/city/vacuum",
        json!({"mode": "full"}),
    );
    wait_status(&agent, "vacuum", &id, "doing");
    wait_for(
        "the VACUUM waiting for its lock",
        Duration::from_secs(10),
        || {
            let waiting: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'VACUUM (FULL)%' AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .get(0);
            (waiting == 1).then_some(())
        },
    );
    let (status, body) =
        dbagent_tests::send(agent.request(Method::DELETE, &format!("/maintenance/vacuum/{id}")));
    assert_eq!((status, body), (200, json!({"response": "ok"})));
    wait_for("the VACUUM to be gone", Duration::from_secs(10), || {
        let running: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'VACUUM (FULL)%' AND state = 'active'",
                &[],
            )
            .unwrap()
            .get(0);
        (running == 0).then_some(())
    });
    holder.batch_execute("COMMIT").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status_of(&agent, "vacuum", &id), "canceled");
    assert_eq!(stat(&mut client, "last_vacuum", "city"), None);
}

#[test]
fn a_scheduled_operation_survives_kill_9() {
    let (cluster, mut client) = cluster_with_tables();
    let mut agent = Agent::start(&cluster, AgentOptions::new());
    let at = in_secs(&mut client, 3);
    let id = schedule(
        &agent,
        "/maintenance/postgres/schema/public/table/city/analyze",
        json!({"datetime": at}),
    );
    agent.signal(libc::SIGKILL);
    // Down past the operation's time: it is late when the agent comes back.
    wait_past(&mut client, &at);
    assert_eq!(stat(&mut client, "last_analyze", "city"), None);
    agent.restart().unwrap_or_else(|e| panic!("{e}"));
    wait_status(&agent, "analyze", &id, "done");
    assert!(stat(&mut client, "last_analyze", "city").is_some());
}

#[test]
fn reindex_of_an_index_a_table_and_the_database() {
    let (cluster, mut client) = cluster_with_tables();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let filenode = |client: &mut Client| -> u32 {
        client
            .query_one(
                "SELECT relfilenode FROM pg_class WHERE relname = 'city_name'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let before = filenode(&mut client);
    let id = schedule(
        &agent,
        "/maintenance/postgres/schema/public/index/city_name/reindex",
        json!({}),
    );
    wait_status(&agent, "reindex", &id, "done");
    assert_ne!(filenode(&mut client), before, "the index was rebuilt");
    let entry = listed(
        &agent,
        "/maintenance/postgres/schema/public/reindex/scheduled",
    );
    assert_eq!(entry[0]["index"], "city_name");
    assert_eq!(entry[0]["table"], Value::Null);
    // The reference's alias of the schema listing ignores the table.
    let alias = listed(
        &agent,
        "/maintenance/postgres/schema/public/city_name/table/other/reindex/scheduled",
    );
    assert_eq!(alias.len(), 1);

    let id = schedule(
        &agent,
        "/maintenance/postgres/schema/public/table/city/reindex",
        json!({}),
    );
    wait_status(&agent, "reindex", &id, "done");
    let id = schedule(&agent, "/maintenance/postgres/reindex", json!({}));
    wait_status(&agent, "reindex", &id, "done");
    assert_eq!(listed(&agent, "/maintenance/reindex/scheduled").len(), 3);
    assert_eq!(listed(&agent, "/maintenance/vacuum/scheduled").len(), 0);
}

#[test]
fn names_needing_quotes() {
    let (cluster, mut client) = cluster_with_tables();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let path = "/maintenance/postgres/schema/odd%20%22schema%22/table/.dotted%20table";
    let id = schedule(&agent, &format!("{path}/vacuum"), json!({}));
    wait_status(&agent, "vacuum", &id, "done");
    assert!(stat(&mut client, "last_vacuum", ".dotted table").is_some());
    let entry = listed(&agent, &format!("{path}/vacuum/scheduled"));
    assert_eq!(entry[0]["schema"], "odd \"schema\"");
    assert_eq!(entry[0]["table"], ".dotted table");
}

#[test]
fn refusals() {
    let (cluster, mut client) = cluster_with_tables();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let table = "/maintenance/postgres/schema/public/table/city";
    for (path, body, status, says) in [
        ("/maintenance/nodb/vacuum", json!({}), 404, "nodb"),
        (
            "/maintenance/postgres/schema/nope/table/city/vacuum",
            json!({}),
            404,
            "nope",
        ),
        (
            "/maintenance/postgres/schema/public/table/nope/analyze",
            json!({}),
            404,
            "nope",
        ),
        (
            "/maintenance/postgres/schema/public/index/nope/reindex",
            json!({}),
            404,
            "nope",
        ),
        // An index is not a table, nor a table an index.
        (
            "/maintenance/postgres/schema/public/table/city_name/vacuum",
            json!({}),
            404,
            "city_name",
        ),
        (
            "/maintenance/postgres/schema/public/index/city/reindex",
            json!({}),
            404,
            "city",
        ),
        (
            &format!("{table}/vacuum"),
            json!({"mode": "verbose"}),
            406,
            "mode",
        ),
        (
            &format!("{table}/vacuum"),
            json!({"mode": "full,"}),
            406,
            "mode",
        ),
        (&format!("{table}/vacuum"), json!({"mode": 1}), 406, "mode"),
        (
            &format!("{table}/analyze"),
            json!({"mode": "full"}),
            406,
            "mode",
        ),
        (
            &format!("{table}/vacuum"),
            json!({"datetime": "tomorrow"}),
            406,
            "datetime",
        ),
        (
            &format!("{table}/reindex"),
            json!({"datetime": "2026-02-30T10:00:00Z"}),
            406,
            "datetime",
        ),
        (
            &format!("{table}/vacuum"),
            json!({"datetime": "2026-01-01 10:00:00"}),
            406,
            "datetime",
        ),
    ] {
        let (got, answer) = agent.post_json(path, &body.to_string());
        assert_eq!(got, status, "POST {path} {body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "POST {path} {body}: {answer}");
    }
    let (status, answer) = agent.post_json(&format!("{table}/vacuum"), "{not json");
    assert_eq!(status, 400, "{answer}");
    assert!(listed(&agent, "/maintenance/vacuum/scheduled").is_empty());

    // One operation of a kind per object at a time.
    let at = in_secs(&mut client, 3600);
    let id = schedule(&agent, &format!("{table}/vacuum"), json!({"datetime": at}));
    let (status, answer) = agent.post_json(&format!("{table}/vacuum"), "{}");
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains(&id), "{answer}");
    // Another kind, or another object, is fine.
    schedule(&agent, &format!("{table}/analyze"), json!({"datetime": at}));
    schedule(
        &agent,
        "/maintenance/postgres/vacuum",
        json!({"datetime": at}),
    );
    assert_eq!(listed(&agent, "/maintenance/vacuum/scheduled").len(), 2);
    assert_eq!(
        listed(&agent, &format!("{table}/vacuum/scheduled")).len(),
        1
    );
    assert_eq!(
        listed(
            &agent,
            "/maintenance/postgres/schema/public/vacuum/scheduled"
        )
        .len(),
        1
    );
}

#[test]
fn a_failed_operation_is_recorded_with_its_reason() {
    let (cluster, mut client) = cluster_with_tables();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let at = in_secs(&mut client, 2);
    let id = schedule(
        &agent,
        "/maintenance/postgres/schema/public/table/city/vacuum",
        json!({"datetime": at}),
    );
    // The table is gone by the time the operation runs.
    client.batch_execute("DROP TABLE city").unwrap();
    wait_status(&agent, "vacuum", &id, "failed");
    let feed = notifications(&agent);
    assert!(
        feed.iter().any(|m| m.starts_with(&format!(
            "VACUUM of postgres.public.city (id {id}) failed: "
        )) && m.contains("does not exist")),
        "{feed:?}"
    );
}

#[test]
fn a_far_future_schedule_does_not_block_work_now() {
    let (cluster, mut client) = cluster_with_tables();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let table = "/maintenance/postgres/schema/public/table/city";
    for kind in ["vacuum", "analyze", "reindex"] {
        let later = schedule(
            &agent,
            &format!("{table}/{kind}"),
            json!({"datetime": "2099-01-01T03:00:00Z"}),
        );
        // Now, while the 2099 one waits for its time.
        let now = schedule(&agent, &format!("{table}/{kind}"), json!({}));
        wait_status(&agent, kind, &now, "done");
        assert_eq!(status_of(&agent, kind, &later), "todo");
        // The same far-future time again overlaps the first.
        let (status, answer) = agent.post_json(
            &format!("{table}/{kind}"),
            &json!({"datetime": "2099-01-01T04:00:00Z"}).to_string(),
        );
        assert_eq!(status, 409, "{kind}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(&later),
            "{answer}"
        );
        // A week later does not.
        schedule(
            &agent,
            &format!("{table}/{kind}"),
            json!({"datetime": "2099-01-08T03:00:00Z"}),
        );
    }
    assert!(stat(&mut client, "last_vacuum", "city").is_some());

    // One running conflicts with one now.
    let mut holder = cluster.connect("postgres");
    holder
        .batch_execute("BEGIN; LOCK TABLE city IN ACCESS SHARE MODE")
        .unwrap();
    let running = schedule(&agent, &format!("{table}/vacuum"), json!({"mode": "full"}));
    wait_status(&agent, "vacuum", &running, "doing");
    let (status, answer) = agent.post_json(&format!("{table}/vacuum"), "{}");
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains(&running),
        "{answer}"
    );
    holder.batch_execute("COMMIT").unwrap();
    wait_status(&agent, "vacuum", &running, "done");
}

#[test]
fn long_object_names_do_not_limit_job_names() {
    let cluster = PgCluster::start();
    let schema = format!("s{}", "c".repeat(62));
    let table = format!("t{}", "a".repeat(62));
    let index = format!("i{}", "x".repeat(62));
    let database = format!("d{}", "b".repeat(62));
    let mut admin = cluster.connect("postgres");
    admin
        .batch_execute(&format!("CREATE DATABASE \"{database}\""))
        .unwrap();
    let mut client = cluster.connect(&database);
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{schema}\";
             CREATE TABLE \"{schema}\".\"{table}\" (id int) WITH (autovacuum_enabled = false);
             INSERT INTO \"{schema}\".\"{table}\" SELECT generate_series(1, 100);
             CREATE INDEX \"{index}\" ON \"{schema}\".\"{table}\" (id);"
        ))
        .unwrap();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let base = format!("/maintenance/{database}/schema/{schema}");
    for (kind, path) in [
        ("vacuum", format!("{base}/table/{table}/vacuum")),
        ("analyze", format!("{base}/table/{table}/analyze")),
        ("reindex", format!("{base}/table/{table}/reindex")),
        ("reindex", format!("{base}/index/{index}/reindex")),
    ] {
        let id = schedule(&agent, &path, json!({}));
        wait_status(&agent, kind, &id, "done");
        let entry = listed(&agent, &format!("/maintenance/{kind}/scheduled"))
            .into_iter()
            .find(|op| op["id"] == id)
            .unwrap();
        assert_eq!(
            (&entry["dbname"], &entry["schema"]),
            (&json!(database), &json!(schema)),
            "{entry}"
        );
    }
    let last_vacuum: Option<String> = client
        .query_one(
            "SELECT last_vacuum::text FROM pg_stat_user_tables WHERE relname = $1",
            &[&table],
        )
        .unwrap()
        .get(0);
    assert!(last_vacuum.is_some());
    // One name past an identifier's length, or holding a NUL: 404.
    let long = "y".repeat(64);
    for path in [
        format!("/maintenance/{long}/vacuum"),
        format!("/maintenance/{database}/schema/{long}/table/{table}/vacuum"),
        format!("{base}/table/{long}/analyze"),
        format!("{base}/index/{long}/reindex"),
        "/maintenance/postgres%00/vacuum".to_string(),
        "/maintenance/postgres/schema/public%00/table/x/vacuum".to_string(),
        format!("{base}/table/{table}%00/vacuum"),
        format!("{base}/index/{index}%00/reindex"),
    ] {
        let (status, answer) = agent.post_json(&path, "{}");
        assert_eq!(status, 404, "POST {path}: {answer}");
    }
}
