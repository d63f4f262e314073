//! The dashboard API (temBoard's) against a real cluster: the periodic
//! collector and its history in the store, the figures moving under load,
//! and the exact shape of every endpoint.

use dbagent_tests::{Agent, AgentOptions, PgCluster, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

const SETTINGS: &str = "[plugin.dashboard.settings]\nscheduler_interval = 1\nhistory_length = 5";

/// Generous: the collector runs every second, but CI machines are slow.
const PATIENCE: Duration = Duration::from_secs(30);

fn agent_with_settings(cluster: &PgCluster) -> Agent {
    Agent::start(cluster, AgentOptions::new().config(SETTINGS))
}

fn history(agent: &Agent) -> Vec<Value> {
    let body = agent.get_ok("/dashboard/history");
    body.as_array()
        .unwrap_or_else(|| panic!("history is not an array: {body}"))
        .clone()
}

/// When a set was collected: its `buffers.time`.
fn collected_at(set: &Value) -> f64 {
    set["buffers"]["time"]
        .as_f64()
        .unwrap_or_else(|| panic!("no buffers.time in {set}"))
}

fn times(sets: &[Value]) -> Vec<f64> {
    sets.iter().map(collected_at).collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Float,
    Str,
    Obj,
}

fn kind_of(value: &Value) -> Option<Kind> {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(Kind::Int),
        Value::Number(_) => Some(Kind::Float),
        Value::String(_) => Some(Kind::Str),
        Value::Object(_) => Some(Kind::Obj),
        _ => None,
    }
}

/// `value` is an object with exactly these fields, of these JSON types.
fn assert_shape(what: &str, value: &Value, fields: &[(&str, Kind)]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {value}"));
    let mut names: Vec<&str> = object.keys().map(String::as_str).collect();
    let mut expected: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
    names.sort_unstable();
    expected.sort_unstable();
    assert_eq!(names, expected, "{what}: fields of {value}");
    for (name, kind) in fields {
        assert_eq!(
            kind_of(&object[*name]),
            Some(*kind),
            "{what}.{name} in {value}"
        );
    }
}

use Kind::{Float, Int, Obj, Str};

fn assert_buffers(what: &str, v: &Value) {
    assert_shape(what, v, &[("nb", Int), ("time", Float)]);
    assert!(v["nb"].as_i64().unwrap() >= 0, "{what}: {v}");
}

fn assert_active_backends(what: &str, v: &Value) {
    assert_shape(what, v, &[("nb", Int), ("time", Float)]);
    // The query that counts is active itself.
    assert!(v["nb"].as_i64().unwrap() >= 1, "{what}: {v}");
}

fn assert_cpu(what: &str, v: &Value) {
    let fields = ["iowait", "idle", "steal", "user", "system"];
    assert_shape(what, v, &fields.map(|f| (f, Float)));
    let shares: Vec<f64> = fields.iter().map(|f| v[*f].as_f64().unwrap()).collect();
    assert!(
        shares.iter().all(|s| (0.0..=100.0).contains(s)),
        "{what}: {v}"
    );
    assert_one_decimal(what, &shares);
    let sum: f64 = shares.iter().sum();
    assert!(
        (sum - 100.0).abs() <= 0.5,
        "{what}: shares sum to {sum}: {v}"
    );
}

fn assert_memory(what: &str, v: &Value) {
    assert_shape(
        what,
        v,
        &[
            ("total", Int),
            ("active", Float),
            ("cached", Float),
            ("free", Float),
        ],
    );
    assert!(v["total"].as_u64().unwrap() > 0, "{what}: {v}");
    let shares: Vec<f64> = ["active", "cached", "free"]
        .iter()
        .map(|f| v[*f].as_f64().unwrap())
        .collect();
    assert!(
        shares.iter().all(|s| (0.0..=100.0).contains(s)),
        "{what}: {v}"
    );
    assert_one_decimal(what, &shares);
    let sum: f64 = shares.iter().sum();
    assert!(
        (sum - 100.0).abs() <= 0.5,
        "{what}: shares sum to {sum}: {v}"
    );
}

