//! A throwaway PostgreSQL cluster in a temporary directory, reachable only
//! through a Unix socket in that directory. It never touches the machine's
//! own PostgreSQL services.

use crate::free_port;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

pub struct PgCluster {
    dir: TempDir,
    bin_dir: PathBuf,
    port: u16,
    running: bool,
}

/// How many times start-up is tried with a fresh port before giving up.
const START_ATTEMPTS: usize = 3;

impl PgCluster {
    /// A cluster with the default settings of [`PgCluster::start_with`].
    pub fn start() -> PgCluster {
        Self::start_with(&[])
    }

    /// Creates and starts a cluster; `conf_lines` are appended to its
    /// `postgresql.conf`. Panics with PostgreSQL's output on failure.
    pub fn start_with(conf_lines: &[&str]) -> PgCluster {
        let mut errors = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(conf_lines) {
                Ok(cluster) => return cluster,
                Err(e) => errors.push(e),
            }
        }
        panic!(
            "cannot start a PostgreSQL cluster after {START_ATTEMPTS} attempts:\n{}",
            errors.join("\n---\n")
        );
    }

    fn try_start(conf_lines: &[&str]) -> Result<PgCluster, String> {
        let bin_dir = find_bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("dbagent-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        if running_as_root() {
            // initdb refuses to run as root; the cluster belongs to `postgres`.
            run(Command::new("chown").arg("postgres:").arg(dir.path()))?;
        }
        let mut cluster = PgCluster {
            dir,
            bin_dir,
            port: free_port(),
            running: false,
        };
        let data = cluster.data_dir();
        cluster.pg(
            "initdb",
            &[
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--no-sync".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
            ],
        )?;

        let mut conf = format!(
            "\n# dbagent tests\nport = {}\nlisten_addresses = ''\nunix_socket_directories = '{}'\n\
             shared_preload_libraries = 'pg_stat_statements'\nfsync = off\n",
            cluster.port,
            cluster.socket_dir().display()
        );
        for line in conf_lines {
            conf.push_str(line);
            conf.push('\n');
        }
        let conf_path = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path)
            .map_err(|e| format!("{}: {e}", conf_path.display()))?;
        text.push_str(&conf);
        std::fs::write(&conf_path, text).map_err(|e| format!("{}: {e}", conf_path.display()))?;

        cluster.pg_ctl_start()?;
        Ok(cluster)
    }

    /// `pg_ctl start`, waiting until the server accepts connections; the
    /// error carries the server's log.
    fn pg_ctl_start(&mut self) -> Result<(), String> {
        let (data, log) = (self.data_dir(), self.log_path());
        let started = self.pg(
            "pg_ctl",
            &[
                "-w".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "start".as_ref(),
            ],
        );
        if let Err(e) = started {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("{e}\nserver log:\n{log}"));
        }
        self.running = true;
        Ok(())
    }

    /// The directory holding the server's Unix socket.
    /// Where this cluster's server programs are (initdb, pg_ctl, pgbench, …).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The `pg_ctl` of this cluster's PostgreSQL version.
    pub fn pg_ctl_path(&self) -> PathBuf {
        self.bin_dir.join("pg_ctl")
    }

    /// The OS user owning the cluster: `postgres` when the tests run as
    /// root, else none (the tests' own user).
    pub fn os_user(&self) -> Option<&'static str> {
        running_as_root().then_some("postgres")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// A connection as `postgres` to `dbname`, through the socket.
    pub fn connect(&self, dbname: &str) -> postgres::Client {
        postgres::Config::new()
            .host_path(self.socket_dir())
            .port(self.port)
            .user("postgres")
            .dbname(dbname)
            .application_name("dbagent-tests")
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test cluster: {e}"))
    }

    /// Stops the server (fast shutdown), panicking if it does not stop.
    /// Starts a stopped cluster again, on the same port and socket.
    pub fn restart(&mut self) {
        if self.running {
            return;
        }
        self.pg_ctl_start().unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn stop(&mut self) {
        if self.running {
            let data = self.data_dir();
            self.pg(
                "pg_ctl",
                &[
                    "-w".as_ref(),
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-m".as_ref(),
                    "fast".as_ref(),
                    "stop".as_ref(),
                ],
            )
            .unwrap_or_else(|e| panic!("{e}"));
            self.running = false;
        }
    }

    /// Runs a PostgreSQL program, as the `postgres` OS user when we are root.
    fn pg(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<Output, String> {
        let path = self.bin_dir.join(program);
        let mut cmd = if running_as_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(&path);
            cmd
        } else {
            Command::new(&path)
        };
        cmd.args(args).current_dir(self.dir.path());
        // Never let the environment point the tools at another cluster.
        for var in ["PGHOST", "PGPORT", "PGDATA", "PGUSER", "PGDATABASE"] {
            cmd.env_remove(var);
        }
        run(&mut cmd)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            // Never panic here: the test may already be unwinding.
            let _ = self.pg(
                "pg_ctl",
                &[
                    "-w".as_ref(),
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "stop".as_ref(),
                ],
            );
            self.running = false;
        }
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn run(cmd: &mut Command) -> Result<Output, String> {
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The directory of `initdb` and `pg_ctl`: the one on PATH, else the
/// newest `/usr/lib/postgresql/VERSION/bin`.
fn find_bin_dir() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Ok(dir);
            }
        }
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql").map_err(|e| {
        format!("no initdb on PATH and cannot read /usr/lib/postgresql ({e}): install PostgreSQL")
    })?;
    versions
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb on PATH nor in /usr/lib/postgresql/*/bin".to_string())
}
