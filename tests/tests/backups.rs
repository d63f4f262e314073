//! Backups over a real Barman backing up a real cluster, through the agent's
//! barmaid API over HTTP: servers, targets and backups as Barman sees them;
//! a recover job to a point in time between two backups, whose cluster
//! holds exactly that time's rows; every refusal; progress on a recover
//! slowed to take seconds; cancel; jobs across an agent restart.

use dbagent_tests::{
    Agent, AgentOptions, BARMAN_CLUSTER_CONF, Barman, PgCluster, barman_executable,
    pg_owned_tempdir, wait_for,
};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tempfile::TempDir;

/// `[backups]` for `barman`, with recovery targets `local` and `other`
/// under `targets_dir`.
fn backups_config(barman: &Barman, targets_dir: &Path, extra: &str) -> String {
    let run_as = if unsafe { libc::geteuid() } == 0 {
        "run_as = \"postgres\"\n"
    } else {
        ""
    };
    format!(
        "[backups]\nbarman = {:?}\nconfig = {:?}\n{run_as}{extra}\n\
         [backups.servers.pg.targets.local]\npath = {:?}\n\n\
         [backups.servers.pg.targets.other]\npath = {:?}\nrecover_job_name = \"RecoverJobOther\"\n",
        barman_executable().display().to_string(),
        barman.config_path().display().to_string(),
        targets_dir.join("local").display().to_string(),
        targets_dir.join("other").display().to_string(),
    )
}

fn agent_for(cluster: &PgCluster, barman: &Barman, targets_dir: &Path, extra: &str) -> Agent {
    Agent::start(
        cluster,
        AgentOptions::new().config(&backups_config(barman, targets_dir, extra)),
    )
}

/// `POST /api/recover_jobs` with a form body, as barmaid's curl sends it.
fn post_form(agent: &Agent, path: &str, form: &str) -> (u16, Value) {
    dbagent_tests::send(
        agent
            .request(reqwest::Method::POST, path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string()),
    )
}

fn delete(agent: &Agent, path: &str) -> (u16, Value) {
    dbagent_tests::send(agent.request(reqwest::Method::DELETE, path))
}

