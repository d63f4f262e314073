//! The pgconf API over real HTTP: settings read from a throwaway cluster,
//! changed with ALTER SYSTEM and seen in effect; every refused change leaves
//! `postgresql.auto.conf` as it was.

use dbagent_tests::{Agent, AgentOptions, PgCluster, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

const KEYS: [&str; 13] = [
    "context",
    "enumvals",
    "max_val",
    "min_val",
    "vartype",
    "boot_val",
    "reset_val",
    "unit",
    "desc",
    "name",
    "setting",
    "setting_raw",
    "pending_restart",
];

fn all_rows(listing: &Value) -> Vec<Value> {
    listing
        .as_array()
        .expect("a list of categories")
        .iter()
        .flat_map(|c| c["rows"].as_array().expect("rows").clone())
        .collect()
}

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no setting {name}"))
}

fn show(cluster: &PgCluster, name: &str) -> String {
    // A new connection each time: a reload reaches sessions between statements.
    cluster
        .connect("postgres")
        .query_one(&format!("SHOW {name}"), &[])
        .unwrap()
        .get(0)
}

fn auto_conf(cluster: &PgCluster) -> String {
    std::fs::read_to_string(cluster.data_dir().join("postgresql.auto.conf")).unwrap_or_default()
}

fn post(agent: &Agent, settings: Value) -> (u16, Value) {
    agent.post_json(
        "/pgconf/configuration",
        &json!({ "settings": settings }).to_string(),
    )
}

#[test]
fn every_setting_with_the_reference_fields() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let (status, listing) = agent.get("/pgconf/configuration");
    assert_eq!(status, 200, "{listing}");
    let rows = all_rows(&listing);

    let mut client = cluster.connect("postgres");
    let count: i64 = client
        .query_one("SELECT count(*) FROM pg_settings", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows.len() as i64, count);
    for r in &rows {
        let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = KEYS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected, "{r}");
    }
    // Categories come in order, each once.
    let categories: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["category"].as_str().unwrap())
        .collect();
    let mut sorted = categories.clone();
    sorted.dedup();
    assert_eq!(categories.len(), sorted.len());

    let shared_buffers = row(&rows, "shared_buffers");
    let pages: String = client
        .query_one(
            "SELECT setting FROM pg_settings WHERE name = 'shared_buffers'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        shared_buffers["setting"],
        json!(pages.parse::<i64>().unwrap())
    );
    assert_eq!(
        shared_buffers["setting_raw"],
        json!(show(&cluster, "shared_buffers"))
    );
    assert_eq!(shared_buffers["unit"], "8kB");
    assert_eq!(shared_buffers["vartype"], "integer");
    assert_eq!(shared_buffers["context"], "postmaster");
    assert_eq!(shared_buffers["min_val"], json!(16));
    assert_eq!(shared_buffers["enumvals"], Value::Null);
    assert_eq!(shared_buffers["pending_restart"], "f");
    assert!(
        shared_buffers["desc"]
            .as_str()
            .unwrap()
            .starts_with("Sets the number of shared memory buffers"),
        "{shared_buffers}"
    );

    let autovacuum = row(&rows, "autovacuum");
    assert_eq!(autovacuum["vartype"], "bool");
    assert_eq!(autovacuum["setting"], "on");
    assert_eq!(autovacuum["context"], "sighup");
    assert_eq!(autovacuum["unit"], Value::Null);

    let wal_level = row(&rows, "wal_level");
    assert_eq!(wal_level["vartype"], "enum");
    let enumvals = wal_level["enumvals"].as_str().unwrap();
    assert!(
        enumvals.starts_with('{') && enumvals.contains("replica") && enumvals.contains("logical"),
        "{enumvals}"
    );

    let delay = row(&rows, "vacuum_cost_delay");
    assert_eq!(delay["vartype"], "real");
    assert!(delay["setting"].is_number(), "{delay}");
}

