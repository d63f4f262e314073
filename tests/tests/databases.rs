//! The database-service API over real HTTP against a real PostgreSQL:
//! the resource, its settings, operations, and the PostgreSQL actions.

use dbagent_tests::{Agent, AgentOptions, PgCluster, TOKEN, send, wait_for};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// The `[postgresql]` instance as database `main`.
const MAIN: &str = r#"
[databases.main]
engine = "postgresql"
managed = true
app_name = "my-app"
plan = "free"
encryption_at_rest = true
features = [{ name = "tls", status = "ACTIVATED" }]
"#;

fn agent(cluster: &PgCluster) -> Agent {
    Agent::start(cluster, AgentOptions::new().config(MAIN))
}

fn action(agent: &Agent, body: Value) -> (u16, Value) {
    agent.post_json("/api/databases/main/action", &body.to_string())
}

fn ok(agent: &Agent, name: &str, params: Value) -> Value {
    let (status, body) = action(agent, json!({"action_name": name, "params": params}));
    assert_eq!(status, 200, "{name} {params}: {body}");
    assert_eq!(body["ok"], 1, "{body}");
    body["result"].clone()
}

fn refused(agent: &Agent, name: &str, params: Value) -> (u16, String) {
    let (status, body) = action(agent, json!({"action_name": name, "params": params}));
    assert_eq!(body["ok"], 0, "{name}: {body}");
    let error = body["error"].as_str().unwrap_or_default().to_string();
    assert!(!error.is_empty(), "{body}");
    (status, error)
}

fn database_names(agent: &Agent) -> Vec<String> {
    ok(agent, "list-databases", Value::Null)
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_resource_has_every_field_of_the_reference() {
    let cluster = PgCluster::start();
    let agent = agent(&cluster);
    let body = agent.get_ok("/api/databases/main");
    let db = &body["database"];
    let keys: Vec<&str> = db.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "resource_id",
            "app_name",
            "created_at",
            "encryption_at_rest",
            "features",
            "plan",
            "status",
            "type_id",
            "type_name",
            "version_id",
            "instances",
            "readable_version",
            "periodic_backups_enabled",
            "periodic_backups_scheduled_at"
        ]
    );
    let id = db["id"].as_str().unwrap();
    assert!(
        id.len() == 24
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{id}"
    );
    assert_eq!(db["resource_id"], "main");
    assert_eq!(db["app_name"], "my-app");
    assert_eq!(db["plan"], "free");
    assert_eq!(db["encryption_at_rest"], true);
    assert_eq!(
        db["features"],
        json!([{"name": "tls", "status": "ACTIVATED"}])
    );
    assert_eq!(db["status"], "running");
    assert_eq!(db["type_name"], "postgresql");
    assert_eq!(db["type_id"].as_str().unwrap().len(), 24);
    assert_eq!(db["version_id"].as_str().unwrap().len(), 24);
    let mut client = cluster.connect("postgres");
    let version: String = client.query_one("SHOW server_version", &[]).unwrap().get(0);
    assert_eq!(db["readable_version"], json!(version));
    // 2019-02-05T15:38:14.343+01:00
    let created = db["created_at"].as_str().unwrap();
    assert_eq!(created.len(), 29, "{created}");
    assert_eq!(&created[10..11], "T");
    assert_eq!(&created[19..20], ".");
    assert!(
        created[23..].starts_with('+') || created[23..].starts_with('-'),
        "{created}"
    );
    let instances = db["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0]["status"], "running");
    assert_eq!(instances[0]["type"], "db-node");
    assert_eq!(instances[0]["port"], json!(cluster.port()));
    assert_eq!(db["periodic_backups_enabled"], false);
    assert_eq!(db["periodic_backups_scheduled_at"], json!([]));

    // By its id too; and in the list.
    assert_eq!(
        agent.get_ok(&format!("/api/databases/{id}"))["database"]["resource_id"],
        "main"
    );
    let list = agent.get_ok("/api/databases");
    assert_eq!(list["databases"][0]["id"], json!(id));
}

