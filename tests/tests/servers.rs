//! The harness's own servers, proven to work: each starts on a free port
//! beside the machine's own services, answers, stops (its port closes) and
//! starts again with its data. Then Barman backing up and recovering a
//! throwaway cluster, and a real pg_upgrade from the PyPI 15 build to 16.

use dbagent_tests::{
    BARMAN_CLUSTER_CONF, Barman, InfluxDb, MariaDb, PgCluster, RecoveryTarget, Redis, RedisReply,
    pg_owned_tempdir, port_is_open,
};

/// The machine's own service on `port`, if it runs, must still run after
/// the test: the harness never touches it.
struct MachineService {
    port: u16,
    was_open: bool,
}

impl MachineService {
    fn note(port: u16) -> MachineService {
        MachineService {
            port,
            was_open: port_is_open(port),
        }
    }

    fn assert_untouched(&self, ours: u16) {
        assert_ne!(ours, self.port, "a test server took the standard port");
        if self.was_open {
            assert!(
                port_is_open(self.port),
                "the machine's service on port {} stopped during the test",
                self.port
            );
        }
    }
}

#[test]
fn mariadb_starts_answers_stops_and_restarts_with_its_data() {
    let machine = MachineService::note(3306);
    let mut db = MariaDb::start();
    let port = db.port();
    assert!(port_is_open(port));

    let version = db.query("SELECT VERSION()");
    assert!(version[0][0].contains("MariaDB"), "{version:?}");
    assert_eq!(
        db.query("SELECT DATABASE(), CURRENT_USER()"),
        vec![vec!["test".to_string(), "root@127.0.0.1".to_string()]]
    );
    db.query("CREATE TABLE t (id INT PRIMARY KEY, note TEXT)");
    db.query("INSERT INTO t VALUES (1, 'tab\there'), (2, NULL)");

    // The password is required.
    let refused = std::process::Command::new("mariadb")
        .args([
            "--no-defaults",
            "--protocol=TCP",
            "-h",
            "127.0.0.1",
            "-u",
            "root",
        ])
        .arg(format!("--port={port}"))
        .args(["-e", "SELECT 1"])
        .output()
        .expect("run the mariadb client");
    assert!(!refused.status.success(), "root without a password got in");
    assert!(db.try_query("SELEC 1").unwrap_err().contains("syntax"));

    db.stop();
    assert!(!port_is_open(port), "port {port} still open after stop");
    db.restart();
    assert_eq!(db.port(), port);
    assert_eq!(
        db.query("SELECT id, note FROM t ORDER BY id"),
        vec![
            vec!["1".to_string(), "tab\there".to_string()],
            vec!["2".to_string(), "NULL".to_string()],
        ],
        "the rows did not survive the restart; log:\n{}",
        db.log()
    );
    machine.assert_untouched(port);
}

#[test]
fn redis_starts_answers_stops_and_restarts_with_its_data() {
    let machine = MachineService::note(6379);
    let mut redis = Redis::start_with_password("s3cret");
    let port = redis.port();
    assert_eq!(redis.url(), format!("redis://:s3cret@127.0.0.1:{port}"));
    assert_eq!(redis.command(&["PING"]), RedisReply::Status("PONG".into()));
    assert_eq!(
        redis.command(&["SET", "key", "a value\r\nwith CRLF"]),
        RedisReply::Status("OK".into())
    );
    assert_eq!(redis.command(&["GET", "missing"]), RedisReply::Nil);
    assert!(
        matches!(redis.command(&["NOSUCHCOMMAND"]), RedisReply::Error(e) if e.starts_with("ERR"))
    );
    assert_eq!(
        redis.command(&["RPUSH", "list", "a", "b"]),
        RedisReply::Integer(2)
    );

    redis.stop();
    assert!(!port_is_open(port), "port {port} still open after stop");
    redis.restart();
    assert_eq!(
        redis.command(&["GET", "key"]),
        RedisReply::Bulk(b"a value\r\nwith CRLF".to_vec()),
        "the key did not survive the restart; log:\n{}",
        redis.log()
    );
    assert_eq!(
        redis.command(&["LRANGE", "list", "0", "-1"]),
        RedisReply::Array(vec![
            RedisReply::Bulk(b"a".to_vec()),
            RedisReply::Bulk(b"b".to_vec())
        ])
    );

    // A crash loses what was not saved, as for a real `--save ''` server.
    redis.kill();
    redis.restart();
    assert_eq!(
        redis.command(&["SET", "after", "1"]),
        RedisReply::Status("OK".into())
    );
    machine.assert_untouched(port);
}

