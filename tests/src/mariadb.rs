//! A throwaway MariaDB server: its own data directory in a temporary
//! directory, TCP on 127.0.0.1 at a free port and its own Unix socket, a
//! `root` user with a password and a `test` database. It never touches the
//! machine's own MariaDB.

use crate::free_port;
use crate::process::{
    ServerProcess, chown_if_root, port_is_open, read_log, run, running_as_root, server_tempdir,
    start_with_retries,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use tempfile::TempDir;

/// The password of `root`, for TCP and the socket alike.
pub const MARIADB_PASSWORD: &str = "dbagent-test-pw";
/// The database created at start-up, the default of [`MariaDb::query`].
pub const MARIADB_DATABASE: &str = "test";

/// The OS user mariadbd switches to when started as root (created by
/// Debian's mariadb-server package).
const OS_USER: &str = "mysql";

pub struct MariaDb {
    dir: TempDir,
    port: u16,
    process: Option<ServerProcess>,
}

impl MariaDb {
    /// Creates a data directory and starts a server on a free port, with
    /// `root` / [`MARIADB_PASSWORD`] and the database [`MARIADB_DATABASE`].
    /// Panics with the server's log when it cannot start.
    pub fn start() -> MariaDb {
        start_with_retries("a MariaDB server", Self::try_start)
    }

    fn try_start() -> Result<MariaDb, String> {
        let dir = server_tempdir("mariadb", Some(OS_USER))?;
        let mut server = MariaDb {
            dir,
            port: free_port(),
            process: None,
        };
        server.install()?;
        server.spawn()?;
        // mariadb-install-db made root@localhost, @127.0.0.1, @::1 and
        // @HOSTNAME, all without a password: keep the first two, with one.
        let setup = format!(
            "ALTER USER 'root'@'localhost' IDENTIFIED BY '{MARIADB_PASSWORD}';
             CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY '{MARIADB_PASSWORD}';
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
             CREATE DATABASE {MARIADB_DATABASE};"
        );
        let others = server.socket_sql(
            "SELECT CONCAT('DROP USER ''root''@''', Host, ''';') FROM mysql.user \
             WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1')",
        )?;
        server
            .socket_sql(&format!("{others}\n{setup}"))
            .map_err(|e| format!("cannot set up root and the test database: {e}"))?;
        Ok(server)
    }

    /// Runs `sql` as root without a password through the socket (only
    /// before [`MariaDb::try_start`] sets one); returns the raw output.
    fn socket_sql(&self, sql: &str) -> Result<String, String> {
        let mut cmd = Command::new("mariadb");
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket_path().display()))
            .args(["-u", "root", "--batch", "--skip-column-names", "-e", sql]);
        run(&mut cmd).map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A fresh data directory: a copy of one `mariadb-install-db` made once
    /// per MariaDB version (it takes seconds; a copy takes milliseconds).
    fn install(&self) -> Result<(), String> {
        let template = template_data_dir()?;
        run(Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(self.data_dir()))?;
        chown_if_root(&self.data_dir(), OS_USER)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new(mariadbd());
        cmd.arg("--no-defaults");
        if running_as_root() {
            cmd.arg(format!("--user={OS_USER}"));
        }
        cmd.arg(format!("--datadir={}", self.data_dir().display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", self.socket_path().display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("mariadbd.pid").display()
            ))
            .arg(format!("--tmpdir={}", self.dir.path().display()))
            .args(SERVER_OPTIONS)
            .current_dir(self.dir.path());
        let mut process = ServerProcess::spawn(cmd, &self.log_path())?;
        let (port, socket) = (self.port, self.socket_path());
        process.wait_ready("mariadbd", || port_is_open(port) && socket.exists())?;
        self.process = Some(process);
        Ok(())
    }

    /// Stops the server cleanly (SIGTERM, as `mariadb-admin shutdown` would),
    /// panicking if it does not stop. Its data stays.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process
                .terminate("mariadbd")
                .unwrap_or_else(|e| panic!("cannot stop MariaDB: {e}"));
        }
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts the server again on the same port and data, stopping it
    /// first if it is running.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn()
            .unwrap_or_else(|e| panic!("cannot restart MariaDB on port {}: {e}", self.port));
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.exited().is_none())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn user(&self) -> &'static str {
        "root"
    }

    pub fn password(&self) -> &'static str {
        MARIADB_PASSWORD
    }

    pub fn database(&self) -> &'static str {
        MARIADB_DATABASE
    }

    /// `mysql://root:PASSWORD@127.0.0.1:PORT/test`
    pub fn url(&self) -> String {
        format!(
            "mysql://root:{MARIADB_PASSWORD}@127.0.0.1:{}/{MARIADB_DATABASE}",
            self.port
        )
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("mariadbd.sock")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// mariadbd's standard output and error (its error log).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("mariadbd.log")
    }

    /// Runs `sql` (one or more statements) in the `test` database with the
    /// `mariadb` client over TCP, panicking with the server's error.
    /// Returns the rows of the last result set, each value as the client
    /// prints it in batch mode (NULL is `"NULL"`).
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        self.try_query(sql)
            .unwrap_or_else(|e| panic!("MariaDB query {sql:?} failed: {e}"))
    }

    /// [`MariaDb::query`] that returns the client's error instead of panicking.
    pub fn try_query(&self, sql: &str) -> Result<Vec<Vec<String>>, String> {
        let output = Command::new("mariadb")
            .arg("--no-defaults")
            .args(["--protocol=TCP", "-h", "127.0.0.1"])
            .arg(format!("--port={}", self.port))
            .args(["-u", "root", "--batch", "--skip-column-names"])
            .args(["-D", MARIADB_DATABASE, "-e", sql])
            .env("MYSQL_PWD", MARIADB_PASSWORD)
            .output()
            .map_err(|e| format!("cannot run the mariadb client: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| line.split('\t').map(unescape_batch).collect())
            .collect())
    }

    /// The server's log so far, for assertion messages.
    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        // Never panic here: the test may already be unwinding.
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }
}