fn assert_one_decimal(what: &str, values: &[f64]) {
    for v in values {
        assert!(
            ((v * 10.0).round() - v * 10.0).abs() < 1e-6,
            "{what}: {v} has more than one decimal"
        );
    }
}

fn is_hh_mm(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 5
        && b[2] == b':'
        && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit())
        && text[..2] < *"24"
        && text[3..] < *"60"
}

/// `pg_size_pretty`'s output, e.g. `1242 MB`.
fn is_pretty_size(text: &str) -> bool {
    text.split_once(' ').is_some_and(|(number, unit)| {
        !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
            && ["bytes", "kB", "MB", "GB", "TB", "PB"].contains(&unit)
    })
}

/// PostgreSQL's interval text, e.g. `01:50:31.573788` or `2 days 01:50:31.573788`.
fn is_uptime(text: &str) -> bool {
    let clock = text.rsplit(' ').next().unwrap_or_default();
    let b = clock.as_bytes();
    b.len() == 15
        && b[2] == b':'
        && b[5] == b':'
        && b[8] == b'.'
        && b.iter()
            .enumerate()
            .all(|(i, c)| [2, 5, 8].contains(&i) || c.is_ascii_digit())
}

#[test]
fn patterns() {
    assert!(is_hh_mm("14:02") && !is_hh_mm("24:00") && !is_hh_mm("1:02"));
    assert!(is_pretty_size("1242 MB") && is_pretty_size("8 bytes") && !is_pretty_size("12MB"));
    assert!(is_uptime("01:50:31.573788") && is_uptime("2 days 01:50:31.573788"));
    assert!(!is_uptime("01:50:31") && !is_uptime("P0D"));
}

fn assert_databases(what: &str, v: &Value) {
    assert_shape(
        what,
        v,
        &[
            ("total_size", Str),
            ("time", Str),
            ("databases", Int),
            ("total_commit", Int),
            ("total_rollback", Int),
            ("timestamp", Float),
        ],
    );
    let size = v["total_size"].as_str().unwrap();
    assert!(is_pretty_size(size), "{what}.total_size: {size}");
    let time = v["time"].as_str().unwrap();
    assert!(is_hh_mm(time), "{what}.time: {time}");
    // postgres, template0, template1 at least.
    assert!(v["databases"].as_i64().unwrap() >= 3, "{what}: {v}");
}

/// A whole data set, as `/dashboard`, `/dashboard/live` and each history
/// entry show it.
fn assert_data_set(what: &str, set: &Value, cluster: &PgCluster) {
    assert_shape(
        what,
        set,
        &[
            ("active_backends", Obj),
            ("max_connections", Int),
            ("databases", Obj),
            ("hostname", Str),
            ("pg_version", Str),
            ("memory", Obj),
            ("cpu", Obj),
            ("os_version", Str),
            ("loadaverage", Float),
            ("hitratio", Float),
            ("pg_uptime", Str),
            ("pg_port", Str),
            ("n_cpu", Int),
            ("pg_data", Str),
            ("buffers", Obj),
            // temBoard 7's additions, which its UI reads.
            ("cpu_models", Obj),
            ("linux_distribution", Str),
            ("timestamp", Float),
        ],
    );
    assert_temboard7_fields(what, set);
    assert_active_backends(&format!("{what}.active_backends"), &set["active_backends"]);
    assert_buffers(&format!("{what}.buffers"), &set["buffers"]);
    assert_cpu(&format!("{what}.cpu"), &set["cpu"]);
    assert_memory(&format!("{what}.memory"), &set["memory"]);
    assert_databases(&format!("{what}.databases"), &set["databases"]);
    assert_eq!(set["max_connections"], 42, "{what}: {set}");
    assert_eq!(set["pg_port"], cluster.port().to_string(), "{what}: {set}");
    assert_eq!(
        set["pg_data"],
        cluster.data_dir().display().to_string(),
        "{what}: {set}"
    );
    let version = set["pg_version"].as_str().unwrap();
    assert!(version.starts_with("PostgreSQL "), "{what}: {version}");
    let uptime = set["pg_uptime"].as_str().unwrap();
    assert!(is_uptime(uptime), "{what}.pg_uptime: {uptime}");
    assert!(set["n_cpu"].as_u64().unwrap() >= 1, "{what}: {set}");
    assert!(!set["hostname"].as_str().unwrap().is_empty(), "{what}");
    assert!(!set["os_version"].as_str().unwrap().is_empty(), "{what}");
    let hitratio = set["hitratio"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&hitratio), "{what}: {hitratio}");
    assert!(set["loadaverage"].as_f64().unwrap() >= 0.0, "{what}");
}

