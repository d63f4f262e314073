//! The agent's PostgreSQL connections under load, over real HTTP: bounded
//! by the pool, never churned, and replaced after a server restart.

use dbagent_tests::{Agent, AgentOptions, PgCluster, TOKEN};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const POOL_SIZE: i64 = 4;
const JOB_POOL_SIZE: i64 = 2;

/// An agent with small pools and its dashboard collector busy (each
/// second), so that jobs' connections are part of what is counted.
fn agent(cluster: &PgCluster) -> Agent {
    Agent::start(
        cluster,
        AgentOptions::new()
            .postgresql(&format!(
                "pool_size = {POOL_SIZE}\njob_pool_size = {JOB_POOL_SIZE}"
            ))
            .config("[plugin.dashboard.settings]\nscheduler_interval = 1"),
    )
}

/// `clients` threads each sending `GET path` over keep-alive until `until`;
/// returns (answers by status, most agent request connections seen).
fn load(
    agent: &Agent,
    cluster: &PgCluster,
    path: &str,
    clients: usize,
    for_how_long: Duration,
) -> (std::collections::BTreeMap<u16, usize>, i64) {
    let stop = Arc::new(AtomicBool::new(false));
    let url = agent.url(path);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, url) = (Arc::clone(&stop), url.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .unwrap();
                let mut statuses = std::collections::BTreeMap::new();
                while !stop.load(Ordering::Relaxed) {
                    let status = client
                        .get(&url)
                        .bearer_auth(TOKEN)
                        .send()
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    *statuses.entry(status).or_insert(0usize) += 1;
                }
                statuses
            })
        })
        .collect();
    let mut watch = cluster.connect("postgres");
    let started = Instant::now();
    let mut most = 0;
    while started.elapsed() < for_how_long {
        let n: i64 = watch
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbagent'",
                &[],
            )
            .unwrap()
            .get(0);
        most = most.max(n);
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = std::collections::BTreeMap::new();
    for thread in threads {
        for (status, n) in thread.join().unwrap() {
            *all.entry(status).or_insert(0) += n;
        }
    }
    (all, most)
}

#[test]
fn many_concurrent_requests_never_take_more_than_the_pool_from_a_small_server() {
    let cluster =
        PgCluster::start_with(&["max_connections = 20", "superuser_reserved_connections = 3"]);
    let agent = agent(&cluster);
    // Meanwhile an application still gets its connection.
    let outsider_ok = Arc::new(AtomicUsize::new(0));
    let (answers, most) = std::thread::scope(|scope| {
        let outsider_ok = Arc::clone(&outsider_ok);
        let cluster = &cluster;
        scope.spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            for _ in 0..5 {
                let mut app = cluster.connect("postgres");
                let one: i32 = app.query_one("SELECT 1", &[]).unwrap().get(0);
                assert_eq!(one, 1);
                outsider_ok.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        load(&agent, cluster, "/activity", 128, Duration::from_secs(6))
    });
    assert!(
        most <= POOL_SIZE,
        "the agent held {most} request connections (pool of {POOL_SIZE})"
    );
    assert_eq!(outsider_ok.load(Ordering::Relaxed), 5);
    let failures: usize = answers
        .iter()
        .filter(|(s, _)| **s != 200)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(failures, 0, "{answers:?}");
    assert!(
        !agent.log_text().contains("too many clients"),
        "{}",
        agent.log_text()
    );
}

#[test]
fn sixty_four_clients_open_no_more_sessions_than_the_pools_hold() {
    let cluster = PgCluster::start();
    let agent = agent(&cluster);
    let mut watch = cluster.connect("postgres");
    let sessions = |watch: &mut postgres::Client| -> i64 {
        watch
            .query_one(
                "SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let before = sessions(&mut watch);
    let (answers, _) = load(&agent, &cluster, "/activity", 64, Duration::from_secs(8));
    // The statistics collector reports sessions when they end or every so often.
    std::thread::sleep(Duration::from_secs(1));
    let opened = sessions(&mut watch) - before;
    let ok = answers.get(&200).copied().unwrap_or(0);
    assert!(ok > 64, "{answers:?}");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(
        opened <= POOL_SIZE + JOB_POOL_SIZE,
        "{opened} sessions opened for {ok} requests (pools of {POOL_SIZE} + {JOB_POOL_SIZE})"
    );
}

#[test]
fn pooled_statements_survive_a_server_restart() {
    let mut cluster = PgCluster::start();
    let agent = agent(&cluster);
    for _ in 0..3 {
        assert_eq!(agent.get("/activity").0, 200);
    }
    cluster.stop();
    let (status, body) = agent.get("/activity");
    assert_eq!(status, 503, "{body}");
    cluster.restart();
    let (status, body) = agent.get("/activity");
    assert_eq!(status, 200, "the first request after the restart: {body}");
    assert_eq!(agent.get("/dashboard/live").0, 200);
}
