//! temBoard's monitoring area and `/metrics`, on a real cluster: every probe
//! with its fields, deltas that move under load and a checkpoint, the
//! history (paging, bad parameters, capped, kept across a restart), and a
//! real Prometheus scraping the agent.

use dbagent_tests::{Agent, AgentOptions, PgCluster, TOKEN, free_port, wait_for};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const KEY: &str = "monitoring-test-key";

fn agent(cluster: &PgCluster, extra: &str) -> Agent {
    Agent::start(
        cluster,
        AgentOptions::new()
            .auth(&format!("key = \"{KEY}\""))
            .config("[plugin.monitoring.settings]\nscheduler_interval = 1\nhistory_length = 4\n")
            .config(extra),
    )
}

fn history(agent: &Agent, query: &str) -> Vec<Value> {
    let body = agent.get_ok(&format!("/monitoring/history{query}"));
    body.as_array().unwrap_or_else(|| panic!("{body}")).clone()
}

fn fields(row: &Value) -> Vec<String> {
    row.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn probes_history_and_deltas() {
    let cluster = PgCluster::start();
    let mut agent = agent(&cluster, "");

    // Every probe, run now: raw counters, the fields temBoard's have.
    let expected: &[(&str, &[&str])] = &[
        (
            "sessions",
            &[
                "dbname",
                "active",
                "waiting",
                "idle",
                "idle_in_xact",
                "idle_in_xact_aborted",
                "fastpath",
                "disabled",
                "no_priv",
                "datetime",
            ],
        ),
        ("xacts", &["dbname", "n_commit", "n_rollback", "datetime"]),
        (
            "locks",
            &[
                "dbname",
                "access_share",
                "waiting_access_share",
                "access_exclusive",
                "waiting_access_exclusive",
                "siread",
                "datetime",
            ],
        ),
        (
            "blocks",
            &[
                "dbname",
                "blks_read",
                "blks_hit",
                "hitmiss_ratio",
                "datetime",
            ],
        ),
        (
            "bgwriter",
            &[
                "checkpoints_timed",
                "checkpoints_req",
                "buffers_alloc",
                "datetime",
            ],
        ),
        ("db_size", &["dbname", "size", "datetime"]),
        ("tblspc_size", &["spcname", "size", "datetime"]),
        (
            "filesystems_size",
            &["mount_point", "device", "total", "used", "datetime"],
        ),
        (
            "cpu",
            &[
                "cpu",
                "time_user",
                "time_system",
                "time_idle",
                "time_iowait",
                "time_steal",
                "datetime",
            ],
        ),
        (
            "process",
            &[
                "context_switches",
                "forks",
                "procs_running",
                "procs_blocked",
                "procs_total",
                "datetime",
            ],
        ),
        (
            "memory",
            &[
                "mem_total",
                "mem_used",
                "mem_free",
                "mem_buffers",
                "mem_cached",
                "swap_total",
                "swap_used",
                "datetime",
            ],
        ),
        ("loadavg", &["load1", "load5", "load15", "datetime"]),
        (
            "wal_files",
            &[
                "total",
                "total_size",
                "current_location",
                "archive_ready",
                "written_size",
                "datetime",
            ],
        ),
        ("temp_files_size_delta", &["dbname", "size", "datetime"]),
        ("heap_bloat", &["dbname", "ratio", "datetime"]),
        ("btree_bloat", &["dbname", "ratio", "datetime"]),
    ];
    for (probe, wanted) in expected {
        let body = agent.get_ok(&format!("/monitoring/probe/{probe}"));
        let rows = body[*probe]
            .as_array()
            .unwrap_or_else(|| panic!("{probe}: {body}"));
        assert!(!rows.is_empty(), "{probe}: {body}");
        let got = fields(&rows[0]);
        for field in *wanted {
            assert!(
                got.contains(&field.to_string()),
                "{probe} lacks {field}: {body}"
            );
        }
        assert!(
            rows[0].get("current").is_none(),
            "probe routes are raw: {body}"
        );
    }
    let sessions = agent.get_ok("/monitoring/probe/sessions");
    assert!(
        sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["dbname"] == "postgres"),
        "{sessions}"
    );
    // A primary has no replication to report.
    for probe in ["replication_lag", "replication_connection"] {
        assert_eq!(
            agent.get_ok(&format!("/monitoring/probe/{probe}"))[probe],
            serde_json::json!([])
        );
    }
    assert_eq!(agent.get("/monitoring/probe/nosuch").0, 404);
    let live = agent.get_ok("/monitoring/collect");
    for probe in ["sessions", "xacts", "cpu", "memory", "heap_bloat"] {
        assert!(live["data"][probe].is_array(), "{probe}: {live}");
    }
    assert!(
        live["data"]["xacts"][0].get("current").is_none(),
        "raw counters: {live}"
    );
    assert_eq!(
        agent.get_ok("/monitoring/config"),
        serde_json::json!({"dbnames": ["*"], "scheduler_interval": 1})
    );
    // The agent key reads them, as temBoard's UI does.
    let (status, _) = dbagent_tests::send(agent.anonymous(
        reqwest::Method::GET,
        &format!("/monitoring/history?key={KEY}&limit=100"),
    ));
    assert_eq!(status, 200);

    // Deltas move under load and a checkpoint.
    wait_for("two collections", Duration::from_secs(30), || {
        (history(&agent, "").len() >= 2).then_some(())
    });
    let mut client = cluster.connect("postgres");
    client.batch_execute("CREATE TABLE load (i int)").unwrap();
    for i in 0..200 {
        client
            .execute("INSERT INTO load VALUES ($1)", &[&i])
            .unwrap();
    }
    client.batch_execute("CHECKPOINT").unwrap();
    // The forced checkpoint shows in one collection's delta.
    wait_for("the checkpoint in a delta", Duration::from_secs(30), || {
        history(&agent, "?limit=4")
            .iter()
            .any(|c| c["data"]["bgwriter"][0]["checkpoints_req"].as_i64() >= Some(1))
            .then_some(())
    });
    // Statistics reach pg_stat_database within a second or so.
    let postgres_xacts = |c: &Value| {
        c["data"]["xacts"]
            .as_array()?
            .iter()
            .find(|r| r["dbname"] == "postgres")
            .cloned()
    };
    let moved = wait_for(
        "a collection that saw the load",
        Duration::from_secs(30),
        || {
            let last = history(&agent, "?limit=1").pop()?;
            (postgres_xacts(&last)?["current"]["n_commit"].as_i64()? >= 200).then_some(last)
        },
    );
    let postgres = postgres_xacts(&moved).unwrap();
    assert!(
        postgres["measure_interval"].as_f64().unwrap() > 0.0,
        "{postgres}"
    );
    let deltas: Vec<i64> = history(&agent, "?limit=4")
        .iter()
        .filter_map(|c| postgres_xacts(c)?["n_commit"].as_i64())
        .collect();
    assert!(
        deltas.iter().any(|d| *d > 0),
        "commits show in the deltas: {deltas:?}"
    );
    let collection = &moved;
    assert!(collection["datetime"].as_str().unwrap().ends_with(" +0000"));
    for field in [
        "hostname",
        "os",
        "os_version",
        "cpu_arch",
        "cpu_count",
        "memory_size",
        "ip_addresses",
        "filesystems",
        "os_flavor",
    ] {
        assert!(
            collection["hostinfo"].get(field).is_some(),
            "hostinfo lacks {field}: {collection}"
        );
    }
    let instance = &collection["instances"][0];
    assert_eq!(instance["available"], true);
    assert_eq!(instance["port"], cluster.port());
    assert!(instance.get("password").is_none());

    // Paging: capped at history_length, oldest first, from `start`.
    wait_for("the history to fill", Duration::from_secs(30), || {
        (history(&agent, "").len() >= 4).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let all = history(&agent, "");
    assert_eq!(all.len(), 4, "capped at history_length");
    let times: Vec<&str> = all
        .iter()
        .map(|c| c["datetime"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert_eq!(history(&agent, "?limit=2").len(), 2);
    let from = times[2].replace(' ', "T").replace(" +0000", "");
    let from = format!("{}Z", &from[..19]);
    let paged = history(&agent, &format!("?start={from}&limit=10"));
    assert!(
        !paged.is_empty() && paged[0]["datetime"].as_str().unwrap() >= times[2],
        "{from}"
    );
    assert_eq!(history(&agent, "?start=2099-01-01T00:00:00Z").len(), 0);
    for bad in [
        "?start=yesterday",
        "?start=2026-12-01T10:00:00",
        "?limit=-1",
        "?limit=x",
    ] {
        let (status, body) = agent.get(&format!("/monitoring/history{bad}"));
        assert_eq!(status, 406, "{bad}: {body}");
    }

    // The history survives a restart.
    agent.restart().unwrap();
    assert!(!history(&agent, "").is_empty());
}

/// Prometheus' own parser, `promtool check metrics` (Debian's package).
fn promtool_accepts(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/setup installs it)");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Lint remarks (e.g. counters not ending in _total) are not parse errors.
    assert!(
        !said.contains("error while linting") && !said.contains("text format parsing error"),
        "{said}"
    );
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn metrics_are_scraped_by_a_real_prometheus() {
    let cluster = PgCluster::start();
    let scrapers = free_port();
    let agent = agent(
        &cluster,
        &format!("[metrics]\nlisten = \"127.0.0.1:{scrapers}\"\n"),
    );
    wait_for("a collection", Duration::from_secs(30), || {
        (!history(&agent, "").is_empty()).then_some(())
    });
    let _ = agent.get("/activity");
    let response = agent
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().unwrap();
    for family in [
        "dbagent_pg_up 1",
        "dbagent_pg_sessions{",
        "dbagent_pg_database_size_bytes{dbname=\"postgres\"}",
        "dbagent_host_load1 ",
        "dbagent_http_requests_total{route=\"/activity\",status=\"200\"}",
        "dbagent_plugin_call_duration_seconds_bucket{plugin=\"activity\"",
        "dbagent_job_runs_total{plugin=\"monitoring\",job=\"collect\",outcome=\"done\"}",
        "dbagent_pg_pool_connections{",
    ] {
        assert!(text.contains(family), "{family} missing from:\n{text}");
    }
    promtool_accepts(&text);
    // The key reads it too; nothing else does.
    let (status, _) =
        dbagent_tests::send(agent.anonymous(reqwest::Method::GET, &format!("/metrics?key={KEY}")));
    assert_eq!(status, 200);
    let (status, _) = dbagent_tests::send(agent.anonymous(reqwest::Method::GET, "/metrics"));
    assert!((400..500).contains(&status), "{status}");

    // The scrapers' listener: /metrics without credentials, nothing else.
    let open = reqwest::blocking::Client::new();
    let scraped = open
        .get(format!("http://127.0.0.1:{scrapers}/metrics"))
        .send()
        .unwrap();
    assert_eq!(scraped.status().as_u16(), 200);
    assert!(scraped.text().unwrap().contains("dbagent_pg_up 1"));
    for path in ["/status", "/activity", "/monitoring/history"] {
        let status = open
            .get(format!("http://127.0.0.1:{scrapers}{path}"))
            .send()
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 404, "{path}");
    }

    // A real Prometheus scrapes the agent.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let target = agent.addr().to_string();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: dbagent\n    metrics_path: /metrics\n    authorization:\n      credentials: {TOKEN}\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package; scripts/setup installs it)"),
    );
    let http = reqwest::blocking::Client::new();
    let query = |q: &str| -> Option<Vec<Value>> {
        let body: Value = http
            .get(format!("http://127.0.0.1:{port}/api/v1/query"))
            .query(&[("query", q)])
            .send()
            .ok()?
            .json()
            .ok()?;
        body["data"]["result"].as_array().cloned()
    };
    let up = wait_for(
        "Prometheus to scrape the agent",
        Duration::from_secs(60),
        || query("up{job=\"dbagent\"}").filter(|r| r.first().is_some_and(|s| s["value"][1] == "1")),
    );
    assert_eq!(up.len(), 1);
    let sizes = wait_for("the database sizes", Duration::from_secs(30), || {
        query("dbagent_pg_database_size_bytes").filter(|r| !r.is_empty())
    });
    let postgres = sizes
        .iter()
        .find(|s| s["metric"]["dbname"] == "postgres")
        .expect("the postgres database's size");
    let bytes: f64 = postgres["value"][1].as_str().unwrap().parse().unwrap();
    assert!(bytes > 1_000_000.0, "{postgres}");
    let requests = query("sum(dbagent_http_requests_total)").unwrap();
    let total: f64 = requests[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(total >= 1.0, "{requests:?}");
}
