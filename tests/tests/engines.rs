//! The database-service API on MySQL (MariaDB), Redis and InfluxDB: real
//! servers started for the test, real HTTP to the agent. Every action of
//! each engine with its result shape; protected names, names that need
//! quoting, injection attempts in params; the server stopped (status and
//! 503) and back without restarting the agent.

use dbagent_tests::{
    Agent, AgentOptions, INFLUXDB_PASSWORD, INFLUXDB_USER, InfluxDb, MARIADB_DATABASE, MariaDb,
    Redis, RedisReply, wait_for,
};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// An agent (without PostgreSQL) serving `[databases.<id>]` entries.
fn agent(config: &str) -> Agent {
    Agent::try_start_without_postgres(AgentOptions::new().config(config))
        .unwrap_or_else(|failure| panic!("{failure}"))
}

/// A password file the agent reads (kept by the test's temporary dir).
fn password_file(dir: &Path, password: &str) -> String {
    let path = dir.join("password");
    std::fs::write(&path, password).unwrap();
    path.display().to_string()
}

fn action(agent: &Agent, id: &str, name: &str, params: Value) -> (u16, Value) {
    agent.post_json(
        &format!("/api/databases/{id}/action"),
        &json!({"action_name": name, "params": params}).to_string(),
    )
}

fn ok(agent: &Agent, id: &str, name: &str, params: Value) -> Value {
    let (status, body) = action(agent, id, name, params.clone());
    assert_eq!(status, 200, "{name} {params}: {body}");
    assert_eq!(body["ok"], 1, "{body}");
    body["result"].clone()
}

/// An action that fails: its status and error text (`ok: 0` checked).
fn failed(agent: &Agent, id: &str, name: &str, params: Value) -> (u16, String) {
    let (status, body) = action(agent, id, name, params.clone());
    assert_eq!(body["ok"], 0, "{name} {params}: {body}");
    let error = body["error"].as_str().unwrap_or_default().to_string();
    assert!(!error.is_empty(), "{body}");
    (status, error)
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

fn protected_of(list: &Value, name: &str) -> bool {
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list}"))["protected"]
        .as_bool()
        .unwrap()
}

/// The database resource; its status, version and instance status.
fn resource(agent: &Agent, id: &str) -> Value {
    agent.get_ok(&format!("/api/databases/{id}"))["database"].clone()
}

/// The actions the agent describes for a database.
fn action_names(agent: &Agent, id: &str) -> Vec<String> {
    names(&agent.get_ok(&format!("/api/databases/{id}/actions"))["actions"])
}

/// Stopped: not running, no version, actions 503 with a clear error;
/// started again: running, actions work, the agent never restarted.
fn stop_and_come_back<S>(
    agent: &Agent,
    id: &str,
    probe: &str,
    server: &mut S,
    stop: fn(&mut S),
    start: fn(&mut S),
) {
    stop(server);
    let db = resource(agent, id);
    assert_eq!(db["status"], "unreachable", "{db}");
    assert_eq!(db["instances"][0]["status"], "unreachable", "{db}");
    assert_eq!(db["readable_version"], "", "{db}");
    let (status, error) = failed(agent, id, probe, Value::Null);
    assert_eq!(status, 503, "{error}");
    start(server);
    wait_for(
        "the server to be seen running",
        Duration::from_secs(30),
        || (resource(agent, id)["status"] == "running").then_some(()),
    );
    wait_for("the action to work again", Duration::from_secs(30), || {
        (action(agent, id, probe, Value::Null).0 == 200).then_some(())
    });
}

// ---------------------------------------------------------------- MySQL

fn mysql_config(server: &MariaDb, dir: &Path) -> String {
    format!(
        "[databases.shop]\nengine = \"mysql\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"root\"\npassword_file = {:?}\ndbname = \"{MARIADB_DATABASE}\"\n",
        server.port(),
        password_file(dir, server.password()),
    )
}

fn schemas(server: &MariaDb) -> Vec<String> {
    server
        .query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
        .into_iter()
        .map(|row| row[0].clone())
        .collect()
}

