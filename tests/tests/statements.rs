//! `GET /statements` over real HTTP against clusters with and without
//! pg_stat_statements.

use dbagent_tests::{Agent, AgentOptions, PgCluster, error_text};
use serde_json::{Value, json};

const INT_FIELDS: &[&str] = &[
    "userid",
    "dbid",
    "queryid",
    "calls",
    "rows",
    "shared_blks_hit",
    "shared_blks_read",
    "shared_blks_dirtied",
    "shared_blks_written",
    "local_blks_hit",
    "local_blks_read",
    "local_blks_dirtied",
    "local_blks_written",
    "temp_blks_read",
    "temp_blks_written",
];
const TIME_FIELDS: &[&str] = &[
    "total_time",
    "min_time",
    "max_time",
    "mean_time",
    "stddev_time",
    "blk_read_time",
    "blk_write_time",
];

#[test]
fn lists_a_query_the_test_ran_with_its_calls() {
    let cluster = PgCluster::start();
    let mut client = cluster.connect("postgres");
    client
        .batch_execute("CREATE EXTENSION pg_stat_statements; CREATE TABLE statements_probe (i int)")
        .unwrap();
    for i in 0..3i32 {
        client
            .query("SELECT * FROM statements_probe WHERE i = $1", &[&i])
            .unwrap();
    }
    let agent = Agent::start(&cluster, AgentOptions::new());
    let (status, body) = agent.get("/statements");
    assert_eq!(status, 200, "{body}");
    // PostgreSQL's own text form of now(), e.g. "2020-03-17 17:31:25.0929+01".
    let snapshot = body["snapshot_datetime"].as_str().expect("a string");
    assert!(
        snapshot.len() > 19
            && snapshot.as_bytes()[4] == b'-'
            && snapshot.as_bytes()[10] == b' '
            && snapshot[19..].contains(['+', '-']),
        "{snapshot}"
    );
    let data = body["data"].as_array().expect("data list");
    assert!(data.len() > 1, "{body}");
    let times: Vec<f64> = data
        .iter()
        .map(|s| s["total_time"].as_f64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "most total time first: {times:?}"
    );
    let ours = data
        .iter()
        .find(|s| {
            s["query"]
                .as_str()
                .is_some_and(|q| q.contains("FROM statements_probe"))
        })
        .unwrap_or_else(|| panic!("our query is listed: {body}"));
    assert!(ours["calls"].as_i64().unwrap() >= 3, "{ours}");
    assert_eq!(ours["rolname"], "postgres");
    assert_eq!(ours["datname"], "postgres");
    assert!(ours["query"].is_string());
    for field in INT_FIELDS {
        assert!(ours[field].is_i64(), "{field} is an integer: {ours}");
    }
    for field in TIME_FIELDS {
        assert!(ours[field].is_number(), "{field} is a number: {ours}");
    }
    // The reference's 25 fields first; the view's own columns after them
    // (see view_columns_are_served_under_their_own_names).
    let reference: Vec<&str> = ["rolname", "datname"]
        .into_iter()
        .chain(INT_FIELDS.iter().copied())
        .chain(TIME_FIELDS.iter().copied())
        .chain(["query"])
        .collect();
    assert_eq!(reference.len(), 25);
    let keys: Vec<&str> = ours
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for field in &reference {
        assert!(keys.contains(field), "{field} in {ours}");
    }

    let (status, body) = agent.get("/statements?limit=1");
    assert_eq!(status, 200, "{body}");
    let top = body["data"].as_array().unwrap();
    assert_eq!(top.len(), 1, "{body}");
    assert!(top[0]["total_time"].as_f64().unwrap() >= times[1], "{body}");
    for bad in ["x", "0", "-1", "100001"] {
        assert_eq!(
            agent.get(&format!("/statements?limit={bad}")),
            (406, json!({"error": "Parameter 'limit' is malformed."})),
            "limit={bad}"
        );
    }
}