#[test]
fn filter_matches_names_and_descriptions() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let (status, listing) = agent.get("/pgconf/configuration?filter=AutoVacuum");
    assert_eq!(status, 200, "{listing}");
    let rows = all_rows(&listing);
    assert!(rows.iter().any(|r| r["name"] == "autovacuum_naptime"));
    assert!(!rows.iter().any(|r| r["name"] == "shared_buffers"));
    for r in &rows {
        let text = format!("{} {}", r["name"], r["desc"]).to_lowercase();
        assert!(text.contains("autovacuum"), "{r}");
    }
    // Wildcards and quotes are taken literally.
    for filter in ["%25", "_", "%27%3B%20DROP%20TABLE%20x%3B--"] {
        let (status, listing) = agent.get(&format!("/pgconf/configuration?filter=zzz{filter}"));
        assert_eq!((status, listing), (200, json!([])), "filter {filter}");
    }
    let long = "x".repeat(129);
    let (status, body) = agent.get(&format!("/pgconf/configuration?filter={long}"));
    assert_eq!(status, 406, "{body}");
}

#[test]
fn categories_and_a_category_with_a_slash() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let (status, body) = agent.get("/pgconf/configuration/categories");
    assert_eq!(status, 200, "{body}");
    let mut client = cluster.connect("postgres");
    let expected: Vec<String> = client
        .query(
            "SELECT DISTINCT category FROM pg_settings ORDER BY category",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(body, json!({ "categories": expected }));

    let slashed = expected
        .iter()
        .find(|c| c.contains(" / "))
        .expect("a category with a slash, e.g. Client Connection Defaults / Locale and Formatting");
    let encoded = slashed.replace(' ', "%20").replace('/', "%2F");
    let (status, body) = agent.get(&format!("/pgconf/configuration/category/{encoded}"));
    assert_eq!(status, 200, "{body}");
    let groups = body.as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["category"], json!(slashed));
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_settings WHERE category = $1",
            &[slashed],
        )
        .unwrap()
        .get(0);
    assert_eq!(groups[0]["rows"].as_array().unwrap().len() as i64, count);

    let (status, body) = agent.get("/pgconf/configuration/category/No%20Such%20Category");
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("No Such Category"));
}

#[test]
fn a_sighup_setting_takes_effect_and_is_recorded() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let previous = show(&cluster, "log_min_duration_statement");
    let (status, body) = post(
        &agent,
        json!([{"name": "log_min_duration_statement", "setting": "250ms"}]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"settings": [{
            "name": "log_min_duration_statement",
            "setting": "250ms",
            "previous_setting": previous,
            "restart": false,
        }]})
    );
    wait_for("the new value in effect", Duration::from_secs(10), || {
        (show(&cluster, "log_min_duration_statement") == "250ms").then_some(())
    });
    assert!(
        auto_conf(&cluster).contains("log_min_duration_statement = '250ms'"),
        "{}",
        auto_conf(&cluster)
    );
    let (_, feed) = agent.get("/notifications");
    let messages: Vec<&str> = feed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["message"].as_str())
        .collect();
    assert!(
        messages.contains(&"Setting 'log_min_duration_statement' changed: '-1' -> '250ms'"),
        "{messages:?}"
    );

    // An empty setting resets it.
    let (status, body) = post(
        &agent,
        json!([{"name": "log_min_duration_statement", "setting": ""}]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"][0]["setting"], Value::Null);
    assert_eq!(body["settings"][0]["previous_setting"], "250ms");
    assert!(!auto_conf(&cluster).contains("log_min_duration_statement"));
    wait_for("the default back", Duration::from_secs(10), || {
        (show(&cluster, "log_min_duration_statement") == "-1").then_some(())
    });
}

#[test]
fn a_postmaster_setting_waits_for_a_restart() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let (status, body) = agent.get("/pgconf/configuration/status");
    assert_eq!(
        (status, body),
        (
            200,
            json!({"restart_pending": false, "restart_changes": []})
        )
    );
    let (status, body) = post(
        &agent,
        json!([{"name": "shared_buffers", "setting": "256MB"}]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"][0]["restart"], true);
    assert_eq!(body["settings"][0]["previous_setting"], "128MB");
    let changes = wait_for("restart_pending", Duration::from_secs(10), || {
        let (_, body) = agent.get("/pgconf/configuration/status");
        (body["restart_pending"] == true).then_some(body["restart_changes"].clone())
    });
    let changes = changes.as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["name"], "shared_buffers");
    assert_eq!(changes[0]["pending_restart"], "t");
    assert_eq!(changes[0]["setting_raw"], "128MB");
    assert_eq!(changes[0].as_object().unwrap().len(), 13);
    assert_eq!(show(&cluster, "shared_buffers"), "128MB");
}

#[test]
fn a_list_setting_keeps_its_items_apart() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let (status, body) = post(
        &agent,
        json!([{"name": "search_path", "setting": "\"$user\", public, pg_catalog"}]),
    );
    assert_eq!(status, 200, "{body}");
    wait_for("the new search_path", Duration::from_secs(10), || {
        (show(&cluster, "search_path") == "\"$user\", public, pg_catalog").then_some(())
    });
}

