//! What a hostile client, or a careless one, can do to the agent over real
//! HTTP: flood the login, stall request bodies, hold sessions past their
//! user, send malformed HTTP; and what temBoard's own clients read from the
//! core routes.

use dbagent_tests::{
    Agent, AgentOptions, PgCluster, agent_with_alice, binary, raw_http, send, user_add, wait_for,
};
use reqwest::Method;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// A client whose connections come from `127.0.0.N`: another address to the agent.
fn client_from(n: u8) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

fn login_from(
    client: &reqwest::blocking::Client,
    agent: &Agent,
    user: &str,
    password: &str,
) -> (u16, Value) {
    send(
        client
            .post(agent.url("/login"))
            .header("content-type", "application/json")
            .body(json!({"username": user, "password": password}).to_string()),
    )
}

// ---- 1. login flood ----

#[test]
fn a_login_flood_is_bounded_in_memory_and_pace_and_others_still_log_in() {
    let cluster = PgCluster::start();
    let agent = agent_with_alice(&cluster, AgentOptions::new());
    let before = agent.resident_bytes();
    let started = Instant::now();
    let flood: Vec<_> = (0..300)
        .map(|i| {
            let url = agent.url("/login");
            std::thread::spawn(move || {
                let request = client_from(1)
                    .post(url)
                    .header("content-type", "application/json")
                    .body(
                        json!({"username": "alice", "password": format!("wrong-{i}")}).to_string(),
                    );
                // Past the per-address connection bound, a connection may be
                // closed before the request is even sent.
                match request.send() {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body = response.json::<Value>().unwrap_or(Value::Null);
                        (status, body)
                    }
                    Err(_) => (0, json!({"error": "connection closed"})),
                }
            })
        })
        .collect();
    // While the flood is queued, a user from another address logs in at once.
    std::thread::sleep(Duration::from_millis(300));
    let good = Instant::now();
    let (status, body) = login_from(&client_from(2), &agent, "alice", "alice-secret");
    let good_took = good.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(
        good_took < Duration::from_secs(3),
        "a good login from another address took {good_took:?}"
    );
    let mut peak = agent.resident_bytes();
    let mut outcomes = std::collections::BTreeMap::new();
    for handle in flood {
        let (status, body) = handle.join().expect("a flood thread");
        assert!(
            matches!(status, 0 | 404 | 429 | 503),
            "a bad login got {status}: {body}"
        );
        assert!(body["error"].is_string(), "{body}");
        *outcomes.entry(status).or_insert(0) += 1;
        peak = peak.max(agent.resident_bytes());
    }
    let checked = outcomes.get(&404).copied().unwrap_or(0);
    // Five free failures, then one check per turn, paced up to the 10 s queue bound.
    assert!(
        checked <= 12,
        "{checked} passwords checked in {:?}: {outcomes:?}",
        started.elapsed()
    );
    assert!(
        outcomes.get(&429).copied().unwrap_or(0) > 200,
        "{outcomes:?}"
    );
    let after = agent.resident_bytes();
    assert!(
        peak < 100 << 20 && after < 100 << 20,
        "resident memory: {} MiB before, {} MiB at peak, {} MiB after",
        before >> 20,
        peak >> 20,
        after >> 20
    );
    println!(
        "login flood: {outcomes:?}; RSS {} MiB before, peak {} MiB, after {} MiB; good login from another address {good_took:?}",
        before >> 20,
        peak >> 20,
        after >> 20
    );
}

#[test]
fn concurrent_logins_beyond_the_cores_wait_or_get_a_json_503_never_a_500() {
    let cluster = PgCluster::start();
    let agent = agent_with_alice(&cluster, AgentOptions::new());
    // Many addresses, so that the per-address pace does not hold them back.
    let logins: Vec<_> = (0..40u8)
        .map(|i| {
            let url = agent.url("/login");
            std::thread::spawn(move || {
                send(
                    client_from(10 + i)
                        .post(url)
                        .header("content-type", "application/json")
                        .body(json!({"username": "alice", "password": "alice-secret"}).to_string()),
                )
            })
        })
        .collect();
    for login in logins {
        let (status, body) = login.join().expect("a login thread");
        assert!(matches!(status, 200 | 503), "{status}: {body}");
        if status == 200 {
            assert!(body["session"].is_string(), "{body}");
        } else {
            assert!(body["error"].is_string(), "{body}");
        }
    }
}

