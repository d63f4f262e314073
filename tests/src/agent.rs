//! The real `dbagent` binary, configured for one test and serving one
//! [`PgCluster`] over HTTP on a free loopback port.

use crate::{PgCluster, free_port, guests_dir, target_dir};
use serde_json::Value;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The API token every test agent accepts (`Authorization: Bearer`).
pub const TOKEN: &str = "dbagent-tests-token-0123456789";

/// How long the agent may take to load its plugins and answer `/ping`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times start-up is tried when the chosen port was taken.
const START_ATTEMPTS: usize = 3;

/// What a test wants from its agent beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct AgentOptions {
    /// Test guests (by name, see [`crate::guests_dir`]) installed as drop-ins.
    pub plugins: Vec<String>,
    /// TOML appended to the configuration, e.g. `[plugin.spin]\ntimeout_secs = 2`.
    pub config: String,
    /// A private compiled-code cache; the default is shared by all tests.
    pub cache_dir: Option<PathBuf>,
    /// Lines added to the `[server]` table.
    pub server: String,
    /// Lines added to the `[auth]` table (which always holds [`TOKEN`]).
    pub auth: String,
    /// The agent's limit on open files (soft and hard), when set.
    pub open_files: Option<u64>,
    /// Lines added to the `[postgresql]` table.
    pub postgresql: String,
    /// Lines added to the `[runtime]` table.
    pub runtime: String,
    /// Serve HTTPS with this PEM certificate chain and key.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl AgentOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn plugin(mut self, name: &str) -> Self {
        self.plugins.push(name.to_string());
        self
    }

    pub fn config(mut self, toml: &str) -> Self {
        self.config.push_str(toml);
        self.config.push('\n');
        self
    }

    pub fn server(mut self, lines: &str) -> Self {
        self.server.push_str(lines);
        self.server.push('\n');
        self
    }

    pub fn auth(mut self, lines: &str) -> Self {
        self.auth.push_str(lines);
        self.auth.push('\n');
        self
    }

    pub fn runtime(mut self, lines: &str) -> Self {
        self.runtime.push_str(lines);
        self.runtime.push('\n');
        self
    }

    pub fn postgresql(mut self, lines: &str) -> Self {
        self.postgresql.push_str(lines);
        self.postgresql.push('\n');
        self
    }

    /// Serves HTTPS with `cert` and `key` (PEM). The agent is then known to
    /// be up by its log line, since this harness speaks plain HTTP.
    pub fn tls(mut self, cert: &Path, key: &Path) -> Self {
        self.tls = Some((cert.to_path_buf(), key.to_path_buf()));
        self
    }

    /// Runs the agent with at most `n` open files.
    pub fn open_files(mut self, n: u64) -> Self {
        self.open_files = Some(n);
        self
    }

    pub fn cache_dir(mut self, dir: &Path) -> Self {
        self.cache_dir = Some(dir.to_path_buf());
        self
    }
}

/// The agent exited (or never answered) instead of starting.
#[derive(Debug)]
pub struct StartFailure {
    /// Its exit status, or `None` when it was killed for not answering.
    pub status: Option<ExitStatus>,
    /// Everything it printed.
    pub log: String,
}

impl fmt::Display for StartFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => writeln!(f, "dbagent exited with {status}; its output:")?,
            None => writeln!(
                f,
                "dbagent did not answer /ping within {START_TIMEOUT:?}; its output:"
            )?,
        }
        f.write_str(&self.log)
    }
}

pub struct Agent {
    dir: TempDir,
    config_path: PathBuf,
    log_path: PathBuf,
    addr: String,
    child: Option<Child>,
    http: reqwest::blocking::Client,
    open_files: Option<u64>,
    tls: bool,
}

