//! Hot reload: drop-ins added, replaced and removed on SIGHUP while the
//! agent serves, under load; refused ones leave the version in service.

use dbagent_tests::{Agent, AgentOptions, PgCluster, guests_dir, wait_for};
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Installs test guest `guest` as drop-in `name` the way an operator
/// should: written beside, then renamed into place, manifest first.
fn install(agent: &Agent, guest: &str, name: &str) {
    let plugins = agent.dir().join("plugins");
    for ext in ["toml", "wasm"] {
        let from = guests_dir().join(guest).join(format!("{guest}.{ext}"));
        let staged = plugins.join(format!(".{name}.{ext}.new"));
        std::fs::copy(&from, &staged)
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", from.display()));
        std::fs::rename(&staged, plugins.join(format!("{name}.{ext}"))).unwrap();
    }
}

fn remove(agent: &Agent, name: &str) {
    for ext in ["wasm", "toml"] {
        std::fs::remove_file(agent.dir().join("plugins").join(format!("{name}.{ext}"))).unwrap();
    }
}

fn generation_of(body: &Value) -> u64 {
    body["generation"]
        .as_u64()
        .unwrap_or_else(|| panic!("no generation in {body}"))
}

fn plugin_entries(agent: &Agent, name: &str) -> Vec<Value> {
    let plugins = agent.get_ok("/plugins");
    plugins
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == name)
        .cloned()
        .collect()
}

/// What one client saw: (sent at, answered at, status, generation).
type Seen = Vec<(Instant, Instant, u16, Option<u64>)>;

fn client_loop(agent: &Agent, path: &str, stop: &AtomicBool, seen: &Mutex<Seen>) {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = agent.url(path);
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let answer = http
            .get(&url)
            .bearer_auth(dbagent_tests::TOKEN)
            .send()
            .and_then(|r| Ok((r.status().as_u16(), r.json::<Value>()?)));
        let answered = Instant::now();
        let (status, generation) = match answer {
            Ok((status, body)) => (status, body["generation"].as_u64()),
            Err(_) => (0, None),
        };
        seen.lock()
            .unwrap()
            .push((sent, answered, status, generation));
    }
}

#[test]
fn a_plugin_replaced_under_load_serves_every_request_whole_on_one_version() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    install(&agent, "generation1", "generation");
    agent.reload_plugins();
    assert_eq!(generation_of(&agent.get_ok("/generation")), 1);

    let stop = AtomicBool::new(false);
    let fast: Vec<_> = (0..4).map(|_| Arc::new(Mutex::new(Seen::new()))).collect();
    let straddler = Mutex::new(None);
    let (signalled, first_new) = std::thread::scope(|scope| {
        for seen in &fast {
            scope.spawn(|| client_loop(&agent, "/generation", &stop, seen));
        }
        std::thread::sleep(Duration::from_millis(1000));
        install(&agent, "generation2", "generation");
        // As packaging would: the swap then only links.
        agent.compile_ahead();
        // A slow request starts on the old version before the swap.
        scope.spawn(|| {
            let sent = Instant::now();
            let (status, body) = agent.get("/generation/slow?ms=4000");
            *straddler.lock().unwrap() =
                Some((sent, Instant::now(), status, body["generation"].as_u64()));
        });
        std::thread::sleep(Duration::from_millis(300));
        let signalled = Instant::now();
        agent.signal(libc::SIGHUP);
        let first_new = wait_for("generation 2 to answer", Duration::from_secs(30), || {
            fast.iter().find_map(|seen| {
                seen.lock()
                    .unwrap()
                    .iter()
                    .find(|s| s.3 == Some(2))
                    .map(|s| s.1)
            })
        });
        std::thread::sleep(Duration::from_millis(1000));
        stop.store(true, Ordering::Relaxed);
        (signalled, first_new)
    });

    let mut total = 0;
    for seen in &fast {
        let seen = seen.lock().unwrap();
        total += seen.len();
        let failed: Vec<_> = seen.iter().filter(|s| s.2 != 200).collect();
        assert!(
            failed.is_empty(),
            "{} requests failed: {failed:?}",
            failed.len()
        );
        // One client's requests go one after another: once it has met
        // the new version it never meets the old one again.
        let generations: Vec<u64> = seen.iter().map(|s| s.3.unwrap()).collect();
        let first_two = generations.iter().position(|g| *g == 2);
        if let Some(at) = first_two {
            assert!(
                generations[at..].iter().all(|g| *g == 2),
                "a client went back to the old version: {generations:?}"
            );
        }
        assert!(generations.iter().all(|g| *g == 1 || *g == 2));
    }
    // The slow request in flight across the swap finished on its version.
    let straddler = straddler.lock().unwrap().unwrap();
    assert!(
        straddler.0 < signalled && straddler.1 > first_new,
        "the slow request was not in flight across the swap: {straddler:?}"
    );
    assert_eq!((straddler.2, straddler.3), (200, Some(1)));
    let swap = first_new.saturating_duration_since(signalled);
    assert!(swap < Duration::from_secs(5), "the swap took {swap:?}");
    let log = agent.log_text();
    assert!(log.contains("replaced=[\"generation\"]"), "{log}");
    println!(
        "hot reload under load: {total} requests, none failed; generation 2 answered {swap:?} after SIGHUP"
    );
}