#[test]
fn influxdb_starts_answers_stops_and_restarts_with_its_data() {
    let machine = MachineService::note(8086);
    let mut influx = InfluxDb::start_with_auth();
    let port = influx.port();
    assert!(influx.ping().starts_with("1."), "not InfluxDB 1.x");
    assert_ne!(influx.rpc_port(), 8088);

    influx.query("CREATE DATABASE metrics");
    influx.write("metrics", "cpu,host=a value=0.5 1700000000000000000");
    let databases = influx.query("SHOW DATABASES");
    assert!(databases.to_string().contains("\"metrics\""), "{databases}");
    // InfluxDB reports a statement's error inside a 200 answer.
    let error = influx.query("SELEC 1");
    assert!(error.to_string().contains("error"), "{error}");

    // Without credentials: refused.
    let anonymous = reqwest::blocking::Client::new()
        .post(format!("{}/query", influx.url()))
        .form(&[("q", "SHOW DATABASES")])
        .send()
        .expect("POST /query");
    assert_eq!(anonymous.status(), 401);

    influx.stop();
    assert!(!port_is_open(port), "port {port} still open after stop");
    influx.restart();
    let points = influx.query_db("metrics", "SELECT value FROM cpu");
    assert_eq!(
        points["results"][0]["series"][0]["values"][0][1],
        0.5,
        "the point did not survive the restart: {points}\nlog:\n{}",
        influx.log()
    );
    machine.assert_untouched(port);
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

#[test]
fn barman_backs_up_twice_and_recovers_the_older_backup() {
    let cluster = PgCluster::start_with(BARMAN_CLUSTER_CONF);
    let barman = Barman::for_cluster(&cluster);
    let failed = barman.failed_checks();
    assert!(
        failed.is_empty(),
        "barman check: {failed:?}\n{}",
        barman.log()
    );
    let checks = barman.check();
    assert_eq!(checks["receive_wal_running"]["status"], "OK", "{checks}");
    assert_eq!(checks["replication_slot"]["status"], "OK", "{checks}");

    let mut client = cluster.connect("postgres");
    client
        .batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);")
        .expect("write the first rows");
    let first = barman.backup();
    // A point in time between the two backups, by the server's clock.
    let between: String = client
        .query_one("SELECT (now() + interval '1 second')::text", &[])
        .expect("read the time")
        .get(0);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    client
        .batch_execute("INSERT INTO t VALUES (3);")
        .expect("write the second rows");
    let second = barman.backup();
    barman.cron();

    let backups = barman.list_backups();
    let ids: Vec<&str> = backups.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first");
    assert!(
        backups
            .iter()
            .all(|b| b.status == "DONE" && b.size_bytes > 0)
    );
    let shown = barman.show_backup(&first);
    assert_eq!(shown["backup_id"], first.as_str(), "{shown:#}");
    assert_eq!(shown["base_backup_information"]["timeline"], 1, "{shown:#}");

    // Exactly the older backup's rows.
    let dest = pg_owned_tempdir();
    barman.recover_to(&first, &dest.path().join("data"), RecoveryTarget::Immediate);
    let recovered = PgCluster::builder()
        .bin_dir(cluster.bin_dir())
        .existing_data(dest.path().join("data"))
        .start();
    recovered.wait_for_promotion();
    assert_eq!(count_rows(&recovered), [1, 2]);
    drop(recovered);

    // Point in time: the older backup and WAL up to a time between.
    let dest = pg_owned_tempdir();
    barman.recover(&first, &dest.path().join("data"), Some(&between));
    let recovered = PgCluster::builder()
        .bin_dir(cluster.bin_dir())
        .existing_data(dest.path().join("data"))
        .start();
    recovered.wait_for_promotion();
    assert_eq!(count_rows(&recovered), [1, 2], "recovered to {between}");
    drop(recovered);

    // No target: Barman replays every WAL it has, even from the older one.
    let dest = pg_owned_tempdir();
    barman.recover(&first, &dest.path().join("data"), None);
    let recovered = PgCluster::builder()
        .bin_dir(cluster.bin_dir())
        .existing_data(dest.path().join("data"))
        .start();
    assert_eq!(count_rows(&recovered), [1, 2, 3]);
}

#[test]
fn pg_upgrade_from_the_pypi_15_build_to_16() {
    let mut old = PgCluster::start_version(15);
    old.connect("postgres")
        .batch_execute(
            "CREATE EXTENSION pg_stat_statements;
             CREATE TABLE t (id int PRIMARY KEY, note text);
             INSERT INTO t VALUES (1, 'one'), (2, 'two');",
        )
        .expect("write the old cluster's data");
    let old_version: String = old
        .connect("postgres")
        .query_one("SHOW server_version", &[])
        .expect("read the version")
        .get(0);
    assert!(old_version.starts_with("15."), "{old_version}");
    old.stop();

    let mut new = PgCluster::builder().version(16).init();
    let (old_data, new_data) = (old.data_dir(), new.data_dir());
    let upgrade = |extra: &[&str]| {
        let output = new
            .command("pg_upgrade")
            .arg("-b")
            .arg(old.bin_dir())
            .arg("-B")
            .arg(new.bin_dir())
            .arg("-d")
            .arg(&old_data)
            .arg("-D")
            .arg(&new_data)
            .args(["-p", &old.port().to_string(), "-P", &new.port().to_string()])
            .args(["-U", "postgres"])
            .args(extra)
            .output()
            .expect("run pg_upgrade");
        assert!(
            output.status.success(),
            "pg_upgrade {extra:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    upgrade(&["--check"]);
    upgrade(&[]);

    new.restart();
    let mut client = new.connect("postgres");
    let version: String = client
        .query_one("SHOW server_version", &[])
        .expect("read the version")
        .get(0);
    assert!(version.starts_with("16."), "{version}");
    let rows: Vec<(i32, String)> = client
        .query("SELECT id, note FROM t ORDER BY id", &[])
        .expect("read the upgraded data")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [(1, "one".to_string()), (2, "two".to_string())]);
    client
        .query_one("SELECT count(*) FROM pg_stat_statements", &[])
        .expect("pg_stat_statements works on the upgraded cluster");
}

#[test]
fn barman_backs_up_the_pypi_16_build() {
    let cluster = PgCluster::builder()
        .version(16)
        .conf(BARMAN_CLUSTER_CONF)
        .start();
    let barman = Barman::for_cluster(&cluster);
    let failed = barman.failed_checks();
    assert!(
        failed.is_empty(),
        "barman check: {failed:?}\n{}",
        barman.log()
    );
    let id = barman.backup();
    let shown = barman.show_backup(&id);
    assert_eq!(shown["status"], "DONE", "{shown:#}");
    assert_eq!(
        shown["postgresql_version"].as_u64().map(|v| v / 10000),
        Some(16),
        "{shown:#}"
    );
}