/// `cpu_models` counts the machine's CPUs by /proc/cpuinfo's model name;
/// `linux_distribution` is /etc/os-release's PRETTY_NAME; `timestamp` is
/// when the set was measured, in seconds since the epoch.
fn assert_temboard7_fields(what: &str, set: &Value) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut expected = serde_json::Map::new();
    for line in cpuinfo.lines() {
        if let Some((key, value)) = line.split_once(':')
            && key.trim() == "model name"
        {
            let name = value.split_whitespace().collect::<Vec<_>>().join(" ");
            let count = expected.get(&name).and_then(Value::as_u64).unwrap_or(0);
            expected.insert(name, json!(count + 1));
        }
    }
    assert_eq!(
        set["cpu_models"],
        Value::Object(expected),
        "{what}.cpu_models"
    );
    let pretty = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("PRETTY_NAME=")
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_default();
    assert_eq!(set["linux_distribution"], json!(pretty), "{what}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let timestamp = set["timestamp"].as_f64().unwrap();
    assert!(
        timestamp <= now + 1.0 && timestamp > now - 600.0,
        "{what}.timestamp {timestamp} vs now {now}"
    );
}

#[test]
fn temboard7_routes_and_fields() {
    let cluster = PgCluster::start_with(&["max_connections = 42"]);
    let agent = agent_with_settings(&cluster);
    let info = agent.get_ok("/dashboard/info");
    assert_shape(
        "/dashboard/info",
        &info,
        &[
            ("hostname", Str),
            ("os_version", Str),
            ("pg_uptime", Str),
            ("pg_version", Str),
            ("pg_data", Str),
            ("pg_port", Str),
        ],
    );
    assert_eq!(info["pg_port"], cluster.port().to_string());
    assert_eq!(info["pg_data"], cluster.data_dir().display().to_string());
    assert!(is_uptime(info["pg_uptime"].as_str().unwrap()), "{info}");
    let live = agent.get_ok("/dashboard/live");
    for (name, kind) in [
        ("os_version", Str),
        ("pg_version", Str),
        ("n_cpu", Int),
        ("max_connections", Int),
    ] {
        let path = format!("/dashboard/{name}");
        let body = agent.get_ok(&path);
        assert_shape(&path, &body, &[(name, kind)]);
        assert_eq!(body[name], live[name], "{path} as in a set");
    }
    assert_eq!(info["hostname"], live["hostname"]);
    assert_eq!(info["os_version"], live["os_version"]);
    assert_eq!(info["pg_version"], live["pg_version"]);
    assert_eq!(
        agent.get_ok("/dashboard/max_connections"),
        json!({"max_connections": 42})
    );

    // The last history item, which temBoard's dashboard page renders.
    let sets = wait_for("two collected sets", PATIENCE, || {
        let sets = history(&agent);
        (sets.len() >= 2).then_some(sets)
    });
    for (i, set) in sets.iter().enumerate() {
        assert_temboard7_fields(&format!("/dashboard/history[{i}]"), set);
    }
    let stamps: Vec<f64> = sets
        .iter()
        .map(|s| s["timestamp"].as_f64().unwrap())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    let last = agent.get_ok("/dashboard");
    assert_temboard7_fields("/dashboard", &last);
}

