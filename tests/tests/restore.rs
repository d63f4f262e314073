//! Operations on the managed instance backed up by a real Barman, through
//! the database-service API: periodic backups scheduled by the settings,
//! and a point-in-time restore that brings back exactly the rows of its
//! time (WAL archived after the backup replayed), refused before anything
//! stops when no backup reaches the time, and put back when Barman fails.

use dbagent_tests::{
    Agent, AgentOptions, BARMAN_CLUSTER_CONF, Barman, PgCluster, barman_executable, wait_for,
};
use serde_json::{Value, json};
use std::time::Duration;

fn config(barman: &Barman) -> String {
    let run_as = if unsafe { libc::geteuid() } == 0 {
        "run_as = \"postgres\"\n"
    } else {
        ""
    };
    format!(
        "[backups]\nbarman = {:?}\nconfig = {:?}\n{run_as}\n\
         [databases.main]\nengine = \"postgresql\"\nmanaged = true\nbarman_server = \"pg\"\n\n\
         [databases.cache]\nengine = \"redis\"\nhost = \"127.0.0.1\"\n",
        barman_executable().display().to_string(),
        barman.config_path().display().to_string(),
    )
}

fn rows(cluster: &PgCluster) -> Vec<i32> {
    cluster
        .connect("postgres")
        .query("SELECT id FROM t ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn postmaster_pid(cluster: &PgCluster) -> String {
    std::fs::read_to_string(cluster.data_dir().join("postmaster.pid"))
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn restore(agent: &Agent, body: &Value) -> (u16, Value) {
    agent.post_json("/api/databases/main/pitr/restore", &body.to_string())
}

fn operation_end(agent: &Agent, id: &str) -> Value {
    wait_for("the operation to end", Duration::from_secs(240), || {
        let op = agent.get_ok(&format!("/api/operations/{id}"))["operation"].clone();
        matches!(op["status"].as_str(), Some("finished" | "error")).then_some(op)
    })
}

fn patch(agent: &Agent, database: &str, settings: Value) -> (u16, Value) {
    dbagent_tests::send(
        agent
            .request(
                reqwest::Method::PATCH,
                &format!("/api/databases/{database}"),
            )
            .header("content-type", "application/json")
            .body(json!({ "database": settings }).to_string()),
    )
}

#[test]
fn periodic_backups_then_a_point_in_time_restore() {
    let cluster = PgCluster::start_with(BARMAN_CLUSTER_CONF);
    let barman = Barman::for_cluster(&cluster);
    let mut client = cluster.connect("postgres");
    client
        .batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        .unwrap();
    let first = barman.backup();
    let agent = Agent::start(&cluster, AgentOptions::new().config(&config(&barman)));

    // Periodic backups: the current hour (UTC) schedules one now.
    let hour: i64 = client
        .query_one(
            "SELECT extract(hour FROM now() AT TIME ZONE 'UTC')::int8",
            &[],
        )
        .unwrap()
        .get(0);
    let (status, body) = patch(&agent, "cache", json!({"periodic_backups_enabled": true}));
    assert_eq!(status, 422, "{body}");
    assert!(
        body["errors"]["periodic_backups_enabled"][0]
            .as_str()
            .unwrap()
            .contains("redis"),
        "{body}"
    );
    let (status, body) = patch(
        &agent,
        "main",
        json!({"periodic_backups_enabled": false, "periodic_backups_scheduled_at": [hour]}),
    );
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        agent.get_ok("/api/databases/main/operations")["operations"],
        json!([]),
        "disabled: nothing runs"
    );
    let (status, body) = patch(&agent, "main", json!({"periodic_backups_enabled": true}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["database"]["periodic_backups_scheduled_at"],
        json!([hour])
    );
    let backup_op = barman.nudging_wal(|| {
        wait_for("the periodic backup", Duration::from_secs(120), || {
            let ops = agent.get_ok("/api/databases/main/operations")["operations"].clone();
            let op = ops
                .as_array()?
                .iter()
                .find(|o| o["type"] == "backup")?
                .clone();
            matches!(op["status"].as_str(), Some("finished" | "error")).then_some(op)
        })
    });
    assert_eq!(backup_op["status"], "finished", "{backup_op}");
    let listed = barman.list_backups();
    assert_eq!(
        listed.len(),
        2,
        "Barman lists the periodic backup: {listed:?}"
    );
    // Once per scheduled hour: changing the settings again runs no second one.
    let (status, _) = patch(
        &agent,
        "main",
        json!({"periodic_backups_scheduled_at": [hour]}),
    );
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_secs(2));
    let ops = agent.get_ok("/api/databases/main/operations")["operations"].clone();
    assert_eq!(ops.as_array().unwrap().len(), 1, "{ops}");
    let (status, body) = patch(&agent, "main", json!({"periodic_backups_enabled": false}));
    assert_eq!(
        (status, body["database"]["periodic_backups_enabled"].clone()),
        (200, json!(false))
    );

    // Rows written after the backups: 2 before the time, 3 after it.
    client.batch_execute("INSERT INTO t VALUES (2);").unwrap();
    let between: String = client
        .query_one(
            "SELECT to_char((now() + interval '1 second') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
            &[],
        )
        .unwrap()
        .get(0);
    std::thread::sleep(Duration::from_millis(2100));
    client.batch_execute("INSERT INTO t VALUES (3);").unwrap();
    barman.switch_wal();
    drop(client);

    // Refused before anything stops.
    let pid = postmaster_pid(&cluster);
    for (body, status, field) in [
        (json!({"restore_time": "yesterday"}), 400, None),
        (json!({"restore_time": 5}), 400, None),
        (json!({}), 422, Some("restore_time")),
        (
            json!({"restore_time": "2000-01-01T00:00:00Z"}),
            422,
            Some("restore_time"),
        ),
        (
            json!({"restore_time": "2999-01-01T00:00:00Z"}),
            422,
            Some("restore_time"),
        ),
    ] {
        let (got, answer) = restore(&agent, &body);
        assert_eq!(got, status, "{body}: {answer}");
        if let Some(field) = field {
            assert!(answer["errors"][field][0].is_string(), "{answer}");
        }
    }
    let (status, body) = agent.post_json(
        "/api/databases/cache/pitr/restore",
        &json!({"restore_time": between}).to_string(),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(postmaster_pid(&cluster), pid, "the server was not touched");
    assert_eq!(rows(&cluster), [1, 2, 3]);

    // The backups' files are gone midway: Barman fails copying them, and
    // the old data comes back.
    let base = barman.home().join("pg/base");
    let hidden: Vec<_> = barman
        .list_backups()
        .iter()
        .map(|b| {
            let data = base.join(&b.id).join("data");
            let aside = base.join(&b.id).join("data.hidden");
            std::fs::rename(&data, &aside).unwrap();
            (data, aside)
        })
        .collect();
    let (status, body) = restore(&agent, &json!({"restore_time": between}));
    assert_eq!(status, 201, "{body}");
    let failed = operation_end(&agent, body["operation_id"].as_str().unwrap());
    for (data, aside) in hidden {
        std::fs::rename(aside, data).unwrap();
    }
    assert_eq!(failed["status"], "error", "{failed}");
    let why = failed["error"].as_str().unwrap();
    assert!(why.starts_with("recover: "), "{why}");
    assert!(why.contains("started again on its old data"), "{why}");
    assert_eq!(rows(&cluster), [1, 2, 3]);

    // The restore: exactly the rows of that time.
    let (status, body) = restore(&agent, &json!({"restore_time": between}));
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["operation_id"]
    );
    let id = body["operation_id"].as_str().unwrap().to_string();
    let op = operation_end(&agent, &id);
    assert_eq!(op["status"], "finished", "{op}");
    assert_eq!(op["type"], "pitr-restore");
    assert_eq!(rows(&cluster), [1, 2], "restored to {between} from {first}");
    assert_eq!(agent.get("/activity").0, 200);
    assert_eq!(
        agent.get_ok("/api/databases/main")["database"]["status"],
        "running"
    );
    // The kept copy is gone (pitr_keep_copies = 0).
    let parent = cluster.data_dir().parent().unwrap().to_path_buf();
    let kept: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".pitr-"))
        .collect();
    assert!(kept.is_empty(), "{kept:?}");
}