#[test]
fn mysql_databases_sql_mode_and_an_outage() {
    let mut server = MariaDb::start();
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(&mysql_config(&server, dir.path()));

    let db = resource(&agent, "shop");
    assert_eq!(db["type_name"], "mysql");
    assert_eq!(db["status"], "running", "{db}");
    assert_eq!(db["instances"][0]["status"], "running");
    let version = server.query("SELECT VERSION()")[0][0].clone();
    assert_eq!(db["readable_version"], version.as_str());
    assert!(version.contains("MariaDB"), "{version}");
    let described = action_names(&agent, "shop");
    for name in [
        "list-databases",
        "create-database",
        "delete-database",
        "reset-database",
        "get-sqlmode",
        "set-sqlmode",
    ] {
        assert!(described.contains(&name.to_string()), "{described:?}");
    }

    // The server's schemas and the configured one are protected.
    let list = ok(&agent, "shop", "list-databases", Value::Null);
    for system in [
        "information_schema",
        "mysql",
        "performance_schema",
        MARIADB_DATABASE,
    ] {
        assert!(protected_of(&list, system), "{system}: {list}");
    }
    assert_eq!(
        list[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["name", "protected"]
    );

    // Created, listed, refused twice.
    assert_eq!(
        ok(
            &agent,
            "shop",
            "create-database",
            json!({"database_name": "custom-db"})
        ),
        json!({"name": "custom-db", "protected": false})
    );
    let list = ok(&agent, "shop", "list-databases", Value::Null);
    assert!(!protected_of(&list, "custom-db"));
    let (status, error) = failed(
        &agent,
        "shop",
        "create-database",
        json!({"database_name": "custom-db"}),
    );
    assert_eq!(status, 409, "{error}");

    // Names that need quoting are created exactly, never run.
    server.query("CREATE DATABASE y");
    for name in [
        "x`; DROP DATABASE y;--",
        "it's \"quoted\"",
        "café ünïcode",
        "Custom-DB",
    ] {
        ok(
            &agent,
            "shop",
            "create-database",
            json!({"database_name": name}),
        );
        assert!(
            schemas(&server).contains(&name.to_string()),
            "{name}: {:?}",
            schemas(&server)
        );
    }
    assert!(schemas(&server).contains(&"y".to_string()), "y was dropped");
    for bad in [
        json!(""),
        json!("a".repeat(65)),
        json!("crab 🦀"),
        json!("trailing "),
        json!(42),
    ] {
        let (status, error) = failed(
            &agent,
            "shop",
            "create-database",
            json!({"database_name": bad}),
        );
        assert_eq!(status, 400, "{bad}: {error}");
    }
    let (status, _) = failed(&agent, "shop", "create-database", Value::Null);
    assert_eq!(status, 400);

    // Reset: the tables go, the database and its character set stay.
    server.query("CREATE DATABASE latin CHARACTER SET latin1 COLLATE latin1_swedish_ci; CREATE TABLE latin.t (i int); INSERT INTO latin.t VALUES (1)");
    assert_eq!(
        ok(
            &agent,
            "shop",
            "reset-database",
            json!({"database_name": "latin"})
        ),
        Value::Null
    );
    assert_eq!(
        server.query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'latin'"),
        [["0"]]
    );
    assert_eq!(
        server.query("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'latin'"),
        [["latin1", "latin1_swedish_ci"]]
    );
    ok(
        &agent,
        "shop",
        "reset-database",
        json!({"database_name": "x`; DROP DATABASE y;--"}),
    );
    assert!(schemas(&server).contains(&"y".to_string()));

    // Protected and missing databases are refused; the rest deleted.
    for protected in ["mysql", "information_schema", MARIADB_DATABASE] {
        for name in ["delete-database", "reset-database"] {
            let (status, error) = failed(&agent, "shop", name, json!({"database_name": protected}));
            assert_eq!(status, 403, "{name} {protected}: {error}");
            assert!(error.contains("protected"), "{error}");
        }
    }
    let (status, _) = failed(
        &agent,
        "shop",
        "delete-database",
        json!({"database_name": "nosuch"}),
    );
    assert_eq!(status, 404);
    // A name differing by case only is another database on Linux.
    assert_eq!(
        ok(
            &agent,
            "shop",
            "delete-database",
            json!({"database_name": "Custom-DB"})
        ),
        Value::Null
    );
    assert!(schemas(&server).contains(&"custom-db".to_string()));
    for name in [
        "custom-db",
        "x`; DROP DATABASE y;--",
        "it's \"quoted\"",
        "café ünïcode",
    ] {
        ok(
            &agent,
            "shop",
            "delete-database",
            json!({"database_name": name}),
        );
        assert!(!schemas(&server).contains(&name.to_string()), "{name}");
    }
    assert!(schemas(&server).contains(&"y".to_string()));

    // SQL mode: read, set globally (a bare string), unknown modes named.
    let global = || server.query("SELECT @@GLOBAL.sql_mode")[0][0].clone();
    let before = global();
    assert_eq!(
        ok(&agent, "shop", "get-sqlmode", Value::Null),
        json!(before)
    );
    let wanted = "NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO";
    assert_eq!(
        ok(&agent, "shop", "set-sqlmode", json!(wanted)),
        Value::Null
    );
    assert_eq!(global(), wanted);
    assert_eq!(
        ok(&agent, "shop", "get-sqlmode", Value::Null),
        json!(wanted)
    );
    // Lower case and blanks are the same modes.
    ok(
        &agent,
        "shop",
        "set-sqlmode",
        json!(" strict_trans_tables , no_zero_date "),
    );
    assert_eq!(global(), "STRICT_TRANS_TABLES,NO_ZERO_DATE");
    let (status, error) = failed(
        &agent,
        "shop",
        "set-sqlmode",
        json!("STRICT_TRANS_TABLES,NOT_A_MODE"),
    );
    assert_eq!(status, 400, "{error}");
    assert!(error.contains("NOT_A_MODE"), "{error}");
    for hostile in [
        "ANSI'; DROP DATABASE y; --",
        "ANSI,@@x",
        "STRICT_TRANS_TABLES\nANSI",
    ] {
        let (status, error) = failed(&agent, "shop", "set-sqlmode", json!(hostile));
        assert_eq!(status, 400, "{hostile}: {error}");
    }
    let (status, _) = failed(&agent, "shop", "set-sqlmode", json!({"mode": "ANSI"}));
    assert_eq!(status, 400);
    assert_eq!(global(), "STRICT_TRANS_TABLES,NO_ZERO_DATE");
    assert!(schemas(&server).contains(&"y".to_string()));
    // The modes tried alone on the session did not stay on the agent's
    // pooled connections: a later call's session has the global mode.
    for _ in 0..4 {
        assert_eq!(
            ok(&agent, "shop", "get-sqlmode", Value::Null),
            json!("STRICT_TRANS_TABLES,NO_ZERO_DATE")
        );
    }
    ok(&agent, "shop", "set-sqlmode", json!(""));
    assert_eq!(global(), "");
    ok(&agent, "shop", "set-sqlmode", json!(before));

    stop_and_come_back(
        &agent,
        "shop",
        "list-databases",
        &mut server,
        MariaDb::stop,
        MariaDb::restart,
    );
}

// ---------------------------------------------------------------- Redis

const REDIS_PASSWORD: &str = "redis-test-pw";

fn redis_config(server: &Redis, dir: &Path) -> String {
    format!(
        "[databases.cache]\nengine = \"redis\"\nhost = \"127.0.0.1\"\nport = {}\npassword_file = {:?}\n",
        server.port(),
        password_file(dir, REDIS_PASSWORD),
    )
}

fn text(reply: RedisReply) -> String {
    reply
        .as_text()
        .unwrap_or_else(|| panic!("not text: {reply:?}"))
}

/// A client connection of its own, named, kept open.
struct NamedClient {
    reader: BufReader<TcpStream>,
}

impl NamedClient {
    fn open(port: u16, name: &str) -> NamedClient {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(format!("AUTH {REDIS_PASSWORD}\r\nCLIENT SETNAME {name}\r\n").as_bytes())
            .unwrap();
        let mut reader = BufReader::new(stream);
        for _ in 0..2 {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "+OK\r\n");
        }
        NamedClient { reader }
    }

    /// Whether the server closed the connection.
    fn closed(&mut self) -> bool {
        let _ = self.reader.get_mut().write_all(b"PING\r\n");
        let mut line = String::new();
        matches!(self.reader.read_line(&mut line), Ok(0) | Err(_))
    }
}