#[test]
fn a_preload_given_with_its_path_counts() {
    let cluster =
        PgCluster::start_with(&["shared_preload_libraries = '$libdir/pg_stat_statements'"]);
    cluster
        .connect("postgres")
        .batch_execute("CREATE EXTENSION pg_stat_statements")
        .unwrap();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let (status, body) = agent.get("/statements");
    assert_eq!(status, 200, "{body}");
    assert!(body["data"].is_array());
}

#[test]
fn missing_extension_is_404_saying_what_to_do() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let (status, body) = agent.get("/statements");
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        error_text(&body),
        "pg_stat_statements is not installed in database \"postgres\": run CREATE EXTENSION pg_stat_statements",
    );
}

#[test]
fn missing_preload_is_404_saying_what_to_do() {
    let cluster = PgCluster::start_with(&["shared_preload_libraries = ''"]);
    let agent = Agent::start(&cluster, AgentOptions::new());
    let (status, body) = agent.get("/statements");
    assert_eq!(status, 404, "{body}");
    assert!(
        error_text(&body).contains("shared_preload_libraries"),
        "{body}"
    );
}

#[test]
fn the_dbname_setting_picks_the_database() {
    let cluster = PgCluster::start();
    cluster
        .connect("postgres")
        .batch_execute("CREATE DATABASE other")
        .unwrap();
    cluster
        .connect("other")
        .batch_execute("CREATE EXTENSION pg_stat_statements")
        .unwrap();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new().config("[plugin.statements.settings]\ndbname = \"other\""),
    );
    let (status, body) = agent.get("/statements");
    assert_eq!(status, 200, "{body}");
    assert!(body["data"].is_array());
}

#[test]
fn view_columns_are_served_under_their_own_names() {
    let cluster = PgCluster::start();
    let mut client = cluster.connect("postgres");
    client
        .batch_execute("CREATE EXTENSION pg_stat_statements; CREATE TABLE wal_probe (i int)")
        .unwrap();
    client
        .batch_execute("INSERT INTO wal_probe SELECT generate_series(1, 1000)")
        .unwrap();
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .unwrap()
        .get(0);
    // What the view itself says of that statement, by its own column names.
    let own: String = client
        .query_one(
            "SELECT (to_jsonb(s) - 'query')::text FROM pg_stat_statements s
              WHERE query LIKE 'INSERT INTO wal_probe%'",
            &[],
        )
        .unwrap()
        .get(0);
    let own: Value = serde_json::from_str(&own).unwrap();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let (status, body) = agent.get("/statements");
    assert_eq!(status, 200, "{body}");
    let ours = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["query"]
                .as_str()
                .is_some_and(|q| q.starts_with("INSERT INTO wal_probe"))
        })
        .unwrap_or_else(|| panic!("the INSERT is listed: {body}"))
        .clone();
    for (column, value) in own.as_object().unwrap() {
        assert!(ours.get(column).is_some(), "{column} served: {ours}");
        if [
            "calls",
            "rows",
            "wal_records",
            "wal_fpi",
            "wal_bytes",
            "toplevel",
            "plans",
        ]
        .contains(&column.as_str())
        {
            assert_eq!(&ours[column], value, "{column}: {ours}");
        }
    }
    if version >= 130_000 {
        for column in [
            "total_exec_time",
            "min_exec_time",
            "max_exec_time",
            "mean_exec_time",
            "stddev_exec_time",
            "plans",
            "total_plan_time",
            "min_plan_time",
            "max_plan_time",
            "mean_plan_time",
            "stddev_plan_time",
            "wal_records",
            "wal_fpi",
            "wal_bytes",
        ] {
            assert!(ours[column].is_number(), "{column}: {ours}");
        }
        assert!(ours["wal_records"].as_i64().unwrap() >= 1000, "{ours}");
        assert!(ours["wal_bytes"].as_f64().unwrap() > 0.0, "{ours}");
        assert_eq!(ours["total_exec_time"], ours["total_time"], "{ours}");
    }
    if version >= 140_000 {
        assert_eq!(ours["toplevel"], true, "{ours}");
    }
}
