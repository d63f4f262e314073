//! A throwaway InfluxDB 1.x server (`influxd` from Debian's `influxdb`,
//! 1.6): a generated configuration with its meta, data and WAL directories
//! in a temporary directory, HTTP on 127.0.0.1 at a free port, the RPC
//! (backup) listener on another free port, usage reporting off. It never
//! touches a machine-wide InfluxDB.

use crate::free_port;
use crate::process::{ServerProcess, read_log, server_tempdir, start_with_retries};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// The admin user created when authentication is enabled.
pub const INFLUXDB_USER: &str = "admin";
pub const INFLUXDB_PASSWORD: &str = "dbagent-test-pw";

pub struct InfluxDb {
    dir: TempDir,
    http_port: u16,
    rpc_port: u16,
    auth: bool,
    process: Option<ServerProcess>,
    http: reqwest::blocking::Client,
}

impl InfluxDb {
    /// A server without authentication.
    pub fn start() -> InfluxDb {
        Self::start_with(false)
    }

    /// A server with `auth-enabled = true` and an admin user
    /// [`INFLUXDB_USER`] / [`INFLUXDB_PASSWORD`]; [`InfluxDb::query`] sends
    /// those credentials.
    pub fn start_with_auth() -> InfluxDb {
        Self::start_with(true)
    }

    fn start_with(auth: bool) -> InfluxDb {
        start_with_retries("an InfluxDB server", || {
            let mut server = InfluxDb {
                dir: server_tempdir("influxdb", None)?,
                http_port: free_port(),
                rpc_port: free_port(),
                auth,
                process: None,
                http: reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .map_err(|e| format!("cannot build an HTTP client: {e}"))?,
            };
            server.write_config()?;
            server.spawn()?;
            if auth {
                // With no user yet, InfluxDB takes this one statement
                // without credentials.
                let body = server.raw_query(
                    None,
                    &format!(
                        "CREATE USER {INFLUXDB_USER} WITH PASSWORD '{INFLUXDB_PASSWORD}' \
                         WITH ALL PRIVILEGES"
                    ),
                    false,
                )?;
                if body.to_string().contains("\"error\"") {
                    return Err(format!("cannot create the admin user: {body}"));
                }
            }
            Ok(server)
        })
    }

    fn write_config(&self) -> Result<(), String> {
        let d = self.dir.path().display();
        let config = format!(
            "reporting-disabled = true\n\
             bind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [http]\n  enabled = true\n  bind-address = \"127.0.0.1:{http}\"\n  \
             auth-enabled = {auth}\n  log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [subscriber]\n  enabled = false\n\
             [continuous_queries]\n  enabled = false\n",
            rpc = self.rpc_port,
            http = self.http_port,
            auth = self.auth,
        );
        let path = self.config_path();
        std::fs::write(&path, config).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("influxd");
        cmd.arg("run")
            .arg("-config")
            .arg(self.config_path())
            .current_dir(self.dir.path());
        let mut process = ServerProcess::spawn(cmd, &self.log_path())?;
        // Ours, not whoever else might hold the port: the log names it.
        let listening = format!("addr=127.0.0.1:{}", self.http_port);
        let log = self.log_path();
        process.wait_ready("influxd", || {
            self.try_ping().is_ok()
                && read_log(&log)
                    .lines()
                    .any(|l| l.contains("Listening on HTTP") && l.contains(&listening))
        })?;
        self.process = Some(process);
        Ok(())
    }

    /// Stops the server (SIGTERM), panicking if it does not stop. Its data
    /// stays.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process
                .terminate("influxd")
                .unwrap_or_else(|e| panic!("cannot stop InfluxDB: {e}"));
        }
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts the server again on the same ports and data, stopping it
    /// first if it is running.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn()
            .unwrap_or_else(|e| panic!("cannot restart InfluxDB on port {}: {e}", self.http_port));
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.exited().is_none())
    }

    /// The HTTP API's port.
    pub fn port(&self) -> u16 {
        self.http_port
    }

    /// The RPC (backup/restore) listener's port.
    pub fn rpc_port(&self) -> u16 {
        self.rpc_port
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The admin user and password when authentication is enabled.
    pub fn credentials(&self) -> Option<(&'static str, &'static str)> {
        self.auth.then_some((INFLUXDB_USER, INFLUXDB_PASSWORD))
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("influxdb.conf")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("influxd.log")
    }

    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }

    /// `GET /ping`: the server's version (its `X-Influxdb-Version` header).
    /// Panics when the server does not answer 204.
    pub fn ping(&self) -> String {
        self.try_ping()
            .unwrap_or_else(|e| panic!("InfluxDB on port {}: {e}", self.http_port))
    }

    pub fn try_ping(&self) -> Result<String, String> {
        let response = self
            .http
            .get(format!("{}/ping", self.url()))
            .send()
            .map_err(|e| format!("GET /ping: {e}"))?;
        if response.status() != reqwest::StatusCode::NO_CONTENT {
            return Err(format!("GET /ping answered {}", response.status()));
        }
        Ok(response
            .headers()
            .get("X-Influxdb-Version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string())
    }

    /// `POST /query` with InfluxQL `q` (no database), with the admin's
    /// credentials when authentication is enabled. Returns the JSON body as
    /// InfluxDB sent it: statement errors are inside it
    /// (`results[i].error`), as InfluxDB reports them with a 200.
    pub fn query(&self, q: &str) -> serde_json::Value {
        self.raw_query(None, q, true)
            .unwrap_or_else(|e| panic!("InfluxDB query {q:?}: {e}"))
    }

    /// [`InfluxDb::query`] in database `db`.
    pub fn query_db(&self, db: &str, q: &str) -> serde_json::Value {
        self.raw_query(Some(db), q, true)
            .unwrap_or_else(|e| panic!("InfluxDB query {q:?} in {db}: {e}"))
    }

    /// `POST /write?db=DB` with points in line protocol; panics unless
    /// InfluxDB answers 204.
    pub fn write(&self, db: &str, lines: &str) {
        let mut request = self
            .http
            .post(format!("{}/write", self.url()))
            .query(&[("db", db)])
            .body(lines.to_string());
        if self.auth {
            request = request.basic_auth(INFLUXDB_USER, Some(INFLUXDB_PASSWORD));
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("InfluxDB write to {db}: {e}"));
        let status = response.status();
        assert_eq!(
            status,
            reqwest::StatusCode::NO_CONTENT,
            "InfluxDB write to {db}: {}",
            response.text().unwrap_or_default()
        );
    }

    fn raw_query(
        &self,
        db: Option<&str>,
        q: &str,
        auth: bool,
    ) -> Result<serde_json::Value, String> {
        let mut form = vec![("q", q)];
        if let Some(db) = db {
            form.push(("db", db));
        }
        let mut request = self.http.post(format!("{}/query", self.url())).form(&form);
        if auth && self.auth {
            request = request.basic_auth(INFLUXDB_USER, Some(INFLUXDB_PASSWORD));
        }
        let response = request.send().map_err(|e| format!("POST /query: {e}"))?;
        let status = response.status();
        let text = response
            .text()
            .map_err(|e| format!("reading the answer to POST /query: {e}"))?;
        serde_json::from_str(&text).map_err(|e| {
            format!("POST /query answered {status} with a body that is not JSON ({e}): {text}")
        })
    }
}

impl Drop for InfluxDb {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }
}
