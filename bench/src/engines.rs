//! Action latency per engine against the same work sent straight to the
//! server by a kept client connection, turn about on one machine: what the
//! action path (HTTP, the databases plugin, the host, a fresh action module,
//! the host's pooled connection) adds for MySQL, Redis and InfluxDB.
//!
//! | engine | action | the direct call |
//! |---|---|---|
//! | MariaDB | `get-sqlmode` | `SELECT @@GLOBAL.sql_mode` (mysql_async, prepared) |
//! | Redis | `config-get` `{"name": "maxmemory"}` | `CONFIG GET maxmemory` (redis, multiplexed) |
//! | InfluxDB | `list-databases` | `GET /query?q=SHOW DATABASES` (HTTP keep-alive) |

use crate::{Connection, Stats, micros, print_stats};
use dbagent_tests::{Agent, AgentOptions, InfluxDb, MARIADB_DATABASE, MariaDb, Redis};
use std::time::{Duration, Instant};

pub fn run(count: usize) {
    let mariadb = MariaDb::start();
    let redis_server = Redis::start();
    let influxdb = InfluxDb::start();
    influxdb.query("CREATE DATABASE telemetry");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let password = dir.path().join("mysql.password");
    std::fs::write(&password, mariadb.password()).expect("write the password file");
    let config = format!(
        "[databases.shop]\nengine = \"mysql\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"root\"\npassword_file = {:?}\ndbname = \"{MARIADB_DATABASE}\"\n\n\
         [databases.cache]\nengine = \"redis\"\nhost = \"127.0.0.1\"\nport = {}\n\n\
         [databases.metrics]\nengine = \"influxdb\"\nhost = \"127.0.0.1\"\nport = {}\ndbname = \"telemetry\"\n",
        mariadb.port(),
        password.display(),
        redis_server.port(),
        influxdb.port(),
    );
    let agent = Agent::try_start_without_postgres(AgentOptions::new().config(&config))
        .unwrap_or_else(|failure| panic!("{failure}"));
    let authority = agent
        .url("/")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let mysql = {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(mariadb.port())
            .user(Some("root"))
            .pass(Some(mariadb.password()))
            .db_name(Some(MARIADB_DATABASE));
        let mut conn = runtime
            .block_on(mysql_async::Conn::new(opts))
            .expect("connect to MariaDB");
        let statement = runtime
            .block_on(mysql_async::prelude::Queryable::prep(
                &mut conn,
                "SELECT @@GLOBAL.sql_mode",
            ))
            .expect("prepare");
        compare(
            &authority,
            (
                "action mysql get-sqlmode",
                "shop",
                r#"{"action_name": "get-sqlmode"}"#,
            ),
            "direct SELECT sql_mode",
            count,
            || {
                let mode: Option<String> = runtime
                    .block_on(mysql_async::prelude::Queryable::exec_first(
                        &mut conn,
                        &statement,
                        (),
                    ))
                    .expect("the direct query");
                assert!(mode.is_some());
            },
        )
    };

    let redis_pair = {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", redis_server.port()))
            .expect("a Redis client");
        let mut conn = runtime
            .block_on(client.get_multiplexed_async_connection())
            .expect("connect to Redis");
        compare(
            &authority,
            (
                "action redis config-get",
                "cache",
                r#"{"action_name": "config-get", "params": {"name": "maxmemory"}}"#,
            ),
            "direct CONFIG GET",
            count,
            || {
                let reply: Vec<String> = runtime
                    .block_on(
                        redis::cmd("CONFIG")
                            .arg("GET")
                            .arg("maxmemory")
                            .query_async(&mut conn),
                    )
                    .expect("the direct command");
                assert_eq!(reply.len(), 2);
            },
        )
    };

    let influx_pair = {
        let influx_authority = format!("127.0.0.1:{}", influxdb.port());
        let mut direct = Connection::open_anonymous(&influx_authority);
        compare(
            &authority,
            (
                "action influxdb list-databases",
                "metrics",
                r#"{"action_name": "list-databases"}"#,
            ),
            "direct SHOW DATABASES",
            count,
            || assert_eq!(direct.get("/query?q=SHOW%20DATABASES"), 200),
        )
    };

    for (action, direct) in [&mysql, &redis_pair, &influx_pair] {
        print_stats(action);
        print_stats(direct);
        println!(
            "{}: +{:.1} µs at p50, +{:.1} µs at p99 over the direct call",
            action.name,
            micros(action.p50) - micros(direct.p50),
            micros(action.p99) - micros(direct.p99)
        );
    }
}

/// The action and the direct call, turn about, each on its own connection.
fn compare(
    authority: &str,
    (action_name, database, body): (&'static str, &str, &str),
    direct_name: &'static str,
    count: usize,
    mut direct: impl FnMut(),
) -> (Stats, Stats) {
    let path = format!("/api/databases/{database}/action");
    let mut http = Connection::open(authority);
    for _ in 0..50 {
        assert_eq!(http.post(&path, body), 200, "{action_name}");
        direct();
    }
    let (mut via_action, mut via_direct) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for _ in 0..count {
        let t = Instant::now();
        assert_eq!(http.post(&path, body), 200, "{action_name}");
        via_action.push(t.elapsed());
        let t = Instant::now();
        direct();
        via_direct.push(t.elapsed());
    }
    let total = |samples: &[Duration]| samples.iter().sum();
    let (a_total, d_total) = (total(&via_action), total(&via_direct));
    (
        Stats::of(action_name, via_action, a_total),
        Stats::of(direct_name, via_direct, d_total),
    )
}
