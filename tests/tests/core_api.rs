//! The core API over real HTTP: login and sessions, the agent key and
//! bearer tokens, `/profile`, `/status`, `/discover`, notifications, SIGHUP
//! reload, HTTPS, body limits, and `import-temboard`.

use base64::Engine as _;
use dbagent_tests::{
    Agent, AgentOptions, PgCluster, agent_with_alice, binary, send, user_add, wait_for,
};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};
use std::process::{Command, Stdio};
use std::time::Duration;

const KEY: &str = "the-agent-key-0123";

#[test]
fn login_answers_as_temboard_does() {
    let cluster = PgCluster::start();
    let agent = agent_with_alice(&cluster, AgentOptions::new());

    let session = agent.session_of("alice", "alice-secret");
    assert_eq!(session.len(), 64);
    assert!(
        session
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );

    let cases = [
        (
            r#"{"username": "alice", "password": "wrong"}"#,
            404,
            "Invalid username/password.",
        ),
        (
            r#"{"username": "nobody", "password": "xxxxxx"}"#,
            404,
            "Invalid username/password.",
        ),
        (
            r#"{"username": "alice"}"#,
            406,
            "Parameter 'password' not sent.",
        ),
        (
            r#"{"password": "x"}"#,
            406,
            "Parameter 'username' not sent.",
        ),
        (
            r#"{"username": 42, "password": "x"}"#,
            406,
            "Parameter 'username' is malformed.",
        ),
        (
            r#"{"username": "al:ice", "password": "x"}"#,
            406,
            "Parameter 'username' is malformed.",
        ),
        (
            r#"{"username": "alice", "password": ["x"]}"#,
            406,
            "Parameter 'password' is malformed.",
        ),
        ("not json", 400, "Invalid json format"),
        ("", 400, "Invalid json format"),
    ];
    for (body, status, message) in cases {
        let (got, answer) = agent.login(body);
        assert_eq!(
            (got, answer),
            (status, json!({"error": message})),
            "body {body:?}"
        );
    }
}

#[test]
fn session_header_errors_and_logout() {
    let cluster = PgCluster::start();
    let agent = agent_with_alice(&cluster, AgentOptions::new());

    assert_eq!(
        agent.with_session(Method::GET, "/profile", "abc"),
        (406, json!({"error": "Parameter 'X-Session' is malformed."}))
    );
    assert_eq!(
        send(agent.anonymous(Method::GET, "/profile")),
        (406, json!({"error": "Parameter 'X-Session' is malformed."}))
    );
    assert_eq!(
        agent.with_session(Method::GET, "/profile", &"ab".repeat(32)),
        (401, json!({"error": "Invalid session."}))
    );

    let session = agent.session_of("alice", "alice-secret");
    assert_eq!(
        agent.with_session(Method::GET, "/profile", &session),
        (200, json!({"username": "alice"}))
    );
    assert_eq!(
        agent.with_session(Method::GET, "/logout", &session),
        (200, json!({"logout": true}))
    );
    assert_eq!(
        agent.with_session(Method::GET, "/profile", &session),
        (401, json!({"error": "Invalid session."}))
    );
}

/// temBoard agent 7's users-file hash: base64(sha512(hex(password) || sha512(username))).
fn temboard_hash(user: &str, password: &str) -> String {
    let salt = Sha512::digest(user.as_bytes());
    let mut hasher = Sha512::new();
    hasher.update(
        password
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .as_bytes(),
    );
    hasher.update(salt);
    base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
}

#[test]
fn temboard_users_file_is_accepted_and_upgraded() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new().auth("users_file = \"users\""));
    let users = agent.dir().join("users");
    std::fs::write(
        &users,
        format!("bob:{}\n", temboard_hash("bob", "bob-secret")),
    )
    .unwrap();

    let (status, _) = agent.login(r#"{"username": "bob", "password": "wrong"}"#);
    assert_eq!(status, 404);
    agent.session_of("bob", "bob-secret");
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(text.starts_with("bob:$argon2id$"), "hash upgraded: {text}");
    // The upgraded hash still lets bob in, and only with his password.
    agent.session_of("bob", "bob-secret");
    assert_eq!(
        agent.login(r#"{"username": "bob", "password": "wrong"}"#).0,
        404
    );
}

#[test]
fn sessions_expire_when_idle() {
    let cluster = PgCluster::start();
    let agent = agent_with_alice(
        &cluster,
        AgentOptions::new().auth("session_timeout_secs = 2"),
    );
    let session = agent.session_of("alice", "alice-secret");
    assert_eq!(agent.with_session(Method::GET, "/profile", &session).0, 200);
    // Idle means unused: any request would slide the expiry, so nothing
    // can be polled here; the session must expire within this silence.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        agent.with_session(Method::GET, "/profile", &session),
        (401, json!({"error": "Invalid session."}))
    );
}

