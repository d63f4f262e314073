//! A real major upgrade of the managed instance through the
//! database-service API: PostgreSQL 15 to 16 (the PyPI builds), with data,
//! an extension and pg_stat_statements; refused when no newer version is
//! installed; a failing `pg_upgrade --check` leaves the old server running;
//! the switch survives an agent restart.

use dbagent_tests::{Agent, AgentOptions, PgCluster, pypi_bin_dir, wait_for};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

fn upgrade(agent: &Agent) -> (u16, Value, Option<String>) {
    let response = agent
        .request(reqwest::Method::POST, "/api/databases/main/upgrade")
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    let body: Value = response.json().unwrap_or(Value::Null);
    (status, body, location)
}

fn operation_end(agent: &Agent, path: &str) -> Value {
    wait_for("the upgrade to end", Duration::from_secs(300), || {
        let op = agent.get_ok(path)["operation"].clone();
        matches!(op["status"].as_str(), Some("finished" | "error")).then_some(op)
    })
}

/// Stops the upgraded server (which the harness's cluster, on the old
/// directory, does not know) when the test ends.
struct StopsUpgraded(PathBuf);

impl Drop for StopsUpgraded {
    fn drop(&mut self) {
        let pg_ctl = pypi_bin_dir(16).join("pg_ctl");
        let mut cmd = if unsafe { libc::geteuid() } == 0 {
            let mut cmd = std::process::Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(pg_ctl);
            cmd
        } else {
            std::process::Command::new(pg_ctl)
        };
        let _ = cmd
            .arg("stop")
            .arg("-D")
            .arg(&self.0)
            .args(["-m", "immediate"])
            .current_dir("/")
            .output();
    }
}