/// Waits for a job to end; returns it.
fn ended(agent: &Agent, id: &str, within: Duration) -> Value {
    wait_for("the job to end", within, || {
        let job = agent.get_ok(&format!("/api/recover_jobs/{id}"));
        matches!(
            job["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        )
        .then_some(job)
    })
}

fn count_rows(cluster: &PgCluster) -> Vec<i32> {
    cluster
        .connect("postgres")
        .query("SELECT id FROM t ORDER BY id", &[])
        .expect("read the test table")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// barmaid's time form, `2013-03-22 07:25:07 +0100`.
fn is_barmaid_time(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 25
        && text.chars().enumerate().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 | 19 => c == ' ',
            13 | 16 => c == ':',
            20 => c == '+' || c == '-',
            _ => c.is_ascii_digit(),
        })
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

#[test]
fn servers_backups_and_a_point_in_time_recover_through_the_api() {
    let mut cluster = PgCluster::start_with(BARMAN_CLUSTER_CONF);
    let barman = Barman::for_cluster(&cluster);
    let mut client = cluster.connect("postgres");
    client
        .batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    let first = barman.backup();
    // A point in time between the two backups, by the server's clock.
    let between: String = client
        .query_one("SELECT (now() + interval '1 second')::text", &[])
        .unwrap()
        .get(0);
    std::thread::sleep(Duration::from_millis(2100));
    client.batch_execute("INSERT INTO t VALUES (3);").unwrap();
    let second = barman.backup();
    barman.cron();

    let targets: TempDir = pg_owned_tempdir();
    let agent = agent_for(&cluster, &barman, targets.path(), "");

    // Servers.
    let servers = agent.get_ok("/api/servers");
    assert_eq!(servers.as_array().unwrap().len(), 1, "{servers}");
    let pg = &servers[0];
    assert_eq!(
        pg.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id", "pg_conn_ok", "active", "targets", "backups"]
    );
    assert_eq!(pg["id"], "pg");
    assert_eq!(pg["pg_conn_ok"], true, "{pg}");
    assert_eq!(pg["active"], true);
    assert_eq!(pg["targets"], serde_json::json!(["local", "other"]));
    assert_eq!(
        pg["backups"],
        serde_json::json!([second.as_str(), first.as_str()])
    );

    let one = agent.get_ok("/api/servers/pg");
    assert_eq!(
        one.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "active",
            "backup_dir",
            "base_backups_dir",
            "conn_info",
            "name",
            "pg_conn_ok",
            "ssh_check_ok",
            "ssh_cmd",
            "wals_dir",
            "id",
            "backups",
            "targets"
        ]
    );
    let home = barman.home().join("pg");
    assert_eq!(one["backup_dir"], home.display().to_string());
    assert_eq!(
        one["base_backups_dir"],
        home.join("base").display().to_string()
    );
    assert_eq!(one["wals_dir"], home.join("wals").display().to_string());
    assert!(
        one["conn_info"].as_str().unwrap().contains("user=postgres"),
        "{one}"
    );
    assert_eq!(one["name"], "pg");
    // Streaming backups need no SSH: nothing fails.
    assert_eq!(
        (one["ssh_check_ok"].clone(), one["ssh_cmd"].clone()),
        (Value::Bool(true), Value::from(""))
    );
    let (status, body) = agent.get("/api/servers/nosuch");
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nosuch"), "{body}");
    let (status, _) = agent.get("/api/servers/-c");
    assert_eq!(status, 400);

    let check = agent.get_ok("/api/servers/pg/check");
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["checks"]["postgresql"]["status"], "OK");

    // Targets.
    let listed = agent.get_ok("/api/servers/pg/targets");
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let other = agent.get_ok("/api/servers/pg/targets/other");
    assert_eq!(
        other,
        serde_json::json!({
            "id": "other",
            "server_id": "pg",
            "path": targets.path().join("other").display().to_string(),
            "remote_ssh_cmd": "",
            "recover_job_name": "RecoverJobOther",
        })
    );
    assert_eq!(agent.get("/api/servers/pg/targets/nosuch").0, 404);
    assert_eq!(agent.get("/api/servers/nosuch/targets").0, 404);

    // Backups.
    let backups = agent.get_ok("/api/servers/pg/backups");
    assert_eq!(
        backups,
        serde_json::json!([
            {"id": second, "server_id": "pg", "status": "done"},
            {"id": first, "server_id": "pg", "status": "done"},
        ])
    );
    let older = agent.get_ok(&format!("/api/servers/pg/backups/{first}"));
    let shown = barman.show_backup(&first);
    assert_eq!(older["id"], first.as_str());
    assert_eq!(older["status"], "done");
    assert_eq!(
        older["size"],
        shown["base_backup_information"]["backup_size_bytes"]
    );
    assert!(older["size"].as_u64().unwrap() > 1_000_000, "{older}");
    assert!(older["wal_file_size"].as_u64().unwrap() > 0, "{older}");
    assert_eq!(older["timeline"], 1);
    for field in ["backup_start", "backup_end"] {
        assert!(is_barmaid_time(older[field].as_str().unwrap()), "{older}");
    }
    assert!(older["backup_start"].as_str() <= older["backup_end"].as_str());
    assert_eq!(older["server_id"], "pg");
    let (status, body) = agent.get("/api/servers/pg/backups/20990101T000000");
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("20990101T000000"));

    // Refusals.
    for (form, status, naming) in [
        ("target=local&backup_id=x", 400, "server"),
        ("server=pg&backup_id=x", 400, "target"),
        ("server=pg&target=local", 400, "backup_id"),
        ("server=nosuch&target=local&backup_id=x", 404, "nosuch"),
        (
            &format!("server=pg&target=nosuch&backup_id={first}"),
            404,
            "nosuch",
        ),
        (
            "server=pg&target=local&backup_id=20990101T000000",
            404,
            "20990101T000000",
        ),
        (
            &format!("server=pg&target=local&backup_id={first}&target_time=yesterday"),
            400,
            "yesterday",
        ),
        ("server=pg&target=local&backup_id=--help", 400, "--help"),
        ("server=%zz", 400, "server"),
    ] {
        let (got, body) = post_form(&agent, "/api/recover_jobs", form);
        assert_eq!(got, status, "{form}: {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains(naming),
            "{form}: {body}"
        );
    }
    assert_eq!(agent.get("/api/recover_jobs").1, serde_json::json!([]));

    // The older backup to a time between the two: exactly its rows.
    let (status, job) = post_form(
        &agent,
        "/api/recover_jobs",
        &format!(
            "server=pg&target=local&backup_id={first}&target_time={}",
            between.replace('+', "%2B").replace(' ', "+")
        ),
    );
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["status"], "queued");
    assert!(is_barmaid_time(job["time"].as_str().unwrap()), "{job}");
    assert_eq!(job["message"], "");
    assert_eq!(job["pct_complete"], 0);
    assert_eq!(
        (
            job["server"].clone(),
            job["target"].clone(),
            job["backup_id"].clone()
        ),
        (
            Value::from("pg"),
            Value::from("local"),
            Value::from(first.as_str())
        )
    );
    assert_eq!(job["completed_at"], "");
    let id = job["id"].as_str().unwrap().to_string();
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    // One recover per target at a time; JSON bodies work too.
    let (status, body) = agent.post_json(
        "/api/recover_jobs",
        &format!(r#"{{"server": "pg", "target": "local", "backup_id": "{second}"}}"#),
    );
    assert_eq!(status, 409, "{body}");

    let done = ended(&agent, &id, Duration::from_secs(120));
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["pct_complete"], 100);
    assert!(
        done["time"].is_i64(),
        "GET shows time as a Unix time: {done}"
    );
    assert!(
        is_barmaid_time(done["completed_at"].as_str().unwrap()),
        "{done}"
    );
    let listed = agent.get_ok("/api/recover_jobs");
    assert_eq!(
        listed,
        serde_json::json!([{"id": id, "status": "completed"}])
    );
    // Ended: deleting it changes nothing.
    assert_eq!(delete(&agent, &format!("/api/recover_jobs/{id}")).0, 204);
    assert_eq!(
        agent.get_ok(&format!("/api/recover_jobs/{id}"))["status"],
        "completed"
    );
    assert_eq!(
        delete(&agent, "/api/recover_jobs/0123456789abcdef0123456789abcdef").0,
        404
    );

    let recovered = PgCluster::builder()
        .bin_dir(cluster.bin_dir())
        .existing_data(targets.path().join("local"))
        .start();
    recovered.wait_for_promotion();
    assert_eq!(count_rows(&recovered), [1, 2], "recovered to {between}");
    drop(recovered);

    // A backup through the API, followed as a job.
    let (status, job) = agent.post_json("/api/servers/pg/backups", "");
    assert_eq!(status, 201, "{job}");
    let backup_job = job["id"].as_str().unwrap().to_string();
    let done = barman.nudging_wal(|| {
        wait_for("the backup job to end", Duration::from_secs(120), || {
            let job = agent.get_ok(&format!("/api/backup_jobs/{backup_job}"));
            matches!(job["status"].as_str(), Some("completed" | "failed")).then_some(job)
        })
    });
    assert_eq!(done["status"], "completed", "{done}");
    let made = done["backup_id"].as_str().unwrap().to_string();
    assert!(
        agent.get_ok("/api/servers/pg")["backups"]
            .as_array()
            .unwrap()
            .contains(&Value::from(made.as_str())),
        "{made}"
    );
    // Backup jobs are not recover jobs.
    assert_eq!(agent.get(&format!("/api/recover_jobs/{backup_job}")).0, 404);
    assert_eq!(agent.post_json("/api/servers/nosuch/backups", "").0, 404);

    // PostgreSQL down: Barman says so, its backups stay listed.
    cluster.stop();
    let servers = agent.get_ok("/api/servers");
    assert_eq!(servers[0]["pg_conn_ok"], false, "{servers}");
    assert_eq!(servers[0]["backups"].as_array().unwrap().len(), 3);
}