#[test]
fn refused_changes_write_nothing() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    // Something already in postgresql.auto.conf, to see it survive.
    let (status, body) = post(&agent, json!([{"name": "work_mem", "setting": "8MB"}]));
    assert_eq!(status, 200, "{body}");
    let before = auto_conf(&cluster);
    assert!(before.contains("work_mem = '8MB'"), "{before}");

    let good = json!({"name": "log_min_duration_statement", "setting": "100"});
    for (item, status, named) in [
        (
            json!({"name": "no_such_setting", "setting": "1"}),
            406,
            "no_such_setting",
        ),
        (
            json!({"name": "autovacuum", "setting": "maybe"}),
            406,
            "autovacuum",
        ),
        (
            json!({"name": "max_connections", "setting": "0"}),
            406,
            "max_connections",
        ),
        (
            json!({"name": "max_connections", "setting": "many"}),
            406,
            "max_connections",
        ),
        (
            json!({"name": "work_mem", "setting": "3TB"}),
            406,
            "work_mem",
        ),
        (
            json!({"name": "wal_level", "setting": "archive"}),
            406,
            "wal_level",
        ),
        (
            json!({"name": "shared_buffers", "setting": "5min"}),
            406,
            "shared_buffers",
        ),
        (
            json!({"name": "max_connections", "setting": "10MB"}),
            406,
            "max_connections",
        ),
        (
            json!({"name": "statement_timeout", "setting": "10 parsecs"}),
            406,
            "statement_timeout",
        ),
        (
            json!({"name": "block_size", "setting": "16384"}),
            406,
            "block_size",
        ),
        // PostgreSQL's own check of the value, run before anything is written.
        (
            json!({"name": "timezone", "setting": "Mars/Olympus_Mons"}),
            406,
            "timezone",
        ),
        (json!({"name": "autovacuum"}), 406, "autovacuum"),
        // Refused by PostgreSQL only when written: what was written before
        // it in the batch is put back.
        (
            json!({"name": "log_destination", "setting": "bogus"}),
            406,
            "log_destination",
        ),
    ] {
        // Alone, and after a valid change in the same batch.
        for batch in [json!([item.clone()]), json!([good.clone(), item.clone()])] {
            let (got, body) = post(&agent, batch.clone());
            assert_eq!(got, status, "{batch}: {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(
                error.to_lowercase().contains(named),
                "{batch}: the error names the setting: {body}"
            );
            assert_eq!(
                auto_conf(&cluster),
                before,
                "{batch} changed postgresql.auto.conf"
            );
        }
    }
    for body in ["", "{not json", "[1, 2"] {
        let (status, answer) = agent.post_json("/pgconf/configuration", body);
        assert_eq!(status, 400, "{body:?}: {answer}");
    }
    for body in [
        "null",
        r#"{}"#,
        r#"{"settings": []}"#,
        r#"{"settings": "work_mem"}"#,
        r#"{"settings": [1]}"#,
    ] {
        let (status, answer) = agent.post_json("/pgconf/configuration", body);
        assert_eq!(status, 406, "{body}: {answer}");
    }
    assert_eq!(auto_conf(&cluster), before);
}