#[test]
fn settings_round_trip_and_survive_a_restart() {
    let cluster = PgCluster::start();
    let mut agent = agent(&cluster);
    let patch = |agent: &Agent, method: Method, body: Value| {
        send(
            agent
                .request(method, "/api/databases/main")
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
    };
    let (status, body) = patch(
        &agent,
        Method::PATCH,
        json!({"database": {"periodic_backups_enabled": true, "periodic_backups_scheduled_at": 3}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["database"]["periodic_backups_enabled"], true);
    assert_eq!(
        body["database"]["periodic_backups_scheduled_at"],
        json!([3])
    );
    let (status, body) = patch(
        &agent,
        Method::PUT,
        json!({"database": {"periodic_backups_scheduled_at": [23, 1]}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["database"]["periodic_backups_scheduled_at"],
        json!([1, 23])
    );
    assert_eq!(body["database"]["periodic_backups_enabled"], true);
    let before = agent.get_ok("/api/databases/main")["database"].clone();

    agent.restart().unwrap_or_else(|e| panic!("{e}"));
    let after = agent.get_ok("/api/databases/main")["database"].clone();
    for field in [
        "id",
        "created_at",
        "periodic_backups_enabled",
        "periodic_backups_scheduled_at",
    ] {
        assert_eq!(after[field], before[field], "{field}");
    }

    // Refusals, in the reference's shapes.
    let (status, body) = patch(
        &agent,
        Method::PATCH,
        json!({"database": {"periodic_backups_scheduled_at": 24}}),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body["errors"]["periodic_backups_scheduled_at"][0].is_string(),
        "{body}"
    );
    let (status, body) = patch(
        &agent,
        Method::PATCH,
        json!({"database": {"periodic_backups_enabled": "yes", "plan": "gold"}}),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body["errors"]["periodic_backups_enabled"][0].is_string(),
        "{body}"
    );
    assert!(body["errors"]["plan"][0].is_string(), "{body}");
    let (status, body) = send(
        agent
            .request(Method::PATCH, "/api/databases/main")
            .body("not json"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string());
    let (status, body) = patch(
        &agent,
        Method::PATCH,
        json!({"database": {"periodic_backups_enabled": false}}),
    );
    assert_eq!(
        (status, &body["database"]["periodic_backups_enabled"]),
        (200, &json!(false))
    );
}

#[test]
fn unknown_databases_and_missing_credentials() {
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .config(MAIN)
            .auth("key = \"the-agent-key-0123\""),
    );
    let (status, body) = agent.get("/api/databases/nope");
    assert_eq!(
        (status, body),
        (404, json!({"resource": "database", "error": "not found"}))
    );
    let (status, body) = agent.post_json(
        "/api/databases/nope/action",
        r#"{"action_name": "list-databases"}"#,
    );
    assert_eq!(
        (status, body),
        (404, json!({"resource": "database", "error": "not found"}))
    );
    for request in [
        agent.anonymous(Method::GET, "/api/databases/main"),
        agent
            .anonymous(Method::GET, "/api/databases/main")
            .header("Authorization", "Bearer wrong-token-0123456789"),
        agent.anonymous(Method::GET, "/api/databases/main?key=the-agent-key-0123"),
        agent
            .anonymous(Method::GET, "/api/databases/main")
            .header("X-Session", "not-a-session"),
    ] {
        let (status, body) = send(request);
        assert_eq!(status, 401, "{body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let (status, _) = send(
        agent
            .anonymous(Method::GET, "/api/databases/main")
            .bearer_auth(TOKEN),
    );
    assert_eq!(status, 200);
}

#[test]
fn status_follows_the_server_and_actions_say_it_is_unreachable() {
    let mut cluster = PgCluster::start();
    let agent = agent(&cluster);
    cluster.stop();
    let db = agent.get_ok("/api/databases/main")["database"].clone();
    assert_eq!(db["status"], "unreachable");
    assert_eq!(db["instances"][0]["status"], "unreachable");
    assert_eq!(db["readable_version"], "");
    let (status, error) = refused(&agent, "list-databases", Value::Null);
    assert_eq!(status, 503, "{error}");
    cluster.restart();
    wait_for(
        "the server to be seen running",
        Duration::from_secs(30),
        || (agent.get_ok("/api/databases/main")["database"]["status"] == "running").then_some(()),
    );
    assert!(database_names(&agent).contains(&"postgres".to_string()));
}

#[test]
fn logical_databases_are_created_listed_reset_and_deleted() {
    let cluster = PgCluster::start();
    let agent = agent(&cluster);
    let listed = ok(&agent, "list-databases", Value::Null);
    for (name, protected) in [("postgres", true), ("template0", true), ("template1", true)] {
        let entry = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {listed}"));
        assert_eq!(entry, &json!({"name": name, "protected": protected}));
    }

    assert_eq!(
        ok(
            &agent,
            "create-database",
            json!({"database_name": "custom-db"})
        ),
        json!({"name": "custom-db", "protected": false})
    );
    assert!(database_names(&agent).contains(&"custom-db".to_string()));
    let (status, _) = refused(
        &agent,
        "create-database",
        json!({"database_name": "custom-db"}),
    );
    assert_eq!(status, 409);

    // A name that needs quoting, and one that tries to inject SQL: created
    // exactly as named, and nothing else happens.
    ok(&agent, "create-database", json!({"database_name": "y"}));
    for name in [
        "My \"quoted\" DB",
        "x\"; DROP DATABASE y;--",
        "x'; DROP DATABASE y;--",
    ] {
        assert_eq!(
            ok(&agent, "create-database", json!({"database_name": name}))["name"],
            json!(name)
        );
    }
    let names = database_names(&agent);
    for name in [
        "y",
        "My \"quoted\" DB",
        "x\"; DROP DATABASE y;--",
        "x'; DROP DATABASE y;--",
    ] {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }

    // Reset empties the database and keeps its owner and encoding.
    {
        let mut inside = cluster.connect("custom-db");
        inside
            .batch_execute("CREATE TABLE t (i int); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let mut client = cluster.connect("postgres");
    let describe = |client: &mut postgres::Client| -> (String, String) {
        let row = client
            .query_one(
                "SELECT pg_get_userbyid(datdba)::text, pg_encoding_to_char(encoding)::text FROM pg_database WHERE datname = 'custom-db'",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    let before = describe(&mut client);
    assert_eq!(
        ok(
            &agent,
            "reset-database",
            json!({"database_name": "custom-db"})
        ),
        Value::Null
    );
    assert_eq!(describe(&mut client), before);
    let mut inside = cluster.connect("custom-db");
    let tables: i64 = inside
        .query_one("SELECT count(*) FROM pg_class WHERE relname = 't'", &[])
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
    drop(inside);

    // Protected and missing databases; a connection open on one being deleted.
    for name in ["postgres", "template1"] {
        for verb in ["delete-database", "reset-database"] {
            let (status, error) = refused(&agent, verb, json!({"database_name": name}));
            assert_eq!(status, 403, "{verb} {name}: {error}");
        }
    }
    let (status, _) = refused(&agent, "delete-database", json!({"database_name": "nope"}));
    assert_eq!(status, 404);
    let held = cluster.connect("custom-db");
    assert_eq!(
        ok(
            &agent,
            "delete-database",
            json!({"database_name": "custom-db"})
        ),
        Value::Null
    );
    drop(held);
    assert!(!database_names(&agent).contains(&"custom-db".to_string()));

    // Params that do not fit.
    for (name, params) in [
        ("create-database", Value::Null),
        ("create-database", json!("custom-db")),
        ("create-database", json!({"database_name": 42})),
        ("create-database", json!({"database_name": ""})),
        ("create-database", json!({"database_name": "a".repeat(64)})),
        (
            "create-database",
            json!({"database_name": "x", "owner": "y"}),
        ),
        // Found by schemathesis: actions that take no params took any.
        ("list-databases", json!("x")),
        ("list-databases", json!({"a": 1})),
        ("pg-cancel-query", json!({"pid": 0})),
        ("no-such-action", Value::Null),
    ] {
        let (status, error) = refused(&agent, name, params.clone());
        assert_eq!(status, 400, "{name} {params}: {error}");
    }
    let (status, body) = agent.post_json("/api/databases/main/action", "not json");
    assert_eq!((status, &body["ok"]), (400, &json!(0)), "{body}");
    let (status, body) = agent.post_json("/api/databases/main/action", r#"{"params": {}}"#);
    assert_eq!((status, &body["ok"]), (400, &json!(0)), "{body}");
}

#[test]
fn extensions_queries_cancel_and_terminate() {
    let cluster = PgCluster::start();
    let agent = agent(&cluster);
    let extensions = ok(&agent, "list-extensions", Value::Null);
    assert!(
        extensions
            .as_array()
            .unwrap()
            .contains(&json!({"name": "plpgsql", "version": "v1.0"})),
        "{extensions}"
    );

    // A running query, listed, then cancelled.
    let conninfo = format!(
        "host={} port={} user=postgres dbname=postgres",
        cluster.socket_dir().display(),
        cluster.port()
    );
    let sleeper = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        client
            .batch_execute("SELECT pg_sleep(60)")
            .map_err(|e| e.code().map(|c| c.code().to_string()).unwrap_or_default())
    });
    let query = wait_for(
        "the sleeping query to be listed",
        Duration::from_secs(20),
        || {
            ok(&agent, "pg-list-queries", Value::Null)
                .as_array()
                .unwrap()
                .iter()
                .find(|q| {
                    q["query"]
                        .as_str()
                        .is_some_and(|t| t.contains("pg_sleep(60)"))
                })
                .cloned()
        },
    );
    let keys: Vec<&str> = query
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "query",
            "state",
            "username",
            "query_start",
            "pid",
            "query_duration"
        ]
    );
    assert_eq!(query["state"], "active");
    assert_eq!(query["username"], "postgres");
    let started = query["query_start"].as_str().unwrap();
    assert!(started.len() == 20 && started.ends_with('Z'), "{started}");
    assert!(query["query_duration"].as_i64().unwrap() > 0);
    let pid = query["pid"].as_i64().unwrap();
    assert_eq!(
        ok(&agent, "pg-cancel-query", json!({"pid": pid})),
        Value::Null
    );
    let outcome = sleeper.join().unwrap();
    assert_eq!(outcome, Err("57014".to_string()), "the query was cancelled");

    // An idle client, terminated.
    let mut idle = cluster.connect("postgres");
    let pid: i32 = idle
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        ok(&agent, "pg-terminate-query", json!({"pid": pid})),
        Value::Null
    );
    wait_for(
        "the idle client to be gone",
        Duration::from_secs(10),
        || idle.simple_query("SELECT 1").is_err().then_some(()),
    );

    // Not a client backend: the checkpointer, a pid that does not exist.
    let mut client = cluster.connect("postgres");
    let checkpointer: i32 = client
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'",
            &[],
        )
        .unwrap()
        .get(0);
    for pid in [i64::from(checkpointer), 999_999] {
        for verb in ["pg-cancel-query", "pg-terminate-query"] {
            let (status, error) = refused(&agent, verb, json!({"pid": pid}));
            assert_eq!(status, 404, "{verb} {pid}: {error}");
        }
    }
    let (status, _) = refused(&agent, "pg-cancel-query", json!({"pid": "x"}));
    assert_eq!(status, 400);
}

#[test]
fn pg_stat_statements_without_and_with_the_preload() {
    // The harness preloads pg_stat_statements unless told otherwise.
    let plain = PgCluster::start_with(&["shared_preload_libraries = ''"]);
    let without = agent(&plain);
    let (status, error) = refused(&without, "pg-stat-statements-enable", Value::Null);
    assert_eq!(status, 409, "{error}");
    assert!(
        error.contains("shared_preload_libraries") && error.contains("restart"),
        "{error}"
    );
    drop(without);

    let preloaded = PgCluster::start_with(&["shared_preload_libraries = 'pg_stat_statements'"]);
    let agent = agent(&preloaded);
    let (status, error) = refused(&agent, "pg-stat-statements-list", Value::Null);
    assert_eq!(status, 404, "before it is enabled: {error}");
    assert_eq!(
        ok(&agent, "pg-stat-statements-enable", Value::Null),
        Value::Null
    );
    let mut client = preloaded.connect("postgres");
    for _ in 0..3 {
        client.batch_execute("SELECT 42 AS answer").unwrap();
    }
    let listed = ok(&agent, "pg-stat-statements-list", Value::Null);
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["query"].as_str().is_some_and(|q| q.contains("AS answer")))
        .unwrap_or_else(|| panic!("the test's query in {listed}"))
        .clone();
    let keys: Vec<&str> = entry
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "user_id",
            "query",
            "calls",
            "rows",
            "total_time",
            "min_time",
            "max_time",
            "mean_time",
            "std_dev"
        ]
    );
    assert!(entry["calls"].as_i64().unwrap() >= 3, "{entry}");
    assert!(
        entry["total_time"].is_number() && entry["user_id"].is_i64(),
        "{entry}"
    );
    assert_eq!(
        ok(&agent, "pg-stat-statements-reset", Value::Null),
        Value::Null
    );
    let after = ok(&agent, "pg-stat-statements-list", Value::Null);
    assert!(
        !after
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["query"].as_str().is_some_and(|q| q.contains("AS answer"))),
        "{after}"
    );
}

#[test]
fn actions_are_described_and_a_drop_in_module_adds_one() {
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .config(MAIN)
            .plugin("extra")
            .config("[plugin.extra]\ngrants = [\"postgres\"]"),
    );
    let body = agent.get_ok("/api/databases/main/actions");
    let actions = body["actions"].as_array().unwrap();
    for name in [
        "list-databases",
        "create-database",
        "delete-database",
        "reset-database",
        "list-extensions",
        "pg-list-queries",
        "pg-cancel-query",
        "pg-terminate-query",
        "pg-stat-statements-enable",
        "pg-stat-statements-reset",
        "pg-stat-statements-list",
        "pg-database-size",
    ] {
        let action = actions
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {body}"));
        assert!(
            action["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        assert!(action["params_schema"].is_object(), "{action}");
    }
    let size = ok(
        &agent,
        "pg-database-size",
        json!({"database_name": "postgres"}),
    );
    assert_eq!(size["name"], "postgres");
    assert!(size["bytes"].as_i64().unwrap() > 1_000_000, "{size}");
}

#[test]
fn two_modules_offering_one_action_are_refused_at_start_up() {
    let failure = Agent::try_start_without_postgres(
        AgentOptions::new()
            .plugin("rival")
            .config("[plugin.rival]\ngrants = []"),
    )
    .map(|_| ())
    .expect_err("the agent must refuse two modules offering list-databases");
    assert!(
        failure.log.contains("list-databases")
            && failure.log.contains("rival")
            && failure.log.contains("postgresql-actions"),
        "{failure}"
    );
}

#[test]
fn operations_are_followed_and_an_interrupted_one_ends_as_an_error() {
    let cluster = PgCluster::start();
    let mut agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .config(MAIN)
            .plugin("operator")
            .config("[plugin.operator]\ngrants = [\"operations\"]"),
    );
    let db_id = agent.get_ok("/api/databases/main")["database"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = |agent: &Agent| {
        let (status, op) = agent.post_json(
            &format!("/operator/start?database={db_id}&kind=upgrade"),
            "",
        );
        assert_eq!(status, 200, "{op}");
        op
    };
    let first = started(&agent);
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 24);
    let op = agent.get_ok(&format!("/api/operations/{id}"))["operation"].clone();
    let keys: Vec<&str> = op.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "database_id",
            "type",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "error"
        ]
    );
    assert_eq!(
        (op["status"].as_str(), op["type"].as_str()),
        (Some("running"), Some("upgrade"))
    );
    assert!(
        op["started_at"].is_string() && op["finished_at"].is_null(),
        "{op}"
    );
    let (status, done) = agent.post_json(&format!("/operator/{id}/finished"), "");
    assert_eq!(
        (status, &done["status"]),
        (200, &json!("finished")),
        "{done}"
    );
    let op = agent.get_ok(&format!("/api/databases/main/operations/{id}"))["operation"].clone();
    assert_eq!(op["status"], "finished");
    assert!(op["finished_at"].is_string());
    let (status, _) = agent.post_json(&format!("/operator/{id}/running"), "");
    assert_eq!(status, 409, "an ended operation does not change");

    // One under way when the agent is killed ends as an error.
    let second = started(&agent);
    let second_id = second["id"].as_str().unwrap().to_string();
    agent.restart().unwrap_or_else(|e| panic!("{e}"));
    let op = agent.get_ok(&format!("/api/operations/{second_id}"))["operation"].clone();
    assert_eq!(op["status"], "error", "{op}");
    assert!(
        op["error"]
            .as_str()
            .is_some_and(|e| e.contains("interrupted")),
        "{op}"
    );
    assert!(op["finished_at"].is_string());

    let listed = agent.get_ok("/api/databases/main/operations")["operations"].clone();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second_id.as_str(), id.as_str()]);
    let (status, body) = agent.get("/api/operations/ffffffffffffffffffffffff");
    assert_eq!(
        (status, body),
        (404, json!({"resource": "operation", "error": "not found"}))
    );
}