#[test]
fn a_slow_recover_shows_progress_is_cancelled_and_jobs_outlive_a_restart() {
    let cluster = PgCluster::start_with(BARMAN_CLUSTER_CONF);
    let barman = Barman::for_cluster(&cluster);
    cluster
        .connect("postgres")
        .batch_execute(
            "CREATE TABLE filler AS SELECT g, md5(g::text) AS m FROM generate_series(1, 300000) g",
        )
        .unwrap();
    let backup = barman.backup();
    // Recovers copy at 4 MB/s from now on: a few seconds each.
    let mut config = std::fs::read_to_string(barman.config_path()).unwrap();
    config.push_str("bandwidth_limit = 4000\n");
    std::fs::write(barman.config_path(), config).unwrap();

    let targets = pg_owned_tempdir();
    let mut agent = agent_for(&cluster, &barman, targets.path(), "max_running_jobs = 1\n");
    let start = |target: &str| {
        let (status, job) = post_form(
            &agent,
            "/api/recover_jobs",
            &format!("server=pg&target={target}&backup_id={backup}"),
        );
        assert_eq!(status, 201, "{job}");
        job["id"].as_str().unwrap().to_string()
    };

    // Progress rises while it works, never reaching 100.
    let id = start("local");
    let mut seen = Vec::new();
    wait_for("progress past 20%", Duration::from_secs(60), || {
        let job = agent.get_ok(&format!("/api/recover_jobs/{id}"));
        assert_ne!(job["status"], "failed", "{job}");
        let pct = job["pct_complete"].as_u64().unwrap();
        seen.push(pct);
        (job["status"] == "working" && pct >= 20).then_some(())
    });
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(seen.iter().all(|&p| p < 100), "{seen:?}");
    assert!(
        seen.iter().any(|&p| p > 0 && p < 20),
        "progress seen only at {seen:?}"
    );

    // Cancelled while working: nothing of it runs afterwards.
    let local = targets.path().join("local").display().to_string();
    assert!(!processes_mentioning(&local).is_empty(), "the recover runs");
    assert_eq!(delete(&agent, &format!("/api/recover_jobs/{id}")).0, 204);
    let job = agent.get_ok(&format!("/api/recover_jobs/{id}"));
    assert_eq!(job["status"], "cancelled", "{job}");
    assert!(job["pct_complete"].as_u64().unwrap() < 100);
    assert!(
        processes_mentioning(&local).is_empty(),
        "{:?}",
        processes_mentioning(&local)
    );

    // One slot: the second waits queued behind the first, and a queued
    // job is dequeued by DELETE.
    let working = start("local");
    let queued = start("other");
    wait_for("the first to work", Duration::from_secs(30), || {
        let job = agent.get_ok(&format!("/api/recover_jobs/{working}"));
        assert!(
            matches!(job["status"].as_str(), Some("queued" | "working")),
            "{job}"
        );
        (job["status"] == "working").then_some(())
    });
    assert_eq!(
        agent.get_ok(&format!("/api/recover_jobs/{queued}"))["status"],
        "queued"
    );
    assert_eq!(
        delete(&agent, &format!("/api/recover_jobs/{queued}")).0,
        204
    );
    let dequeued = agent.get_ok(&format!("/api/recover_jobs/{queued}"));
    assert_eq!(dequeued["status"], "cancelled", "{dequeued}");
    let queued = start("other");

    // The agent dies: the working job ends failed, its processes stopped;
    // the queued one runs after the restart.
    agent.restart().unwrap();
    let failed = agent.get_ok(&format!("/api/recover_jobs/{working}"));
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["message"].as_str().unwrap().contains("interrupted"),
        "{failed}"
    );
    wait_for("the orphans to be gone", Duration::from_secs(10), || {
        processes_mentioning(&local).is_empty().then_some(())
    });
    let done = ended(&agent, &queued, Duration::from_secs(120));
    assert_eq!(done["status"], "completed", "{done}");
    let ids: Vec<Value> = agent
        .get_ok("/api/recover_jobs")
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].clone())
        .collect();
    assert_eq!(ids.len(), 4, "every job is still listed: {ids:?}");
}