// ---- 2. stalled request bodies ----

/// Opens up to `n` connections from `127.0.0.<from>` that send a login's
/// headers and one byte of its body, then stall.
fn stall(agent: &Agent, n: usize, from: u8) -> Vec<std::net::TcpStream> {
    use socket2::{Domain, Socket, Type};
    use std::io::Write;
    let addr: std::net::SocketAddr = agent.addr().parse().unwrap();
    let local: std::net::SocketAddr = (Ipv4Addr::new(127, 0, 0, from), 0).into();
    (0..n)
        .filter_map(|_| {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
            socket.bind(&local.into()).ok()?;
            socket
                .connect_timeout(&addr.into(), Duration::from_secs(2))
                .ok()?;
            let mut stream: std::net::TcpStream = socket.into();
            stream
                .write_all(
                    b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
                )
                .ok()?;
            Some(stream)
        })
        .collect()
}

/// Lets this test process open as many sockets as its hard limit allows.
fn raise_own_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[test]
fn stalled_bodies_from_one_address_time_out_and_never_lock_others_out() {
    raise_own_open_files_limit();
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .server("request_timeout_secs = 2\nmax_connections_per_address = 50")
            .open_files(1024),
    );
    let mut stalled = stall(&agent, 1100, 1);
    // From another address, served at once during the stall.
    let other = client_from(2);
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        let (status, _) = send(other.get(agent.url("/status")));
        assert_eq!(status, 200);
        worst = worst.max(t.elapsed());
    }
    assert!(
        worst < Duration::from_secs(1),
        "a normal client waited {worst:?} during the stall"
    );
    println!(
        "stalled bodies: worst /status of a client from another address during {} stalled connections: {worst:?}",
        stalled.len()
    );

    // The stalled connections admitted get a JSON 408 within the request
    // timeout and are closed; the others were turned away with a 503.
    use std::io::Read;
    let (mut timed_out, mut turned_away) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(8);
    for socket in stalled.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .unwrap();
        let mut answer = Vec::new();
        let _ = socket.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        if answer.starts_with("HTTP/1.1 408") {
            assert!(answer.contains("\"error\""), "{answer}");
            timed_out += 1;
        } else if answer.starts_with("HTTP/1.1 503") {
            turned_away += 1;
        }
    }
    // 50 at a time from the address (less the harness's own keep-alive
    // connection); once they time out, later ones take their places.
    assert!(timed_out >= 48, "{timed_out} stalled requests got a 408");
    assert!(
        timed_out + turned_away >= stalled.len() - 5,
        "{timed_out} timed out and {turned_away} turned away of {}",
        stalled.len()
    );
}

#[test]
fn out_of_descriptors_the_agent_keeps_serving_its_connections_and_recovers() {
    raise_own_open_files_limit();
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .server("request_timeout_secs = 3\nmax_connections_per_address = 60")
            .open_files(300),
    );
    // A keep-alive client connected before the flood keeps being served.
    let early = client_from(3);
    assert_eq!(send(early.get(agent.url("/status"))).0, 200);
    // Stalls come in batches from new addresses until the accept loop meets
    // the limit: on a loaded machine the first ones may time out before the
    // agent has accepted enough to run out, so a fixed count is not enough.
    let out_of_descriptors = || agent.log_text().contains("accept failed");
    let mut stalled = Vec::new();
    for from in 10..80u8 {
        stalled.extend(stall(&agent, 60, from));
        if from >= 17 && out_of_descriptors() {
            break;
        }
        for _ in 0..2 {
            assert_eq!(send(early.get(agent.url("/status"))).0, 200);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !out_of_descriptors() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        out_of_descriptors(),
        "the agent never ran out of descriptors: {} stalled connections",
        stalled.len()
    );
    for _ in 0..5 {
        assert_eq!(send(early.get(agent.url("/status"))).0, 200);
    }
    // Once the stalls time out, newcomers are served again.
    let newcomer = client_from(2);
    let recovered = Instant::now();
    wait_for("a new client to be served", Duration::from_secs(30), || {
        newcomer
            .get(agent.url("/status"))
            .timeout(Duration::from_secs(1))
            .send()
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    });
    println!(
        "out of descriptors: {} stalled connections; a newcomer was served after {:?}",
        stalled.len(),
        recovered.elapsed()
    );
    drop(stalled);
}