/// The messages of the notification feed, as the agent key reads them.
fn notification_messages(agent: &Agent, key: &str) -> Vec<String> {
    let (status, feed) = dbagent_tests::send(
        agent.anonymous(reqwest::Method::GET, &format!("/notifications?key={key}")),
    );
    assert_eq!(status, 200, "{feed}");
    feed.as_array()
        .expect("a list")
        .iter()
        .filter_map(|n| n["message"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn secrets_in_settings_stay_out_of_notifications_and_the_log() {
    const KEY: &str = "the-agent-key-0123";
    const SECRET: &str = "s3cret-Pa55w0rd";
    let cluster = PgCluster::start();
    let agent = Agent::start(
        &cluster,
        AgentOptions::new().auth(&format!("key = \"{KEY}\"")),
    );
    let conninfo = format!("host=primary.example port=5432 user=replicator password={SECRET}");
    let (status, body) = post(
        &agent,
        json!([
            {"name": "primary_conninfo", "setting": conninfo},
            {"name": "archive_command", "setting": format!("curl -u backup:{SECRET} -T %p https://x/%f")},
            {"name": "work_mem", "setting": "5MB"},
        ]),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        auto_conf(&cluster).contains(SECRET),
        "the settings were written"
    );
    // And a second change, so that the previous value is a secret too.
    let (status, body) = post(
        &agent,
        json!([{"name": "primary_conninfo", "setting": "host=other password=another-Secret-1"}]),
    );
    assert_eq!(status, 200, "{body}");

    let messages = notification_messages(&agent, KEY);
    let feed = messages.join("\n");
    assert!(!feed.contains(SECRET), "{feed}");
    assert!(!feed.contains("another-Secret-1"), "{feed}");
    assert!(!feed.contains("primary.example"), "{feed}");
    for name in ["primary_conninfo", "archive_command"] {
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with(&format!("Setting '{name}' changed: "))
                    && m.contains("********")),
            "{name} is recorded, redacted: {feed}"
        );
    }
    // Other settings keep their values in the feed.
    assert!(
        messages.contains(&"Setting 'work_mem' changed: '4MB' -> '5MB'".to_string()),
        "{feed}"
    );
    let log = agent.log_text();
    assert!(
        !log.contains(SECRET) && !log.contains("another-Secret-1"),
        "{log}"
    );
}

#[test]
fn settings_postgresql_cannot_change_are_406_with_its_message() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let before = auto_conf(&cluster);
    for name in ["data_directory", "config_file"] {
        for batch in [
            json!([{"name": name, "setting": "/tmp/elsewhere"}]),
            json!([{"name": "work_mem", "setting": "7MB"}, {"name": name, "setting": "/tmp/elsewhere"}]),
        ] {
            let (status, body) = post(&agent, batch.clone());
            assert_eq!(status, 406, "{batch}: {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(
                error.starts_with(&format!("{name}: ")) && error.contains("cannot be changed"),
                "{batch}: PostgreSQL's message, naming the setting: {body}"
            );
            assert_eq!(auto_conf(&cluster), before, "{batch}");
        }
    }
}