#[test]
fn redis_info_keyspace_settings_slowlog_clients_and_an_outage() {
    let mut server = Redis::start_with_password(REDIS_PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(&redis_config(&server, dir.path()));

    let db = resource(&agent, "cache");
    assert_eq!(db["type_name"], "redis");
    assert_eq!(db["status"], "running", "{db}");
    let info = text(server.command(&["INFO", "server"]));
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap()
        .trim();
    assert_eq!(db["readable_version"], version);
    let described = action_names(&agent, "cache");
    for name in [
        "redis-info",
        "list-databases",
        "reset-database",
        "config-get",
        "config-set",
        "slowlog-get",
        "slowlog-reset",
        "client-list",
        "client-kill",
    ] {
        assert!(described.contains(&name.to_string()), "{described:?}");
    }

    // INFO, whole or one section.
    let all = ok(&agent, "cache", "redis-info", Value::Null);
    assert_eq!(all["server"]["redis_version"], version);
    assert!(all["memory"]["used_memory"].is_string(), "{all}");
    let memory = ok(&agent, "cache", "redis-info", json!({"section": "memory"}));
    assert_eq!(
        memory.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["memory"]
    );
    let (status, error) = failed(&agent, "cache", "redis-info", json!({"section": "nosuch"}));
    assert_eq!(status, 404, "{error}");
    let (status, _) = failed(
        &agent,
        "cache",
        "redis-info",
        json!({"section": "memory\r\nFLUSHALL"}),
    );
    assert_eq!(status, 400);

    // The keyspace, every index.
    server.command(&["SET", "a", "1"]);
    server.command(&["SET", "b", "2"]);
    // Each command is a connection of its own: a script selects index 3.
    for (key, ttl) in [("c", "0"), ("d", "100")] {
        let reply = server.command(&[
            "EVAL",
            "redis.call('SELECT', 3); redis.call('SET', KEYS[1], '1'); \
             if ARGV[1] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end; return 'OK'",
            "1",
            key,
            ttl,
        ]);
        assert_eq!(reply, RedisReply::Bulk(b"OK".to_vec()));
    }
    let list = ok(&agent, "cache", "list-databases", Value::Null);
    assert_eq!(list.as_array().unwrap().len(), 16, "{list}");
    assert_eq!(list[0]["index"], 0);
    assert_eq!(list[0]["keys"], 2);
    assert_eq!(list[3]["keys"], 2);
    assert_eq!(list[3]["expires"], 1);
    assert_eq!(list[5]["keys"], 0);

    // FLUSHDB of one index; smuggled commands are data.
    for hostile in [
        json!({"database_name": "0\r\nFLUSHALL"}),
        json!({"index": -1}),
        json!({"index": "3"}),
        json!({}),
    ] {
        let (status, error) = failed(&agent, "cache", "reset-database", hostile.clone());
        assert_eq!(status, 400, "{hostile}: {error}");
    }
    let (status, _) = failed(&agent, "cache", "reset-database", json!({"index": 16}));
    assert_eq!(status, 404);
    assert_eq!(
        ok(&agent, "cache", "reset-database", json!({"index": 3})),
        Value::Null
    );
    let list = ok(&agent, "cache", "list-databases", Value::Null);
    assert_eq!(
        (list[0]["keys"].clone(), list[3]["keys"].clone()),
        (json!(2), json!(0))
    );
    ok(
        &agent,
        "cache",
        "reset-database",
        json!({"database_name": "0"}),
    );
    assert_eq!(server.command(&["DBSIZE"]), RedisReply::Integer(0));
    server.command(&["SET", "survivor", "1"]);

    // Settings: the allowlist reads and changes; the rest is refused.
    let settings = ok(&agent, "cache", "config-get", Value::Null);
    for name in [
        "maxmemory",
        "maxmemory-policy",
        "timeout",
        "notify-keyspace-events",
        "slowlog-log-slower-than",
        "slowlog-max-len",
    ] {
        assert!(settings[name].is_string(), "{name}: {settings}");
    }
    assert_eq!(
        ok(
            &agent,
            "cache",
            "config-get",
            json!({"name": "maxmemory-policy"})
        ),
        json!({"maxmemory-policy": "noeviction"})
    );
    assert_eq!(
        ok(
            &agent,
            "cache",
            "config-set",
            json!({"name": "maxmemory", "value": "64mb"})
        ),
        Value::Null
    );
    assert_eq!(
        server.command(&["CONFIG", "GET", "maxmemory"]),
        RedisReply::Array(vec![
            RedisReply::Bulk(b"maxmemory".to_vec()),
            RedisReply::Bulk(b"67108864".to_vec())
        ])
    );
    ok(
        &agent,
        "cache",
        "config-set",
        json!({"name": "timeout", "value": 300}),
    );
    assert_eq!(
        ok(&agent, "cache", "config-get", json!({"name": "timeout"})),
        json!({"timeout": "300"})
    );
    for name in ["dir", "dbfilename", "requirepass", "maxmemory*", "save"] {
        let (status, error) = failed(&agent, "cache", "config-get", json!({"name": name}));
        assert_eq!(status, 403, "{name}: {error}");
        assert!(error.contains(name), "{error}");
        let (status, _) = failed(
            &agent,
            "cache",
            "config-set",
            json!({"name": name, "value": "/tmp"}),
        );
        assert_eq!(status, 403, "{name}");
    }
    let (status, error) = failed(
        &agent,
        "cache",
        "config-set",
        json!({"name": "maxmemory-policy", "value": "noeviction\r\nFLUSHALL"}),
    );
    assert_eq!(status, 400, "{error}");
    let (status, _) = failed(
        &agent,
        "cache",
        "config-set",
        json!({"name": "maxmemory-policy", "value": "bogus"}),
    );
    assert_eq!(status, 400);
    assert_eq!(text(server.command(&["GET", "survivor"])), "1");

    // The slow log.
    ok(
        &agent,
        "cache",
        "config-set",
        json!({"name": "slowlog-log-slower-than", "value": 0}),
    );
    server.command(&["SET", "slow-marker", "x"]);
    let log = ok(&agent, "cache", "slowlog-get", json!({"count": 50}));
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["command"] == json!(["SET", "slow-marker", "x"]))
        .unwrap_or_else(|| panic!("the SET in {log}"));
    for field in ["id", "timestamp", "duration_us"] {
        assert!(entry[field].is_i64(), "{field}: {entry}");
    }
    assert!(
        entry["client_address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{entry}"
    );
    for bad in [
        json!({"count": 0}),
        json!({"count": 100_000}),
        json!({"count": "5"}),
    ] {
        let (status, _) = failed(&agent, "cache", "slowlog-get", bad.clone());
        assert_eq!(status, 400, "{bad}");
    }
    assert_eq!(
        ok(&agent, "cache", "slowlog-reset", Value::Null),
        Value::Null
    );
    let log = ok(&agent, "cache", "slowlog-get", Value::Null);
    assert!(!log.to_string().contains("slow-marker"), "{log}");

    // Clients: listed with their fields, one killed by id.
    let mut watcher = NamedClient::open(server.port(), "watcher");
    let clients = ok(&agent, "cache", "client-list", Value::Null);
    let client = clients
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "watcher")
        .unwrap_or_else(|| panic!("watcher in {clients}"))
        .clone();
    assert!(
        client["id"].is_i64() && client["addr"].is_string() && client["age"].is_i64(),
        "{client}"
    );
    assert_eq!(
        ok(&agent, "cache", "client-kill", json!({"id": client["id"]})),
        Value::Null
    );
    assert!(watcher.closed());
    let (status, _) = failed(&agent, "cache", "client-kill", json!({"id": client["id"]}));
    assert_eq!(status, 404);
    let (status, _) = failed(&agent, "cache", "client-kill", json!({"id": "1; FLUSHALL"}));
    assert_eq!(status, 400);
    assert_eq!(text(server.command(&["GET", "survivor"])), "1");

    stop_and_come_back(
        &agent,
        "cache",
        "list-databases",
        &mut server,
        Redis::stop,
        Redis::restart,
    );
}