#[test]
fn sessions_survive_a_restart() {
    let cluster = PgCluster::start();
    let mut agent = agent_with_alice(&cluster, AgentOptions::new());
    let session = agent.session_of("alice", "alice-secret");
    agent
        .restart()
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(
        agent.with_session(Method::GET, "/profile", &session),
        (200, json!({"username": "alice"}))
    );
}

#[test]
fn key_reads_but_never_changes() {
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new().auth(&format!("key = \"{KEY}\"")),
    );

    let (status, body) = send(agent.anonymous(Method::GET, &format!("/activity?key={KEY}")));
    assert_eq!(status, 200, "{body}");
    assert!(body["rows"].is_array());
    let (status, _) = send(
        agent
            .anonymous(Method::GET, "/activity/waiting")
            .header("X-TemBoard-Agent-Key", KEY),
    );
    assert_eq!(status, 200);
    assert_eq!(
        send(agent.anonymous(Method::GET, "/activity?key=wrong-key-000")),
        (401, json!({"error": "Invalid key"}))
    );
    assert_eq!(
        send(agent.anonymous(Method::GET, &format!("/notifications?key={KEY}"))).0,
        200
    );
    // Not a read-only area, or not a GET: the key is not enough.
    for (method, path) in [(Method::GET, "/plugins"), (Method::POST, "/activity/kill")] {
        assert_eq!(
            send(
                agent
                    .anonymous(method.clone(), &format!("{path}?key={KEY}"))
                    .body(r#"{"pids": []}"#)
            ),
            (406, json!({"error": "Parameter 'X-Session' is malformed."})),
            "{method} {path}"
        );
    }
    // Bearer tokens: the right one works for changes too, a wrong one is 401.
    assert_eq!(
        agent.post_json("/activity/kill", r#"{"pids": []}"#),
        (200, json!({"backends": []}))
    );
    assert_eq!(
        send(
            agent
                .anonymous(Method::GET, "/activity")
                .bearer_auth("not-the-token-000000")
        ),
        (401, json!({"error": "Invalid token."}))
    );
}

#[test]
fn every_route_but_status_and_discover_needs_credentials() {
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new()
            .plugin("hello")
            .config("[plugin.hello]\ngrants = [\"log\"]"),
    );
    for (method, path) in [
        (Method::GET, "/activity"),
        (Method::GET, "/activity/waiting"),
        (Method::GET, "/activity/blocking"),
        (Method::POST, "/activity/kill"),
        (Method::GET, "/ping"),
        (Method::GET, "/plugins"),
        (Method::GET, "/profile"),
        (Method::GET, "/logout"),
        (Method::GET, "/notifications"),
        (Method::GET, "/hello"),
    ] {
        assert_eq!(
            send(agent.anonymous(method.clone(), path)),
            (406, json!({"error": "Parameter 'X-Session' is malformed."})),
            "{method} {path} without credentials"
        );
    }
    for path in ["/status", "/discover"] {
        assert_eq!(
            send(agent.anonymous(Method::GET, path)).0,
            200,
            "{path} is open"
        );
    }
    assert_eq!(
        send(agent.anonymous(Method::GET, "/no/such/route")),
        (404, json!({"error": "URL not found."}))
    );
}

#[test]
fn status_discover_and_headers() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let response = agent.anonymous(Method::GET, "/status").send().unwrap();
    let server = response.headers()["server"].to_str().unwrap().to_string();
    assert!(server.starts_with("dbagent/"), "Server header: {server}");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let status: Value = response.json().unwrap();
    assert_eq!(status["pid"], json!(agent.pid()));
    assert_eq!(
        status["configfile"],
        json!(agent.config_path().display().to_string())
    );
    assert!(status["version"].is_string());
    assert!(status["user"].as_str().is_some_and(|u| !u.is_empty()));
    for field in ["start_datetime", "reload_datetime"] {
        let value = status[field].as_str().unwrap_or_default();
        assert_eq!(value.len(), 19, "{field}: {value}");
        assert_eq!(&value[10..11], "T", "{field}: {value}");
    }

    let (code, discover) = send(agent.anonymous(Method::GET, "/discover"));
    assert_eq!(code, 200);
    assert_eq!(discover["pg_port"], json!(cluster.port()));
    assert_eq!(
        discover["pg_data"],
        json!(cluster.data_dir().display().to_string())
    );
    assert!(discover["pg_version"].is_string());
    assert!(discover["cpu"].as_u64().unwrap_or(0) >= 1);
    assert!(discover["memory_size"].as_u64().unwrap_or(0) > 0);
    assert!(
        discover["plugins"]
            .as_array()
            .unwrap()
            .contains(&json!("activity"))
    );
}