#[test]
fn an_oversized_body_announced_with_expect_continue_is_refused_at_once() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let request = format!(
        "POST /pgconf/configuration HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n",
        dbagent_tests::TOKEN
    );
    let answer = raw_http(agent.addr(), request.as_bytes(), Duration::from_secs(2));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(answer.contains("Request body too large."), "{answer}");
}

// ---- 3. sessions end with their user ----

#[test]
fn sessions_end_when_their_user_is_removed_or_their_password_changes() {
    let cluster = PgCluster::start();
    let agent = agent_with_alice(&cluster, AgentOptions::new());
    user_add(agent.config_path(), "bob", "bob-secret");
    user_add(agent.config_path(), "carol", "carol-secret");
    let alice = agent.session_of("alice", "alice-secret");
    let bob = agent.session_of("bob", "bob-secret");
    let carol = agent.session_of("carol", "carol-secret");
    for s in [&alice, &bob, &carol] {
        assert_eq!(agent.with_session(Method::GET, "/profile", s).0, 200);
    }

    // The CLI ends them at once.
    let out = std::process::Command::new(binary())
        .args(["user", "del", "bob", "--config"])
        .arg(agent.config_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(agent.with_session(Method::GET, "/profile", &bob).0, 401);
    user_add(agent.config_path(), "alice", "alice-new-secret");
    let (status, _) = agent.with_session(Method::POST, "/administration/control", &alice);
    assert_eq!(status, 401);
    assert_eq!(agent.with_session(Method::GET, "/profile", &alice).0, 401);

    // An edit of the users file by other means takes effect at the reload.
    let users = agent.dir().join("users");
    let text = std::fs::read_to_string(&users).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with("carol:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&users, kept).unwrap();
    assert_eq!(agent.with_session(Method::GET, "/profile", &carol).0, 200);
    agent.signal(libc::SIGHUP);
    wait_for("carol's session to end", Duration::from_secs(10), || {
        (agent.with_session(Method::GET, "/profile", &carol).0 == 401).then_some(())
    });
    let fresh = agent.session_of("alice", "alice-new-secret");
    assert_eq!(agent.with_session(Method::GET, "/profile", &fresh).0, 200);
}

#[test]
fn a_session_ends_at_its_lifetime_however_much_it_is_used() {
    let cluster = PgCluster::start();
    let agent = agent_with_alice(
        &cluster,
        AgentOptions::new().auth("session_timeout_secs = 3600\nsession_lifetime_secs = 3"),
    );
    let alice = agent.session_of("alice", "alice-secret");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        assert_eq!(agent.with_session(Method::GET, "/profile", &alice).0, 200);
        std::thread::sleep(Duration::from_millis(250));
    }
    wait_for(
        "the session to reach its lifetime",
        Duration::from_secs(5),
        || (agent.with_session(Method::GET, "/profile", &alice).0 == 401).then_some(()),
    );
}

// ---- 5. kill -9 during a running job ----

#[test]
fn a_job_statement_left_by_a_killed_agent_is_ended_before_the_job_runs_again() {
    let cluster = PgCluster::start();
    let mut client = cluster.connect("postgres");
    client
        .batch_execute(
            "CREATE TABLE held (i int); INSERT INTO held SELECT generate_series(1, 100);",
        )
        .unwrap();
    let mut agent = Agent::start(&cluster, AgentOptions::new());
    // The VACUUM waits for this lock, so it is still running when the agent dies.
    let mut holder = cluster.connect("postgres");
    holder
        .batch_execute("BEGIN; LOCK TABLE held IN ACCESS EXCLUSIVE MODE;")
        .unwrap();
    let (status, body) = agent.post_json(
        "/maintenance/postgres/schema/public/table/held/vacuum",
        "{}",
    );
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let app = format!("dbagent-job-{id}");
    let job_backends = |client: &mut postgres::Client| -> i64 {
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .unwrap()
            .get(0)
    };
    wait_for(
        "the VACUUM to wait on the lock",
        Duration::from_secs(20),
        || (job_backends(&mut client) == 1).then_some(()),
    );
    let orphan: i32 = client
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .get(0);

    // Watch the server while the agent is killed and starts again.
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let watching = std::sync::Arc::clone(&watching);
        let mut watch = cluster.connect("postgres");
        let app = app.clone();
        std::thread::spawn(move || {
            let mut most = 0i64;
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                let n: i64 = watch
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                        &[&app],
                    )
                    .unwrap()
                    .get(0);
                most = most.max(n);
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        })
    };
    agent.restart().unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        "the orphaned VACUUM to end",
        Duration::from_secs(30),
        || {
            let alive: bool = client
                .query_one(
                    "SELECT count(*) > 0 FROM pg_stat_activity WHERE pid = $1",
                    &[&orphan],
                )
                .unwrap()
                .get(0);
            (!alive).then_some(())
        },
    );
    // The job runs again (waiting on the lock again), then finishes once it is released.
    wait_for("the job to run again", Duration::from_secs(30), || {
        (job_backends(&mut client) == 1).then_some(())
    });
    holder.batch_execute("COMMIT").unwrap();
    wait_for("the job to be done", Duration::from_secs(30), || {
        let (_, list) = agent.get("/maintenance/vacuum/scheduled");
        list.as_array()
            .and_then(|l| l.iter().find(|op| op["id"] == json!(id)))
            .filter(|op| op["status"] == "done")
            .map(|_| ())
    });
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let most = watcher.join().unwrap();
    assert_eq!(most, 1, "two VACUUMs of the job ran at once");
    assert!(
        agent.log_text().contains("still runs on the server"),
        "{}",
        agent.log_text()
    );
}