// ---------------------------------------------------------------- InfluxDB

fn influx_config(server: &InfluxDb, dir: &Path) -> String {
    format!(
        "[databases.metrics]\nengine = \"influxdb\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{INFLUXDB_USER}\"\npassword_file = {:?}\ndbname = \"telemetry\"\n",
        server.port(),
        password_file(dir, INFLUXDB_PASSWORD),
    )
}

fn influx_databases(server: &InfluxDb) -> Vec<String> {
    server.query("SHOW DATABASES")["results"][0]["series"][0]["values"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r[0].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn influxdb_databases_retention_policies_and_an_outage() {
    let mut server = InfluxDb::start_with_auth();
    server.query("CREATE DATABASE telemetry");
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(&influx_config(&server, dir.path()));

    let db = resource(&agent, "metrics");
    assert_eq!(db["type_name"], "influxdb");
    assert_eq!(db["status"], "running", "{db}");
    assert_eq!(db["readable_version"], server.ping().as_str());
    let described = action_names(&agent, "metrics");
    for name in [
        "list-databases",
        "create-database",
        "delete-database",
        "reset-database",
        "list-retention-policies",
        "add-retention-policy",
        "del-retention-policy",
    ] {
        assert!(described.contains(&name.to_string()), "{described:?}");
    }

    let list = ok(&agent, "metrics", "list-databases", Value::Null);
    assert!(protected_of(&list, "telemetry"), "{list}");
    assert_eq!(
        ok(
            &agent,
            "metrics",
            "create-database",
            json!({"database_name": "custom-db"})
        ),
        json!({"name": "custom-db", "protected": false})
    );
    assert!(!protected_of(
        &ok(&agent, "metrics", "list-databases", Value::Null),
        "custom-db"
    ));
    let (status, _) = failed(
        &agent,
        "metrics",
        "create-database",
        json!({"database_name": "custom-db"}),
    );
    assert_eq!(status, 409);

    // Names needing escapes are created exactly; y survives.
    server.query("CREATE DATABASE y");
    for name in ["x\"; DROP DATABASE \"y", "dots.and spaces", "it's"] {
        ok(
            &agent,
            "metrics",
            "create-database",
            json!({"database_name": name}),
        );
        assert!(
            influx_databases(&server).contains(&name.to_string()),
            "{name}: {:?}",
            influx_databases(&server)
        );
    }
    assert!(influx_databases(&server).contains(&"y".to_string()));
    for bad in [
        json!(""),
        json!("new\nline"),
        json!("back\\slash"),
        json!("a/b"),
        json!(".."),
        json!(7),
    ] {
        let (status, _) = failed(
            &agent,
            "metrics",
            "create-database",
            json!({"database_name": bad}),
        );
        assert_eq!(status, 400, "{bad}");
    }

    // Reset drops the series, keeps the database and its policies.
    server.write(
        "custom-db",
        "cpu,host=a value=1\ncpu,host=b value=2\nmem,host=a used=3",
    );
    server.query("CREATE RETENTION POLICY keep ON \"custom-db\" DURATION 2d REPLICATION 1");
    assert_eq!(
        ok(
            &agent,
            "metrics",
            "reset-database",
            json!({"database_name": "custom-db"})
        ),
        Value::Null
    );
    let series = server.query_db("custom-db", "SELECT * FROM cpu, mem");
    assert!(series["results"][0]["series"].is_null(), "{series}");
    assert!(influx_databases(&server).contains(&"custom-db".to_string()));
    let policies = ok(
        &agent,
        "metrics",
        "list-retention-policies",
        json!({"database_name": "custom-db"}),
    );
    assert!(names(&policies).contains(&"keep".to_string()), "{policies}");

    // Protected and missing.
    for name in ["delete-database", "reset-database"] {
        let (status, _) = failed(
            &agent,
            "metrics",
            name,
            json!({"database_name": "telemetry"}),
        );
        assert_eq!(status, 403);
        let (status, _) = failed(&agent, "metrics", name, json!({"database_name": "nosuch"}));
        assert_eq!(status, 404);
    }
    for name in [
        "custom-db",
        "x\"; DROP DATABASE \"y",
        "dots.and spaces",
        "it's",
    ] {
        assert_eq!(
            ok(
                &agent,
                "metrics",
                "delete-database",
                json!({"database_name": name})
            ),
            Value::Null
        );
        assert!(
            !influx_databases(&server).contains(&name.to_string()),
            "{name}"
        );
    }
    assert!(influx_databases(&server).contains(&"y".to_string()));

    // Retention policies of the configured database, in the reference's form.
    assert_eq!(
        ok(&agent, "metrics", "list-retention-policies", Value::Null),
        json!([{"name": "autogen", "duration": "0", "default": true}])
    );
    assert_eq!(
        ok(
            &agent,
            "metrics",
            "add-retention-policy",
            json!({"name": "30-days", "duration": "30d", "default": true})
        ),
        Value::Null
    );
    ok(
        &agent,
        "metrics",
        "add-retention-policy",
        json!({"name": "a week", "duration": "168h"}),
    );
    ok(
        &agent,
        "metrics",
        "add-retention-policy",
        json!({"name": "x\"; DROP DATABASE \"y", "duration": "36h"}),
    );
    assert_eq!(
        ok(&agent, "metrics", "list-retention-policies", Value::Null),
        json!([
            {"name": "autogen", "duration": "0", "default": false},
            {"name": "30-days", "duration": "30d", "default": true},
            {"name": "a week", "duration": "7d", "default": false},
            {"name": "x\"; DROP DATABASE \"y", "duration": "36h", "default": false},
        ])
    );
    let (status, _) = failed(
        &agent,
        "metrics",
        "add-retention-policy",
        json!({"name": "30-days", "duration": "30d"}),
    );
    assert_eq!(status, 409);
    for bad in ["30 days", "30d; DROP DATABASE y", "", "1y"] {
        let (status, error) = failed(
            &agent,
            "metrics",
            "add-retention-policy",
            json!({"name": "bad", "duration": bad}),
        );
        assert_eq!(status, 400, "{bad}: {error}");
    }
    // InfluxDB itself refuses under an hour, inside a 200 answer.
    let (status, error) = failed(
        &agent,
        "metrics",
        "add-retention-policy",
        json!({"name": "short", "duration": "30m"}),
    );
    assert_eq!(status, 400, "{error}");
    assert!(error.contains("duration"), "{error}");
    let (status, _) = failed(
        &agent,
        "metrics",
        "add-retention-policy",
        json!({"name": "p", "duration": "2d", "database_name": "nosuch"}),
    );
    assert_eq!(status, 404);
    assert_eq!(
        ok(
            &agent,
            "metrics",
            "del-retention-policy",
            json!({"name": "30-days"})
        ),
        Value::Null
    );
    ok(
        &agent,
        "metrics",
        "del-retention-policy",
        json!({"name": "x\"; DROP DATABASE \"y"}),
    );
    let (status, _) = failed(
        &agent,
        "metrics",
        "del-retention-policy",
        json!({"name": "30-days"}),
    );
    assert_eq!(status, 404);
    assert_eq!(
        names(&ok(
            &agent,
            "metrics",
            "list-retention-policies",
            Value::Null
        )),
        ["autogen", "a week"]
    );
    assert!(influx_databases(&server).contains(&"y".to_string()));

    stop_and_come_back(
        &agent,
        "metrics",
        "list-databases",
        &mut server,
        InfluxDb::stop,
        InfluxDb::restart,
    );
}
