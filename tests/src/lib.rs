//! The end-to-end test harness: a throwaway PostgreSQL cluster
//! ([`PgCluster`]) and the real `dbagent` binary serving it over HTTP
//! ([`Agent`]), with the test guests of `tests/plugins/` and `examples/`
//! available as drop-in plugins; throwaway MariaDB ([`MariaDb`]), Redis
//! ([`Redis`]) and InfluxDB ([`InfluxDb`]) servers, and a real Barman
//! backing up a cluster ([`Barman`]). `docs/TESTING.md` describes them.
//!
//! Everything here blocks: each test owns its servers and agent, and tests
//! run in parallel threads. Every server runs in its own temporary
//! directory on a port from [`free_port`], never on the machine's own
//! services, and is stopped when dropped.

mod agent;
mod barman;
mod cluster;
mod influxdb;
mod mariadb;
mod process;
mod redis;
pub mod sample;

pub use agent::{Agent, AgentOptions, StartFailure, TOKEN, binary, error_text, send};
pub use barman::{
    BARMAN_CLUSTER_CONF, BARMAN_SERVER, BackupInfo, Barman, RecoveryTarget, barman_executable,
};
pub use cluster::{PgCluster, PgClusterBuilder, pypi_bin_dir};
pub use influxdb::{INFLUXDB_PASSWORD, INFLUXDB_USER, InfluxDb};
pub use mariadb::{MARIADB_DATABASE, MARIADB_PASSWORD, MariaDb};
pub use process::port_is_open;
pub use redis::{Redis, RedisReply};

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The directory holding `NAME/NAME.wasm` and `NAME/NAME.toml` for every
/// test guest, filled by `build.rs`.
pub fn guests_dir() -> &'static Path {
    Path::new(env!("DBAGENT_TEST_GUESTS"))
}

/// `target/` of the repository, for state worth sharing between tests.
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .join("target")
}

/// Where `scripts/setup` installs what the harness needs from PyPI (the
/// Barman venv, the PostgreSQL 15 and 16 builds): `$DBAGENT_TEST_OPT`,
/// default `/opt/dbagent-test`.
pub fn test_opt_dir() -> PathBuf {
    std::env::var_os("DBAGENT_TEST_OPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/dbagent-test"))
}

/// A temporary directory that the `postgres` OS user owns when the tests
/// run as root: somewhere Barman can recover into, pg_upgrade can work in.
pub fn pg_owned_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("dbagent-pgdir-")
        .tempdir()
        .expect("cannot create a temporary directory");
    process::chown_if_root(dir.path(), "postgres")
        .unwrap_or_else(|e| panic!("cannot give a temporary directory to postgres: {e}"));
    dir
}

/// A TCP port free on 127.0.0.1 right now.
///
/// The listener is dropped before the port is used, so another process may
/// take it in between; callers retry on "address in use". Ports already
/// handed out in this process are skipped, so parallel tests of one binary
/// never race each other for the same one.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("cannot bind 127.0.0.1:0")
            .port();
        if given.insert(port) {
            return port;
        }
    }
}

/// Calls `probe` every 100 ms until it returns `Some`, or panics naming
/// `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Adds (or changes the password of) a user with the real `dbagent user add`,
/// the password on standard input.
pub fn user_add(config: &Path, name: &str, password: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(binary())
        .args(["user", "add", name, "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dbagent user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("wait for dbagent user add");
    assert!(
        out.status.success(),
        "dbagent user add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends `request` as it is over a new TCP connection to `addr` and returns
/// what the server answered until it closed the connection or `timeout`
/// passed (as text; empty when nothing came).
pub fn raw_http(addr: &str, request: &[u8], timeout: Duration) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the agent");
    stream
        .set_read_timeout(Some(timeout))
        .expect("set a read timeout");
    stream.write_all(request).expect("send the request");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// An agent whose users file holds alice (password `alice-secret`).
pub fn agent_with_alice(cluster: &PgCluster, opts: AgentOptions) -> Agent {
    let agent = Agent::start(cluster, opts.auth("users_file = \"users\""));
    user_add(agent.config_path(), "alice", "alice-secret");
    agent
}