// ---- 7. HTTP details ----

#[test]
fn head_is_get_without_a_body() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    for path in ["/status", "/activity", "/ping"] {
        let response = agent.request(Method::HEAD, path).send().unwrap();
        assert_eq!(response.status(), 200, "HEAD {path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(
            response.text().unwrap().is_empty(),
            "HEAD {path} has a body"
        );
    }
}

/// The status and JSON body of a raw answer.
fn parse_raw(answer: &str) -> (u16, Value) {
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
    )
}

#[test]
fn malformed_requests_get_json_errors_and_the_header_bound_is_exact() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let wait = Duration::from_secs(3);

    let garbage = raw_http(agent.addr(), b"GARBAGE\r\n\r\n", wait);
    let (status, body) = parse_raw(&garbage);
    assert_eq!(status, 400, "{garbage}");
    assert!(body["error"].is_string(), "{garbage}");

    // Headers of 70 KiB pass no more: the bound is 64 KiB.
    for size in [70 * 1024, 100 * 1024] {
        let request = format!(
            "GET /status HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(size)
        );
        let answer = raw_http(agent.addr(), request.as_bytes(), wait);
        let (status, body) = parse_raw(&answer);
        assert_eq!(
            status,
            431,
            "{size} bytes: {}",
            &answer[..answer.len().min(300)]
        );
        assert_eq!(body["error"], "Request header fields too large.");
    }
    let fits = format!(
        "GET /status HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(60 * 1024)
    );
    assert_eq!(
        parse_raw(&raw_http(agent.addr(), fits.as_bytes(), wait)).0,
        200
    );

    let long = format!(
        "GET /activity?{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let answer = raw_http(agent.addr(), long.as_bytes(), wait);
    let (status, body) = parse_raw(&answer);
    assert_eq!(status, 414, "{}", &answer[..answer.len().min(300)]);
    assert!(body["error"].is_string(), "{answer}");

    // A malformed escape in the key is no key.
    let (status, _) = send(agent.anonymous(Method::GET, "/activity?key=%zz"));
    assert_eq!(status, 406);
}

// ---- 10, 11. /discover as temBoard 7, and the hostname ----