#[test]
fn notifications_record_logins_and_plugin_actions() {
    let cluster = PgCluster::start();
    let agent = agent_with_alice(&cluster, AgentOptions::new());
    let session = agent.session_of("alice", "alice-secret");

    let mut victim = cluster.connect("postgres");
    let pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let (status, body) = send(
        agent
            .anonymous(Method::POST, "/activity/kill")
            .header("X-Session", &session)
            .body(format!(r#"{{"pids": [{pid}]}}"#)),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["backends"][0]["killed"], json!(true));

    let (status, list) = agent.with_session(Method::GET, "/notifications", &session);
    assert_eq!(status, 200);
    let list = list.as_array().expect("a list");
    assert_eq!(list[0]["username"], "alice");
    assert_eq!(
        list[0]["message"],
        json!(format!("Backend {pid} terminated"))
    );
    assert_eq!(list[1]["username"], "alice");
    assert_eq!(list[1]["message"], "Login");
    assert!(list[0]["date"].as_str().is_some_and(|d| d.len() == 19));
}

#[test]
fn sighup_reloads_users_and_keys_and_rejects_a_bad_file() {
    let cluster = PgCluster::start();
    let agent = agent_with_alice(
        &cluster,
        AgentOptions::new().auth(&format!("key = \"{KEY}\"")),
    );
    let before = send(agent.anonymous(Method::GET, "/status")).1["reload_datetime"].clone();
    // The reload's time is to the second: wait for the next one to begin.
    wait_for("the clock's next second", Duration::from_secs(3), || {
        let now = chrono_like_now();
        (json!(now) != before).then_some(())
    });

    // A new users file with carol, and a new key.
    let original = std::fs::read_to_string(agent.config_path()).unwrap();
    let carol_file = agent.dir().join("more-users");
    std::fs::write(&carol_file, "").unwrap();
    let changed = original
        .replace("users_file = \"users\"", "users_file = \"more-users\"")
        .replace(KEY, "the-new-agent-key-456");
    std::fs::write(agent.config_path(), &changed).unwrap();
    user_add(agent.config_path(), "carol", "carol-secret");
    agent.signal(libc::SIGHUP);
    wait_for("the reload", Duration::from_secs(10), || {
        let now = send(agent.anonymous(Method::GET, "/status")).1["reload_datetime"].clone();
        (now != before).then_some(())
    });
    agent.session_of("carol", "carol-secret");
    assert_eq!(
        agent
            .login(r#"{"username": "alice", "password": "alice-secret"}"#)
            .0,
        404
    );
    assert_eq!(
        send(agent.anonymous(Method::GET, "/activity?key=the-new-agent-key-456")).0,
        200
    );
    assert_eq!(
        send(agent.anonymous(Method::GET, &format!("/activity?key={KEY}"))).0,
        401
    );

    // A broken file is rejected; the settings in force stay.
    std::fs::write(agent.config_path(), "[server\nbroken").unwrap();
    agent.signal(libc::SIGHUP);
    wait_for("the rejection in the log", Duration::from_secs(10), || {
        agent.log_text().contains("reload rejected").then_some(())
    });
    assert_eq!(
        send(agent.anonymous(Method::GET, "/activity?key=the-new-agent-key-456")).0,
        200
    );
    agent.session_of("carol", "carol-secret");
}

#[test]
fn oversized_body_is_413() {
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new().server("max_body_bytes = 1024"),
    );
    let (status, body) = agent.post_json(
        "/activity/kill",
        &format!(r#"{{"pids": [{}]}}"#, "1,".repeat(2000) + "1"),
    );
    assert_eq!(
        (status, body),
        (413, json!({"error": "Request body too large."}))
    );
    assert_eq!(agent.post_json("/activity/kill", r#"{"pids": []}"#).0, 200);
}

#[test]
fn https_with_a_certificate_a_client_verifies() {
    let cluster = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("agent.pem"), dir.path().join("agent.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();

    let port = dbagent_tests::free_port();
    let config = dir.path().join("dbagent.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\ntls_cert = {:?}\ntls_key = {:?}\n\
             [postgresql]\nhost = {:?}\nport = {}\nuser = \"postgres\"\n",
            cert.display().to_string(),
            key.display().to_string(),
            cluster.socket_dir().display().to_string(),
            cluster.port()
        ),
    )
    .unwrap();
    let mut child = Command::new(binary())
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Python's urllib verifies the chain and the host name against our CA.
    let fetch = format!(
        "import ssl, urllib.request; ctx = ssl.create_default_context(cafile={:?}); \
         print(urllib.request.urlopen('https://localhost:{port}/status', context=ctx).read().decode())",
        cert.display().to_string()
    );
    let body = wait_for("the HTTPS listener", Duration::from_secs(60), || {
        let out = Command::new("python3").args(["-c", &fetch]).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    let plain = reqwest::blocking::get(format!("http://127.0.0.1:{port}/status"));
    let _ = child.kill();
    let _ = child.wait();
    let status: Value = serde_json::from_str(body.trim()).unwrap();
    assert!(status["pid"].is_u64(), "{status}");
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP must not be served on the TLS port"
    );
}

#[test]
fn import_temboard_gives_a_config_the_agent_starts_with() {
    let cluster = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let port = dbagent_tests::free_port();
    let ini = dir.path().join("temboard-agent.conf");
    std::fs::write(
        &ini,
        format!(
            "[temboard]\nport = {port}\naddress = 127.0.0.1\nusers = {users}\nkey = {KEY}\n\
             home = {home}\nplugins = [\"activity\", \"dashboard\"]\n\n\
             [postgresql]\nhost = {socket}\nport = {pgport}\nuser = postgres\ndbname = postgres\ninstance = main\n\n\
             [dashboard]\nscheduler_interval = 2\nhistory_length = 150\n",
            users = dir.path().join("users").display(),
            home = dir.path().join("home").display(),
            socket = cluster.socket_dir().display(),
            pgport = cluster.port()
        ),
    )
    .unwrap();
    let toml = dir.path().join("dbagent.toml");
    let out = Command::new(binary())
        .args(["import-temboard", "--config"])
        .arg(&ini)
        .arg("--output")
        .arg(&toml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = Command::new(binary())
        .args(["serve", "--config"])
        .arg(&toml)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let answer = wait_for("the imported agent", Duration::from_secs(60), || {
        let response =
            reqwest::blocking::get(format!("http://127.0.0.1:{port}/activity?key={KEY}")).ok()?;
        Some((response.status().as_u16(), response.json::<Value>().ok()?))
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert!(answer.1["rows"].is_array());
}

#[test]
fn plugins_never_see_credentials() {
    let cluster = PgCluster::start();
    let agent = agent_with_alice(
        &cluster,
        AgentOptions::new()
            .plugin("hello")
            .config("[plugin.hello]\ngrants = [\"log\"]")
            .auth(&format!("key = \"{KEY}\"")),
    );
    let session = agent.session_of("alice", "alice-secret");
    let (status, seen) = send(
        agent
            .anonymous(Method::GET, &format!("/hello/request?a=1&key={KEY}"))
            .header("X-Session", &session)
            .header("X-TemBoard-Agent-Key", KEY)
            .header("X-Custom", "kept"),
    );
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["user"], "alice");
    assert_eq!(seen["query"], "a=1");
    let headers: Vec<&str> = seen["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(headers.contains(&"x-custom"), "{headers:?}");
    for secret in ["x-session", "x-temboard-agent-key", "authorization"] {
        assert!(
            !headers.contains(&secret),
            "{secret} reached the plugin: {headers:?}"
        );
    }
}

#[test]
fn user_del_removes_a_user() {
    let cluster = PgCluster::start();
    let agent = agent_with_alice(&cluster, AgentOptions::new());
    agent.session_of("alice", "alice-secret");
    let out = Command::new(binary())
        .args(["user", "del", "alice", "--config"])
        .arg(agent.config_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        agent
            .login(r#"{"username": "alice", "password": "alice-secret"}"#)
            .0,
        404
    );
}

/// The agent's local time as `/status` shows it (`YYYY-MM-DDTHH:MM:SS`).
fn chrono_like_now() -> String {
    let out = std::process::Command::new("date")
        .arg("+%Y-%m-%dT%H:%M:%S")
        .output()
        .expect("run date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