#[test]
fn every_endpoint_has_the_reference_shape() {
    let cluster = PgCluster::start_with(&["max_connections = 42"]);
    let agent = agent_with_settings(&cluster);

    // Before or after the first collection, /dashboard answers with a set.
    assert_data_set("/dashboard", &agent.get_ok("/dashboard"), &cluster);
    assert_data_set(
        "/dashboard/live",
        &agent.get_ok("/dashboard/live"),
        &cluster,
    );
    assert_eq!(
        agent.get_ok("/dashboard/config"),
        json!({"history_length": 5, "scheduler_interval": 1})
    );

    let part = |name: &str| -> Value {
        let body = agent.get_ok(&format!("/dashboard/{name}"));
        let object = body
            .as_object()
            .unwrap_or_else(|| panic!("/dashboard/{name}: {body}"));
        assert_eq!(
            object.keys().collect::<Vec<_>>(),
            [name],
            "/dashboard/{name}: {body}"
        );
        body[name].clone()
    };
    assert_buffers("/dashboard/buffers", &part("buffers"));
    assert_active_backends("/dashboard/active_backends", &part("active_backends"));
    assert_cpu("/dashboard/cpu", &part("cpu"));
    assert_memory("/dashboard/memory", &part("memory"));
    assert_databases("/dashboard/databases", &part("databases"));
    let hitratio = part("hitratio");
    assert_eq!(kind_of(&hitratio), Some(Float), "{hitratio}");
    let load = part("loadaverage");
    assert_eq!(kind_of(&load), Some(Float), "{load}");
    let hostname = part("hostname");
    assert!(
        hostname.as_str().is_some_and(|h| !h.is_empty()),
        "{hostname}"
    );
    let (_, discover) = agent.get("/discover");
    if let Some(name) = discover["hostname"].as_str() {
        assert_eq!(hostname, name, "the same host as /discover");
    }

    let sets = wait_for("a collected set", PATIENCE, || {
        let sets = history(&agent);
        (!sets.is_empty()).then_some(sets)
    });
    for (i, set) in sets.iter().enumerate() {
        assert_data_set(&format!("/dashboard/history[{i}]"), set, &cluster);
    }

    let (status, body) = agent.get("/dashboard/nope");
    assert_eq!(status, 404, "{body}");
    let (status, body) = agent.post_json("/dashboard/live", "{}");
    assert_eq!(status, 405, "{body}");
}

#[test]
fn default_and_invalid_settings() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    assert_eq!(
        agent.get_ok("/dashboard/config"),
        json!({"history_length": 150, "scheduler_interval": 2})
    );
    drop(agent);

    let agent = Agent::start(
        &cluster,
        AgentOptions::new().config("[plugin.dashboard.settings]\nscheduler_interval = 0"),
    );
    let (status, body) = agent.get("/dashboard/config");
    assert_eq!(status, 500, "{body}");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(message.contains("scheduler_interval"), "{body}");
    // The start-up hook refused to schedule the collector, and said why.
    wait_for("the start-up hook's error", PATIENCE, || {
        agent
            .log_text()
            .contains("must be an integer from 1 to")
            .then_some(())
    });
    // The live figures do not depend on the settings.
    agent.get_ok("/dashboard/live");
}