/// Small buffers and no durability: these servers hold a few rows and die
/// with the test.
const SERVER_OPTIONS: &[&str] = &[
    "--skip-name-resolve",
    "--skip-log-bin",
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-file-size=8M",
    "--innodb-flush-log-at-trx-commit=0",
    "--skip-innodb-doublewrite",
    "--performance-schema=OFF",
];

fn mariadbd() -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin"] {
        let path = Path::new(dir).join("mariadbd");
        if path.is_file() {
            return path;
        }
    }
    PathBuf::from("mariadbd")
}

/// A data directory made by `mariadb-install-db` (root without password,
/// no test database), kept under `target/` per mariadbd version and made
/// at most once per process at a time.
fn template_data_dir() -> Result<PathBuf, String> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let version = run(Command::new(mariadbd()).arg("--version"))
        .map_err(|e| format!("{e}\ninstall MariaDB with scripts/setup"))?;
    let version = String::from_utf8_lossy(&version.stdout);
    let version: String = version
        .split_whitespace()
        .find(|word| word.contains("MariaDB"))
        .unwrap_or("unknown")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cache = crate::target_dir().join("test-cache");
    let template = cache.join(format!("mariadb-{version}"));
    if template.join("mysql").is_dir() {
        return Ok(template);
    }
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    // Made beside it and renamed into place, so that a test process running
    // at the same time never sees half of it.
    let work = server_tempdir("mariadb-install", Some(OS_USER))?;
    let data = work.path().join("data");
    let mut cmd = Command::new("mariadb-install-db");
    cmd.arg("--no-defaults");
    if running_as_root() {
        cmd.arg(format!("--user={OS_USER}"));
    }
    cmd.arg(format!("--datadir={}", data.display()))
        .args([
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ])
        .current_dir(work.path());
    run(&mut cmd).map_err(|e| format!("mariadb-install-db failed: {e}"))?;
    let staged = cache.join(format!("mariadb-{version}.{}", std::process::id()));
    run(Command::new("cp").arg("-a").arg(&data).arg(&staged))?;
    if std::fs::rename(&staged, &template).is_err() {
        // Another process got there first: use theirs.
        let _ = std::fs::remove_dir_all(&staged);
    }
    Ok(template)
}

/// Undoes the escaping of `mariadb --batch`: `\t`, `\n`, `\\`, `\0`.
fn unescape_batch(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}