#[test]
fn discover_has_temboard_7_shape_and_the_configured_hostname() {
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .server("hostname = \"db1.example.org\"")
            .auth("key = \"the-agent-key-0123\""),
    );
    let (status, discover) = send(agent.anonymous(Method::GET, "/discover"));
    assert_eq!(status, 200);
    let mut keys: Vec<&str> = discover
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "cpu",
            "hostname",
            "memory_size",
            "pg_block_size",
            "pg_data",
            "pg_port",
            "pg_version",
            "pg_version_summary",
            "plugins"
        ]
    );
    assert_eq!(discover["hostname"], "db1.example.org");
    assert_eq!(discover["pg_port"], json!(cluster.port()));
    assert_eq!(discover["pg_block_size"], json!(8192));
    let version = discover["pg_version"].as_str().unwrap();
    assert!(
        version.starts_with("PostgreSQL ") && version.contains(" on "),
        "{version}"
    );
    let summary = discover["pg_version_summary"].as_str().unwrap();
    assert!(
        version.starts_with(summary) && summary.split(' ').count() == 2,
        "{summary}"
    );
    let plugins = discover["plugins"].as_array().unwrap();
    assert!(plugins.contains(&json!("activity")), "{plugins:?}");
    assert!(plugins.iter().all(Value::is_string));

    // A wrong key sent along is refused; the right one is fine.
    let (status, body) = send(
        agent
            .anonymous(Method::GET, "/discover")
            .header("X-TemBoard-Agent-Key", "not-the-key"),
    );
    assert_eq!((status, &body["error"]), (401, &json!("Invalid key")));
    let (status, _) = send(
        agent
            .anonymous(Method::GET, "/discover")
            .header("X-TemBoard-Agent-Key", "the-agent-key-0123"),
    );
    assert_eq!(status, 200);

    // dbagent's own facts moved to /status.
    let (_, status_body) = send(agent.anonymous(Method::GET, "/status"));
    assert_eq!(status_body["hostname"], "db1.example.org");
    assert!(
        status_body["plugins"][0]["version"].is_string(),
        "{status_body}"
    );

    for path in ["/dashboard", "/dashboard/hostname"] {
        let (status, body) = agent.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["hostname"], "db1.example.org", "{path}: {body}");
    }
}

#[test]
fn import_temboard_reads_drop_ins_hostname_pg_ctl_and_logging() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("temboard-agent.conf");
    std::fs::write(
        &main,
        "[temboard]\nport = 2345\nhostname = db2.example.org\n[logging]\nmethod = file\ndestination = /var/log/temboard-agent.log\nlevel = DEBUG\n[administration]\npg_ctl = '/usr/lib/postgresql/15/bin/pg_ctl %s -D /var/lib/postgresql/15/main'\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("temboard-agent.conf.d")).unwrap();
    std::fs::write(
        dir.path().join("temboard-agent.conf.d/local.conf"),
        "[temboard]\nport = 2399\n",
    )
    .unwrap();
    let out = std::process::Command::new(binary())
        .args(["import-temboard", "--config"])
        .arg(&main)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let toml = String::from_utf8(out.stdout).unwrap();
    for line in [
        "listen = \"0.0.0.0:2399\"",
        "hostname = \"db2.example.org\"",
        "pg_ctl = \"/usr/lib/postgresql/15/bin/pg_ctl\"",
        "data_directory = \"/var/lib/postgresql/15/main\"",
        "[logging]",
        "level = \"debug\"",
        "file = \"/var/log/temboard-agent.log\"",
    ] {
        assert!(toml.lines().any(|l| l == line), "no {line:?} in:\n{toml}");
    }
}

// ---- 14. temBoard's login rules ----

#[test]
fn short_usernames_and_passwords_are_malformed_as_in_temboard() {
    let cluster = PgCluster::start();
    let agent = agent_with_alice(&cluster, AgentOptions::new());
    let client = client_from(1);
    for (user, password, field) in [
        ("al", "alice-secret", "username"),
        ("alice", "abcd", "password"),
    ] {
        let (status, body) = login_from(&client, &agent, user, password);
        assert_eq!(status, 406, "{user}/{password}: {body}");
        assert_eq!(body["error"], format!("Parameter '{field}' is malformed."));
    }
    assert_eq!(login_from(&client, &agent, "alice", "alice-secret").0, 200);
}

// ---- 19, 21. a newcomer's first minutes ----

#[test]
fn the_users_file_lives_in_the_data_directory_and_the_hint_names_the_binary() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    // Without users and tokens, the agent says how to add a user, with the
    // binary's real path.
    let config = std::fs::read_to_string(agent.config_path()).unwrap();
    let tokenless = agent.dir().join("tokenless.toml");
    std::fs::write(
        &tokenless,
        config
            .lines()
            .filter(|l| !l.starts_with("api_tokens"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let check = std::process::Command::new(binary())
        .args(["check", "--config"])
        .arg(&tokenless)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let log = String::from_utf8_lossy(&check.stderr);
    let hint = format!("{} user add NAME --config", binary().display());
    assert!(log.contains(&hint), "no {hint:?} in:\n{log}");

    user_add(agent.config_path(), "newcomer", "first-secret");
    assert!(agent.data_dir().join("users").is_file());
    assert!(!agent.dir().join("users").exists());
    let token = agent.session_of("newcomer", "first-secret");
    let (status, body) = agent.with_session(Method::GET, "/activity", &token);
    assert_eq!(status, 200, "{body}");
}