/// Found by schemathesis: a NUL in a name or a value was PostgreSQL's
/// error 22021 passed on as a 500.
#[test]
fn a_nul_in_a_name_or_a_value_is_406_and_writes_nothing() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let before = auto_conf(&cluster);
    for batch in [
        json!([{"name": "work\u{0}mem", "setting": "7MB"}]),
        json!([{"name": "", "setting": "7MB"}]),
        json!([{"name": "work_mem", "setting": "7MB"}, {"name": "application_name", "setting": "a\u{0}b"}]),
        json!([{"name": "log_line_prefix", "setting": "\u{0}"}]),
    ] {
        let (status, body) = post(&agent, batch.clone());
        assert_eq!(status, 406, "{batch}: {body}");
        assert!(body["error"].is_string(), "{body}");
        assert_eq!(auto_conf(&cluster), before, "{batch}");
    }
}

/// A path segment as temBoard's UI encodes it (a form value): a space is
/// `+`, every other byte but the unreserved ones `%XX`.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn every_category_as_temboards_ui_asks_for_it() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let mut client = cluster.connect("postgres");
    let categories: Vec<(String, i64)> = client
        .query(
            "SELECT category, count(*) FROM pg_settings GROUP BY category ORDER BY category",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(categories.len() > 30, "{categories:?}");
    for (category, count) in &categories {
        let path = format!("/pgconf/configuration/category/{}", form_encode(category));
        let (status, body) = agent.get(&path);
        assert_eq!(status, 200, "GET {path}: {body}");
        assert_eq!(body.as_array().map(Vec::len), Some(1), "GET {path}: {body}");
        assert_eq!(body[0]["category"], json!(category), "GET {path}");
        assert_eq!(
            body[0]["rows"].as_array().map(Vec::len),
            Some(*count as usize),
            "GET {path}"
        );
    }
    // temBoard's own example, spelled as its UI sends it.
    let (status, body) = agent.get("/pgconf/configuration/category/Resource+Usage+%2F+Memory");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["category"], "Resource Usage / Memory");
}

#[test]
fn impossible_or_malformed_category_names_are_404() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    for path in [
        "/pgconf/configuration/category/Preset%00Options",
        "/pgconf/configuration/category/%00",
        "/pgconf/configuration/category/Preset%zzOptions",
        "/pgconf/configuration/category/Preset%+0Options",
        "/pgconf/configuration/category/Preset%",
        "/pgconf/configuration/category/Preset%2",
    ] {
        let (status, body) = agent.get(path);
        assert_eq!(status, 404, "GET {path}: {body}");
    }
    // A malformed escape in the query string is that parameter's 406.
    for query in ["filter=%zz", "filter=auto%+1", "filter=%"] {
        let (status, body) = agent.get(&format!("/pgconf/configuration?{query}"));
        assert_eq!(
            (status, body),
            (406, json!({"error": "Parameter 'filter' is malformed."})),
            "{query}"
        );
    }
}

/// The rows of a category as `GET` shows them, posted back the way
/// temBoard's UI posts a page: every field, with its shown value.
fn page(agent: &Agent, category: &str) -> Vec<Value> {
    let (status, body) = agent.get(&format!(
        "/pgconf/configuration/category/{}",
        form_encode(category)
    ));
    assert_eq!(status, 200, "{body}");
    body[0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let value = match &r["setting"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            json!({"name": r["name"], "setting": value})
        })
        .collect()
}

fn count_setting_notifications(agent: &Agent) -> usize {
    let (_, feed) = agent.get("/notifications");
    feed.as_array()
        .unwrap()
        .iter()
        .filter(|n| {
            n["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Setting '"))
        })
        .count()
}