#[test]
fn drop_ins_are_added_refused_and_removed_without_a_restart() {
    let cluster = PgCluster::start();
    let agent = Agent::start(&cluster, AgentOptions::new());
    let pid = agent.pid();
    assert_eq!(agent.get("/generation").0, 404);

    // Added: served at once. A plugin claiming a bundled plugin's prefix
    // is refused, and the bundled one keeps it.
    install(&agent, "generation1", "generation");
    install(&agent, "dup", "dup");
    agent.reload_plugins();
    assert_eq!(generation_of(&agent.get_ok("/generation")), 1);
    assert_eq!(agent.get("/activity").0, 200);
    let dup = plugin_entries(&agent, "dup");
    assert_eq!(dup.len(), 1, "{dup:?}");
    assert_eq!(dup[0]["status"], "refused");
    let reason = dup[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("'/activity'") && reason.contains("'dup'"),
        "{reason}"
    );
    assert!(agent.log_text().contains("plugin refused by reload"));
    remove(&agent, "dup");

    // Replaced by a version that asks for a capability it is not granted:
    // refused, and the version in service keeps serving.
    install(&agent, "generation2", "generation");
    let manifest = agent.dir().join("plugins/generation.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("capabilities = []", "capabilities = [\"log\"]"),
    )
    .unwrap();
    agent.reload_plugins();
    assert_eq!(generation_of(&agent.get_ok("/generation")), 1);
    let entries = plugin_entries(&agent, "generation");
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["status"], "serving");
    assert_eq!(entries[0]["version"], "1.0.0");
    assert_eq!(entries[1]["status"], "refused");
    let reason = entries[1]["reason"].as_str().unwrap();
    assert!(
        reason.contains("not granted") && reason.contains("[plugin.generation]"),
        "{reason}"
    );

    // A file that is no component: refused, nothing else disturbed.
    std::fs::write(agent.dir().join("plugins/broken.wasm"), b"not wasm").unwrap();
    std::fs::write(
        agent.dir().join("plugins/broken.toml"),
        "name = \"broken\"\nversion = \"0.1.0\"\nroutes = [\"/broken\"]\n",
    )
    .unwrap();
    install(&agent, "generation2", "generation");
    agent.reload_plugins();
    assert_eq!(generation_of(&agent.get_ok("/generation")), 2);
    assert_eq!(plugin_entries(&agent, "generation").len(), 1);
    let broken = plugin_entries(&agent, "broken");
    assert_eq!(broken[0]["status"], "refused", "{broken:?}");
    assert!(
        broken[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a valid WebAssembly component"),
        "{broken:?}"
    );
    assert_eq!(agent.get("/broken").0, 404);
    // What the cache lacked was compiled by a child process, as at start-up.
    assert!(
        agent
            .log_text()
            .contains("compiling plugins ahead in a child process"),
        "{}",
        agent.log_text()
    );

    // Removed: gone, and nothing refused any more.
    remove(&agent, "generation");
    remove(&agent, "broken");
    agent.reload_plugins();
    assert_eq!(agent.get("/generation").0, 404);
    let plugins = agent.get_ok("/plugins");
    assert!(
        plugins
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "serving"),
        "{plugins}"
    );
    assert_eq!(agent.pid(), pid, "the agent restarted");
    assert!(Path::new(&agent.dir().join("plugins")).is_dir());
}