impl Agent {
    /// Starts an agent for `cluster`, panicking with its output if it does
    /// not come up.
    pub fn start(cluster: &PgCluster, opts: AgentOptions) -> Agent {
        Self::try_start(cluster, opts).unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// Starts an agent for `cluster`; `Err` when it exits before answering
    /// `/ping` (the tests of start-up refusals want exactly that).
    pub fn try_start(cluster: &PgCluster, opts: AgentOptions) -> Result<Agent, StartFailure> {
        Self::try_start_for(Some(cluster), opts)
    }

    /// Starts an agent whose PostgreSQL does not exist (a socket directory
    /// that is not there): for tests of what the agent does without one,
    /// such as refusing a plugin at start-up, which need no cluster.
    pub fn try_start_without_postgres(opts: AgentOptions) -> Result<Agent, StartFailure> {
        Self::try_start_for(None, opts)
    }

    fn try_start_for(
        cluster: Option<&PgCluster>,
        opts: AgentOptions,
    ) -> Result<Agent, StartFailure> {
        let dir = tempfile::Builder::new()
            .prefix("dbagent-agent-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let plugins_dir = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins_dir).expect("cannot create the plugins directory");
        for name in &opts.plugins {
            install_guest(name, &plugins_dir);
        }
        let cache_dir = opts
            .cache_dir
            .clone()
            .unwrap_or_else(|| target_dir().join("test-plugin-cache"));
        std::fs::create_dir_all(&cache_dir).expect("cannot create the plugin cache directory");

        let mut agent = Agent {
            config_path: dir.path().join("dbagent.toml"),
            log_path: dir.path().join("dbagent.log"),
            dir,
            addr: String::new(),
            child: None,
            open_files: opts.open_files,
            tls: opts.tls.is_some(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("cannot build an HTTP client"),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            agent.addr = format!("127.0.0.1:{}", free_port());
            agent.write_config(cluster, &cache_dir, &plugins_dir, &opts);
            match agent.spawn_and_wait() {
                Ok(()) => return Ok(agent),
                Err(failure)
                    if attempt < START_ATTEMPTS
                        && failure
                            .log
                            .to_lowercase()
                            .contains("address already in use") =>
                {
                    continue;
                }
                Err(failure) => return Err(failure),
            }
        }
    }

    /// Stops the agent and starts it again with the same configuration and
    /// data directory (on a fresh port).
    pub fn restart(&mut self) -> Result<(), StartFailure> {
        self.kill();
        let text = std::fs::read_to_string(&self.config_path).expect("cannot read the config");
        self.addr = format!("127.0.0.1:{}", free_port());
        let text = text
            .lines()
            .map(|line| {
                if line.starts_with("listen = ") {
                    format!("listen = \"{}\"", self.addr)
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&self.config_path, text).expect("cannot write the config");
        self.spawn_and_wait()
    }

    fn write_config(
        &self,
        cluster: Option<&PgCluster>,
        cache_dir: &Path,
        plugins_dir: &Path,
        opts: &AgentOptions,
    ) {
        let tls = match &opts.tls {
            Some((cert, key)) => format!(
                "tls_cert = {}\ntls_key = {}",
                toml_string(cert),
                toml_string(key)
            ),
            None => String::new(),
        };
        let postgres = match cluster {
            Some(cluster) => format!(
                "host = {socket}\nport = {port}\ndata_directory = {data_directory}\npg_ctl = {pg_ctl}\npg_ctl_log = {pg_log}\n{pg_ctl_user}",
                socket = toml_string(cluster.socket_dir()),
                port = cluster.port(),
                data_directory = toml_string(&cluster.data_dir()),
                pg_ctl = toml_string(&cluster.pg_ctl_path()),
                pg_log = toml_string(&cluster.log_path()),
                pg_ctl_user = cluster
                    .os_user()
                    .map(|user| format!("pg_ctl_user = \"{user}\""))
                    .unwrap_or_default(),
            ),
            None => format!(
                "host = {}\nport = 5432\nconnect_timeout_secs = 1",
                toml_string(&self.dir.path().join("no-postgresql-here"))
            ),
        };
        let config = format!(
            r#"[server]
listen = "{addr}"
data_dir = {data_dir}
{tls}
{server}

[postgresql]
user = "postgres"
dbname = "postgres"
{postgres}
{postgresql}

[runtime]
cache_dir = {cache}
{runtime}

[plugins]
dir = {plugins}

[auth]
api_tokens = ["{TOKEN}"]
{auth}

{extra}
"#,
            server = opts.server,
            auth = opts.auth,
            postgresql = opts.postgresql,
            runtime = opts.runtime,
            extra = opts.config,
            addr = self.addr,
            data_dir = toml_string(&self.data_dir()),
            cache = toml_string(cache_dir),
            plugins = toml_string(plugins_dir),
        );
        std::fs::write(&self.config_path, config).expect("cannot write the agent config");
    }

    fn spawn_and_wait(&mut self) -> Result<(), StartFailure> {
        let log = File::create(&self.log_path).expect("cannot create the agent log");
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .env("RUST_LOG", "info")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot clone the log file"))
            .stderr(log);
        if let Some(limit) = self.open_files {
            use std::os::unix::process::CommandExt;
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit is async-signal-safe and touches only the child.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary().display()));
        self.child = Some(child);

        let start = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(StartFailure {
                    status: Some(status),
                    log: self.log_text(),
                });
            }
            if self.tls {
                if self.log_text().contains("dbagent is serving") {
                    return Ok(());
                }
            } else if let Ok(response) = self.request(reqwest::Method::GET, "/ping").send()
                && response.status().is_success()
            {
                return Ok(());
            }
            if start.elapsed() > START_TIMEOUT {
                self.kill();
                return Err(StartFailure {
                    status: None,
                    log: self.log_text(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://ADDR/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The agent's own directory (configuration, log, data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration file the agent was started with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The agent process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The agent's resident memory now, in bytes (`VmRSS`).
    pub fn resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("cannot read the agent's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .expect("no VmRSS in /proc status")
    }

    /// `host:port` the agent listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `signal` (e.g. `libc::SIGHUP`) to the agent.
    pub fn signal(&self, signal: i32) {
        let pid = self.pid() as i32;
        assert!(pid > 0, "the agent is not running");
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// A request without any credential.
    pub fn anonymous(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// The agent's data directory (state store, default cache).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// An authenticated request to `path`.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(TOKEN)
    }

    /// `GET path`: the status and the body as JSON (a JSON string holding
    /// the raw text when the body is not JSON, so assertions show it).
    pub fn get(&self, path: &str) -> (u16, Value) {
        send(self.request(reqwest::Method::GET, path))
    }

    /// `POST path` with `body` as `application/json`.
    pub fn post_json(&self, path: &str, body: &str) -> (u16, Value) {
        send(
            self.request(reqwest::Method::POST, path)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
    }

    /// `GET path`, which must answer 200: its body.
    pub fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// `POST /login` with `body` as it is, without credentials.
    pub fn login(&self, body: &str) -> (u16, Value) {
        send(
            self.anonymous(reqwest::Method::POST, "/login")
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
    }

    /// A session of `user`, who must be able to log in.
    pub fn session_of(&self, user: &str, password: &str) -> String {
        let (status, body) =
            self.login(&serde_json::json!({"username": user, "password": password}).to_string());
        assert_eq!(status, 200, "login {user}: {body}");
        body["session"]
            .as_str()
            .expect("session string")
            .to_string()
    }

    /// A request with `session` in `X-Session` and no other credential.
    pub fn with_session(&self, method: reqwest::Method, path: &str, session: &str) -> (u16, Value) {
        send(self.anonymous(method, path).header("X-Session", session))
    }

    /// Sends SIGHUP and waits (up to 60 s) for the agent to log that its
    /// plugins are reloaded; returns how long that took from the signal.
    pub fn reload_plugins(&self) -> Duration {
        let reloads = |log: &str| log.matches("plugins reloaded").count();
        let before = reloads(&self.log_text());
        let signalled = std::time::Instant::now();
        self.signal(libc::SIGHUP);
        crate::wait_for(
            "the plugins to be reloaded",
            Duration::from_secs(60),
            || (reloads(&self.log_text()) > before).then(|| signalled.elapsed()),
        )
    }

    /// Runs `dbagent compile` on this agent's configuration (fills the
    /// compiled-code cache for what its plugin directory holds now) and
    /// returns what it printed.
    pub fn compile_ahead(&self) -> String {
        let output = Command::new(binary())
            .arg("compile")
            .arg("--config")
            .arg(&self.config_path)
            .output()
            .expect("run dbagent compile");
        let said = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        said
    }

    /// Everything the agent printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `error` message of a temBoard-style error body (`""` when there is none).
pub fn error_text(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

/// Sends `request`: the status and the body as JSON.
pub fn send(request: reqwest::blocking::RequestBuilder) -> (u16, Value) {
    let response = request
        .send()
        .unwrap_or_else(|e| panic!("HTTP request failed: {e}"));
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Copies guest `name` into `plugins_dir` as `NAME.wasm` and `NAME.toml`.
fn install_guest(name: &str, plugins_dir: &Path) {
    let from = guests_dir().join(name);
    for ext in ["wasm", "toml"] {
        let file = format!("{name}.{ext}");
        std::fs::copy(from.join(&file), plugins_dir.join(&file))
            .unwrap_or_else(|e| panic!("cannot install test guest {name} ({file}): {e}"));
    }
}

/// The `dbagent` binary: `$DBAGENT_BIN`, else `target/<profile>/dbagent`
/// beside the `deps/` directory of this test executable.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("DBAGENT_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("cannot locate the test executable");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("dbagent"))
        .expect("the test executable has no grandparent directory");
    assert!(
        path.is_file(),
        "{} does not exist: build it first with cargo build -p dbagent (or set DBAGENT_BIN)",
        path.display()
    );
    path
}

/// A path as a TOML basic string.
fn toml_string(path: &Path) -> String {
    Value::String(path.display().to_string()).to_string()
}