#[test]
fn the_instance_is_upgraded_from_15_to_16() {
    let cluster = PgCluster::builder()
        .version(15)
        .conf(&["shared_preload_libraries = 'pg_stat_statements'"])
        .start();
    let mut setup = cluster.connect("postgres");
    for sql in [
        "CREATE EXTENSION pg_stat_statements",
        "CREATE EXTENSION pgcrypto",
        "CREATE TABLE t (id int PRIMARY KEY, note text)",
        "INSERT INTO t VALUES (1, 'one'), (2, 'two')",
        "CREATE DATABASE closed",
        "ALTER DATABASE closed ALLOW_CONNECTIONS false",
    ] {
        setup.batch_execute(sql).unwrap();
    }
    drop(setup);
    let managed = "[databases.main]\nengine = \"postgresql\"\nmanaged = true\n";

    // Nothing newer installed: 422, nothing happens.
    let agent = Agent::start(&cluster, AgentOptions::new().config(managed));
    let (status, body, _) = upgrade(&agent);
    assert_eq!(status, 422, "{body}");
    assert!(
        body["errors"]["database"][0]
            .as_str()
            .unwrap()
            .contains("upgrade_bin_dirs"),
        "{body}"
    );
    drop(agent);

    let new_bin = pypi_bin_dir(16);
    let mut agent = Agent::start(
        &cluster,
        AgentOptions::new().config(managed).postgresql(&format!(
            "upgrade_bin_dirs = {{ \"16\" = {:?} }}",
            new_bin.display().to_string()
        )),
    );
    let new_data = PathBuf::from(format!("{}-16", cluster.data_dir().display()));
    let _stop_upgraded = StopsUpgraded(new_data.clone());

    // pg_upgrade --check refuses a database that allows no connections:
    // the old server keeps running, untouched.
    let (status, body, location) = upgrade(&agent);
    assert_eq!(status, 202, "{body}");
    let location = location.expect("a Location header");
    assert_eq!(
        location,
        format!("/api/operations/{}", body["id"].as_str().unwrap())
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Database upgrade to 16."),
        "{body}"
    );
    assert_eq!(body["major"], 16);
    for field in [
        "build",
        "created_at",
        "database_type_id",
        "deleted_at",
        "features",
        "minor",
        "patch",
        "release_number",
        "updated_at",
        "warning_message",
        "allowed_plugins",
    ] {
        assert!(body.get(field).is_some(), "{field}: {body}");
    }
    let failed = operation_end(&agent, &location);
    assert_eq!(failed["status"], "error", "{failed}");
    let why = failed["error"].as_str().unwrap();
    assert!(why.starts_with("pg_upgrade --check"), "{why}");
    assert!(
        why.contains("closed") || why.contains("connections"),
        "{why}"
    );
    let version = agent.get_ok("/api/databases/main")["database"]["readable_version"].clone();
    assert!(version.as_str().unwrap().starts_with("15."), "{version}");
    assert!(!new_data.exists(), "the new directory is removed");

    // Fixed: the upgrade goes through.
    cluster
        .connect("postgres")
        .batch_execute("ALTER DATABASE closed ALLOW_CONNECTIONS true;")
        .unwrap();
    let (status, body, location) = upgrade(&agent);
    assert_eq!(status, 202, "{body}");
    let done = operation_end(&agent, &location.unwrap());
    assert_eq!(done["status"], "finished", "{done}");
    let database = agent.get_ok("/api/databases/main")["database"].clone();
    assert!(
        database["readable_version"]
            .as_str()
            .unwrap()
            .starts_with("16."),
        "{database}"
    );
    assert_eq!(database["status"], "running");
    let mut client = cluster.connect("postgres");
    let rows: Vec<(i32, String)> = client
        .query("SELECT id, note FROM t ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [(1, "one".to_string()), (2, "two".to_string())]);
    client
        .query_one("SELECT count(*) FROM pg_stat_statements", &[])
        .expect("pg_stat_statements works after the upgrade");
    client
        .query_one("SELECT digest('x', 'sha256')", &[])
        .expect("pgcrypto works after the upgrade");
    for route in [
        "/activity",
        "/dashboard/live",
        "/statements",
        "/pgconf/configuration",
    ] {
        assert_eq!(agent.get(route).0, 200, "{route}");
    }
    // Nothing starts the old cluster any more.
    assert!(!cluster.data_dir().join("global/pg_control").exists());
    assert!(cluster.data_dir().join("global/pg_control.old").exists());
    // No newer version than 16 now.
    assert_eq!(upgrade(&agent).0, 422);

    // The switch survives a restart of the agent: it restarts the new server.
    agent.restart().unwrap();
    let (status, body) = agent.post_json("/administration/control", r#"{"action": "restart"}"#);
    assert_eq!(status, 200, "{body}");
    let version = agent.get_ok("/api/databases/main")["database"]["readable_version"].clone();
    assert!(version.as_str().unwrap().starts_with("16."), "{version}");
}

#[test]
fn an_upgrade_interrupted_by_the_agent_s_death_is_finished_or_rolled_back() {
    let cluster = PgCluster::builder().version(15).start();
    cluster
        .connect("postgres")
        .batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        .unwrap();
    let mut agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .config("[databases.main]\nengine = \"postgresql\"\nmanaged = true\n")
            .postgresql(&format!(
                "upgrade_bin_dirs = {{ \"16\" = {:?} }}",
                pypi_bin_dir(16).display().to_string()
            )),
    );
    let new_data = PathBuf::from(format!("{}-16", cluster.data_dir().display()));
    let _stop_upgraded = StopsUpgraded(new_data.clone());
    let (status, body, location) = upgrade(&agent);
    assert_eq!(status, 202, "{body}");
    let location = location.unwrap();
    // The agent dies once it has stopped the old server for pg_upgrade.
    let pid_file = cluster.data_dir().join("postmaster.pid");
    wait_for("the old server to stop", Duration::from_secs(60), || {
        (!pid_file.exists()).then_some(())
    });
    agent.restart().unwrap();

    let op = operation_end(&agent, &location);
    let version = agent.get_ok("/api/databases/main")["database"]["readable_version"].clone();
    let version = version.as_str().unwrap();
    println!(
        "the interrupted upgrade ended {}: {}",
        op["status"], op["error"]
    );
    match op["status"].as_str() {
        // Rolled back: the old server runs, the new directory is gone.
        Some("error") => {
            assert!(
                op["error"].as_str().unwrap().contains("interrupted"),
                "{op}"
            );
            assert!(version.starts_with("15."), "{version}");
            assert!(!new_data.exists());
            assert!(cluster.data_dir().join("global/pg_control").exists());
        }
        // Finished: it had switched before it died.
        _ => {
            assert!(version.starts_with("16."), "{version}");
            assert!(!cluster.data_dir().join("global/pg_control").exists());
        }
    }
    let rows: Vec<i32> = cluster
        .connect("postgres")
        .query("SELECT id FROM t", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, [1]);
}