#[test]
fn collector_fills_a_capped_history_that_survives_restart() {
    let cluster = PgCluster::start();
    let mut agent = agent_with_settings(&cluster);

    // The collector fills the history at its interval, up to history_length.
    let full = wait_for("5 collected sets", PATIENCE, || {
        let sets = history(&agent);
        (sets.len() >= 5).then_some(sets)
    });
    assert_eq!(full.len(), 5, "capped at history_length");
    let stamps = times(&full);
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {stamps:?}"
    );
    // Five runs one second apart span about four seconds (a late run never
    // catches up, so it cannot be much less).
    let span = stamps[4] - stamps[0];
    assert!((2.5..20.0).contains(&span), "5 sets over {span} s");

    // /dashboard is the newest collected set.
    let last = agent.get_ok("/dashboard");
    assert!(collected_at(&last) >= stamps[4], "{last}");

    // Older sets are pruned as new ones come: still 5, all newer.
    let newer = wait_for("the oldest sets replaced", PATIENCE, || {
        let sets = history(&agent);
        (times(&sets)[0] > stamps[1]).then_some(sets)
    });
    assert_eq!(newer.len(), 5);

    // The history is in the state store: a restart keeps it.
    let before = times(&history(&agent));
    agent
        .restart()
        .unwrap_or_else(|failure| panic!("{failure}"));
    let after = history(&agent);
    assert_eq!(after.len(), 5, "history after the restart");
    assert!(
        times(&after).iter().any(|t| before.contains(t)),
        "sets from before the restart are kept: {before:?} vs {:?}",
        times(&after)
    );
    // And the collector runs again, still capped.
    let newest_before = before[before.len() - 1];
    let resumed = wait_for("a collection after the restart", PATIENCE, || {
        let sets = history(&agent);
        (times(&sets).iter().any(|t| *t > newest_before)).then_some(sets)
    });
    assert_eq!(resumed.len(), 5);
}

#[test]
fn figures_move_under_load() {
    // Small shared buffers, so that scanning a bigger table reads blocks.
    let cluster = PgCluster::start_with(&["shared_buffers = 2MB"]);
    let agent = agent_with_settings(&cluster);
    let mut client = cluster.connect("postgres");

    // Commits: each statement outside a transaction block is one.
    let commits = |agent: &Agent| {
        agent.get_ok("/dashboard/databases")["databases"]["total_commit"]
            .as_i64()
            .expect("total_commit is an integer")
    };
    let commits_before = commits(&agent);
    for _ in 0..50 {
        client.batch_execute("SELECT 1").unwrap();
    }
    wait_for("50 more commits", PATIENCE, || {
        (commits(&agent) >= commits_before + 50).then_some(())
    });

    // Hit ratio: blocks read from outside shared buffers lower it.
    let hitratio = |agent: &Agent| {
        agent.get_ok("/dashboard/hitratio")["hitratio"]
            .as_f64()
            .expect("hitratio is a number")
    };
    client
        .batch_execute(
            "CREATE TABLE big AS SELECT g, repeat('x', 200) AS filler
               FROM generate_series(1, 100000) g",
        )
        .unwrap();
    // Let the creation's own figures settle first.
    drop(client);
    std::thread::sleep(Duration::from_millis(1500));
    let ratio_before = hitratio(&agent);
    let mut client = cluster.connect("postgres");
    wait_for("a lower hit ratio", PATIENCE, || {
        client.batch_execute("SELECT count(*) FROM big").unwrap();
        let ratio = hitratio(&agent);
        (ratio < ratio_before).then_some(ratio)
    });

    // Active backends: sessions sleeping in a query count while they do.
    let active = |agent: &Agent| {
        agent.get_ok("/dashboard/active_backends")["active_backends"]["nb"]
            .as_i64()
            .expect("nb is an integer")
    };
    let sleepers: Vec<_> = (0..3)
        .map(|_| {
            let mut session = cluster.connect("postgres");
            std::thread::spawn(move || {
                session.batch_execute("SELECT pg_sleep(5)").unwrap();
            })
        })
        .collect();
    // Three sleepers and the query counting them.
    wait_for("3 more active backends", Duration::from_secs(4), || {
        (active(&agent) >= 4).then_some(())
    });
    for sleeper in sleepers {
        sleeper.join().unwrap();
    }
    wait_for("the sleepers gone", PATIENCE, || {
        (active(&agent) < 4).then_some(())
    });

    // The collector saw the load too: its sets carry the commits.
    wait_for("a collected set with the new commits", PATIENCE, || {
        let sets = history(&agent);
        let last = sets.last()?;
        (last["databases"]["total_commit"].as_i64()? >= commits_before + 50).then_some(())
    });
}