#[test]
fn only_changed_settings_are_written_unless_forced() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let before = auto_conf(&cluster);

    // A whole page posted back with one field changed.
    let mut autovacuum = page(&agent, "Autovacuum");
    assert!(autovacuum.len() > 10, "{autovacuum:?}");
    for item in &mut autovacuum {
        if item["name"] == "autovacuum_naptime" {
            item["setting"] = json!("2min");
        }
    }
    let (status, body) = post(&agent, json!(autovacuum));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"settings": [{
            "name": "autovacuum_naptime",
            "setting": "2min",
            "previous_setting": "1min",
            "restart": false,
        }]})
    );
    let written = auto_conf(&cluster);
    assert!(written.contains("autovacuum_naptime = '2min'"), "{written}");
    assert_eq!(
        written.lines().filter(|l| l.contains(" = ")).count(),
        before.lines().filter(|l| l.contains(" = ")).count() + 1,
        "only the changed setting is pinned: {written}"
    );
    assert_eq!(count_setting_notifications(&agent), 1);

    // Values equal to the current ones in another spelling: nothing to do,
    // and no restart reported for a postmaster setting.
    let (status, body) = post(
        &agent,
        json!([
            {"name": "shared_buffers", "setting": "128MB"},
            {"name": "autovacuum_naptime", "setting": "120s"},
            {"name": "autovacuum", "setting": "ON"},
            {"name": "wal_level", "setting": "Replica"},
            {"name": "work_mem", "setting": "4096kB"},
            {"name": "primary_conninfo", "setting": ""},
            {"name": "checkpoint_completion_target", "setting": 0.9},
        ]),
    );
    assert_eq!((status, body), (200, json!({"settings": []})));
    assert_eq!(auto_conf(&cluster), written);
    assert_eq!(count_setting_notifications(&agent), 1);
    let (_, status) = agent.get("/pgconf/configuration/status");
    assert_eq!(status["restart_pending"], false, "{status}");

    // Forced, per item as temBoard's UI sends it, or for the whole body.
    for body in [
        json!({"settings": [{"name": "work_mem", "setting": "4MB", "force": "true"}]}),
        json!({"settings": [{"name": "work_mem", "setting": "4MB"}], "force": true}),
    ] {
        let (status, answer) = agent.post_json("/pgconf/configuration", &body.to_string());
        assert_eq!(status, 200, "{body}: {answer}");
        assert_eq!(answer["settings"][0]["name"], "work_mem", "{answer}");
        assert_eq!(answer["settings"][0]["restart"], false, "{answer}");
        assert!(auto_conf(&cluster).contains("work_mem = '4MB'"));
    }
    let (status, answer) = agent.post_json(
        "/pgconf/configuration",
        &json!({"settings": [{"name": "shared_buffers", "setting": "128MB"}], "force": "true"})
            .to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["settings"][0]["restart"], false,
        "same value: {answer}"
    );
    let (status, answer) = agent.post_json(
        "/pgconf/configuration",
        &json!({"settings": [{"name": "work_mem", "setting": "4MB"}], "force": "maybe"})
            .to_string(),
    );
    assert_eq!(status, 406, "{answer}");
}

#[test]
fn status_right_after_a_postmaster_change_sees_it() {
    // A long postgresql.conf makes each reload take a while (the postmaster
    // parses it before it signals the backends), so that a status read
    // right after the POST would race the reload every time.
    let padding: Vec<String> = (0..150_000)
        .map(|i| format!("# padding line {i}, so that a reload of this file takes a while"))
        .collect();
    let padding: Vec<&str> = padding.iter().map(String::as_str).collect();
    let cluster = PgCluster::start_with(&padding);
    let agent = Agent::start(&cluster, AgentOptions::new());
    for round in 0..6 {
        let (status, body) = post(
            &agent,
            json!([{"name": "shared_buffers", "setting": format!("{}MB", 129 + round)}]),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["settings"][0]["restart"], true, "{body}");
        let (_, status) = agent.get("/pgconf/configuration/status");
        assert_eq!(status["restart_pending"], true, "round {round}: {status}");
        assert_eq!(status["restart_changes"][0]["name"], "shared_buffers");

        // Back to the running value: nothing is pending any more.
        let (code, body) = agent.post_json(
            "/pgconf/configuration",
            &json!({"settings": [{"name": "shared_buffers", "setting": "128MB", "force": "true"}]})
                .to_string(),
        );
        assert_eq!(code, 200, "{body}");
        let (_, status) = agent.get("/pgconf/configuration/status");
        assert_eq!(status["restart_pending"], false, "round {round}: {status}");
    }
}
