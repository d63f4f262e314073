//! A real Barman backing up a throwaway [`PgCluster`]: its own
//! configuration and `barman_home` in a temporary directory, streaming
//! backups (`backup_method = postgres`) and WAL streaming through a
//! replication slot (`streaming_archiver = on`, `receive-wal` kept running
//! by the harness), with the cluster's own bin directory as `path_prefix`.
//!
//! Barman runs as the `postgres` OS user when the tests run as root (it
//! refuses to run as a user other than `barman_user`, and the cluster's
//! socket and data belong to `postgres`). It connects as the `postgres`
//! superuser through the cluster's socket: the cluster's `pg_hba.conf`
//! (initdb `-A trust`) already allows local replication connections.

use crate::PgCluster;
use crate::process::{ServerProcess, chown_if_root, read_log, run, running_as_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Settings a cluster needs for Barman's streaming backups, for
/// [`PgCluster::start_with`] or [`crate::PgClusterBuilder::conf`]
/// (PostgreSQL 15 and 16 default to them already; they are spelled out so
/// that a test changing them sees why Barman breaks).
pub const BARMAN_CLUSTER_CONF: &[&str] = &[
    "wal_level = replica",
    "max_wal_senders = 10",
    "max_replication_slots = 10",
];

/// The name of the Barman server section for the cluster.
pub const BARMAN_SERVER: &str = "pg";

/// Where the recovered cluster should stop replaying WAL.
#[derive(Debug, Clone, Copy)]
pub enum RecoveryTarget<'a> {
    /// All the WAL Barman has: the newest state it knows, whichever backup
    /// it starts from (Barman's default).
    Latest,
    /// The end of the backup: exactly what the backup holds
    /// (`--target-immediate`).
    Immediate,
    /// A point in time, e.g. `2026-12-01 10:00:00+00` (`--target-time`).
    Time(&'a str),
}

/// One line of `barman -f json list-backups`.
#[derive(Debug, Clone)]
pub struct BackupInfo {
    pub id: String,
    /// `DONE`, `FAILED`, `STARTED`, `WAITING_FOR_WALS`, …
    pub status: String,
    pub size_bytes: u64,
    pub wal_size_bytes: u64,
    /// The whole entry as Barman printed it.
    pub raw: serde_json::Value,
}

pub struct Barman {
    dir: TempDir,
    /// The cluster's connection string, for [`Barman::nudging_wal`].
    conninfo: String,
    receive_wal: Option<ServerProcess>,
    last_backup: std::cell::Cell<Option<Instant>>,
}

/// The Barman `scripts/setup` installs (`$DBAGENT_TEST_OPT/barman-venv`),
/// or `$DBAGENT_TEST_BARMAN`.
pub fn barman_executable() -> PathBuf {
    if let Some(path) = std::env::var_os("DBAGENT_TEST_BARMAN") {
        return PathBuf::from(path);
    }
    crate::test_opt_dir().join("barman-venv/bin/barman")
}

impl Barman {
    /// Configures Barman for `cluster` (which must be running), creates
    /// the replication slot, starts `barman receive-wal`, and archives a
    /// first WAL file with `switch-wal --force --archive`, after which
    /// `barman check` passes. Panics with Barman's output on failure.
    pub fn for_cluster(cluster: &PgCluster) -> Barman {
        let executable = barman_executable();
        assert!(
            executable.is_file(),
            "no Barman at {}: run scripts/setup",
            executable.display()
        );
        assert!(
            cluster.is_running(),
            "Barman::for_cluster needs a running cluster"
        );
        let dir = tempfile::Builder::new()
            .prefix("dbagent-barman-")
            .tempdir()
            .expect("cannot create Barman's temporary directory");
        let mut barman = Barman {
            dir,
            conninfo: cluster.conninfo("postgres"),
            receive_wal: None,
            last_backup: std::cell::Cell::new(None),
        };
        std::fs::create_dir(barman.home()).expect("cannot create barman_home");
        let config = format!(
            "[barman]\n\
             barman_home = {home}\n\
             barman_user = {user}\n\
             log_file = {log}\n\
             log_level = INFO\n\
             \n\
             [{BARMAN_SERVER}]\n\
             description = \"dbagent test cluster\"\n\
             conninfo = {conninfo}\n\
             streaming_conninfo = {conninfo}\n\
             backup_method = postgres\n\
             streaming_archiver = on\n\
             archiver = off\n\
             slot_name = barman\n\
             path_prefix = {bin}\n\
             immediate_checkpoint = true\n\
             minimum_redundancy = 0\n",
            home = barman.home().display(),
            user = os_user(),
            log = barman.log_path().display(),
            conninfo = cluster.conninfo("postgres"),
            bin = cluster.bin_dir().display(),
        );
        std::fs::write(barman.config_path(), config).expect("cannot write barman.conf");
        chown_if_root(barman.dir.path(), "postgres")
            .unwrap_or_else(|e| panic!("cannot give Barman's directory to postgres: {e}"));

        barman.run(&["receive-wal", "--create-slot", BARMAN_SERVER]);
        barman.start_receive_wal();
        // pg_receivewal starts at the server's current WAL position: the
        // switch must come after it connected, or it waits for a file that
        // will never be streamed.
        let mut client = cluster.connect("postgres");
        crate::wait_for(
            "barman receive-wal to stream from the cluster",
            Duration::from_secs(30),
            || {
                client
                    .query_opt(
                        "SELECT 1 FROM pg_stat_replication \
                         WHERE application_name = 'barman_receive_wal' AND state = 'streaming'",
                        &[],
                    )
                    .ok()
                    .flatten()
            },
        );
        barman.switch_wal();
        barman
    }

    /// `barman receive-wal` in the background, in its own process group
    /// (with its pg_receivewal), stopped on drop.
    fn start_receive_wal(&mut self) {
        let mut cmd = self.command();
        cmd.args(["receive-wal", BARMAN_SERVER]);
        let process = ServerProcess::spawn(cmd, &self.dir.path().join("receive-wal.log"))
            .unwrap_or_else(|e| panic!("cannot start barman receive-wal: {e}"));
        self.receive_wal = Some(process);
    }

    /// The configuration file (`barman -c`).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("barman.conf")
    }

    /// `barman_home`: backups under `pg/base`, WAL under `pg/wals`.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Barman's own log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("barman.log")
    }

    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }

    /// The name of the server in the configuration ([`BARMAN_SERVER`]).
    pub fn server(&self) -> &'static str {
        BARMAN_SERVER
    }

    /// The OS user Barman runs as: `postgres` when the tests run as root.
    pub fn os_user(&self) -> String {
        os_user()
    }

    /// `barman -c CONFIG`, as the Barman user; add arguments and run it.
    pub fn command(&self) -> Command {
        let mut cmd = if running_as_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(barman_executable());
            cmd
        } else {
            Command::new(barman_executable())
        };
        cmd.arg("-c")
            .arg(self.config_path())
            .current_dir(self.dir.path());
        cmd
    }

    /// Runs `barman ARGS`, returning its standard output; panics with its
    /// output and Barman's log when it fails.
    pub fn run(&self, args: &[&str]) -> String {
        self.try_run(args).unwrap_or_else(|e| {
            panic!(
                "barman {args:?} failed: {e}\nthe end of Barman's log:\n{}",
                tail(&self.log(), 40)
            )
        })
    }

    /// [`Barman::run`] returning the failure instead of panicking.
    pub fn try_run(&self, args: &[&str]) -> Result<String, String> {
        run(self.command().args(args)).map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `barman cron`: archives what receive-wal streamed, and would start
    /// receive-wal were it not running.
    pub fn cron(&self) -> String {
        self.run(&["cron"])
    }

    /// `barman switch-wal --force --archive`: closes the current WAL file
    /// and waits (up to 30 s) until Barman has archived it.
    pub fn switch_wal(&self) -> String {
        self.nudging_wal(|| self.run(&["switch-wal", "--force", "--archive", BARMAN_SERVER]))
    }

    /// Runs `f` while a thread commits a tiny transaction on the cluster
    /// every 200 ms. Barman archives a streamed WAL file only once
    /// pg_receivewal has opened the next one, which needs new WAL after the
    /// switch: on an idle cluster that comes with the next checkpoint or
    /// standby snapshot, 10 to 15 s later, which `switch-wal --archive` and
    /// `backup --wait` would otherwise spend waiting.
    pub fn nudging_wal<T>(&self, f: impl FnOnce() -> T) -> T {
        let done = std::sync::atomic::AtomicBool::new(false);
        let conninfo = self.conninfo.as_str();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let Ok(mut client) = postgres::Client::connect(conninfo, postgres::NoTls) else {
                    return;
                };
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = client.batch_execute("SELECT txid_current()");
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
            let result = f();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            result
        })
    }

    /// `barman -f json check`: each check's name → `{"status", "hint"}`.
    /// It does not panic when a check fails: see [`Barman::failed_checks`].
    pub fn check(&self) -> serde_json::Value {
        // Exits 1 when a check fails, still printing them all.
        let output = self
            .command()
            .args(["-f", "json", "check", BARMAN_SERVER])
            .output()
            .expect("cannot run barman check");
        let text = String::from_utf8_lossy(&output.stdout);
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "barman check printed no JSON ({e}): {text}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        value[BARMAN_SERVER].take()
    }

    /// The checks of `barman check` that are not OK, with their hints.
    pub fn failed_checks(&self) -> Vec<String> {
        let checks = self.check();
        let map = checks
            .as_object()
            .unwrap_or_else(|| panic!("barman check printed no checks: {checks}"));
        map.iter()
            .filter(|(_, c)| c["status"] != "OK")
            .map(|(name, c)| format!("{name}: {} ({})", c["status"], c["hint"]))
            .collect()
    }

    /// `barman backup --wait`: a full backup, waiting until the WAL it
    /// needs is archived. Returns the new backup's id.
    pub fn backup(&self) -> String {
        // Backup ids are start times to the second: never two in one.
        if let Some(last) = self.last_backup.get() {
            let since = last.elapsed();
            if since < Duration::from_millis(1100) {
                std::thread::sleep(Duration::from_millis(1100) - since);
            }
        }
        self.last_backup.set(Some(Instant::now()));
        let output = self.nudging_wal(|| self.run(&["backup", "--wait", BARMAN_SERVER]));
        // "Starting backup using postgres method for server pg in …/base/ID"
        let id = output
            .lines()
            .find(|l| l.starts_with("Starting backup using"))
            .and_then(|l| l.rsplit('/').next())
            .unwrap_or_else(|| panic!("barman backup named no backup:\n{output}"))
            .trim()
            .to_string();
        let listed = self.list_backups();
        let new = listed
            .iter()
            .find(|b| b.id == id)
            .unwrap_or_else(|| panic!("backup {id} is not listed:\n{output}"));
        assert_eq!(
            new.status, "DONE",
            "backup {id} is not DONE:\n{output}\n{:#}",
            new.raw
        );
        id
    }

    /// `barman -f json list-backups`, newest first.
    pub fn list_backups(&self) -> Vec<BackupInfo> {
        let text = self.run(&["-f", "json", "list-backups", BARMAN_SERVER]);
        let value: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("barman list-backups printed no JSON ({e}): {text}"));
        let list = value[BARMAN_SERVER]
            .as_array()
            .unwrap_or_else(|| panic!("barman list-backups: no list for {BARMAN_SERVER}: {value}"));
        list.iter()
            .map(|b| BackupInfo {
                id: b["backup_id"].as_str().unwrap_or_default().to_string(),
                status: b["status"].as_str().unwrap_or_default().to_string(),
                size_bytes: b["size_bytes"].as_u64().unwrap_or(0),
                wal_size_bytes: b["wal_size_bytes"].as_u64().unwrap_or(0),
                raw: b.clone(),
            })
            .collect()
    }

    /// `barman -f json show-backup`: the backup's details as Barman prints
    /// them under the server's name (`status`, `postgresql_version`,
    /// `base_backup_information.{begin_time, end_time, timeline,
    /// backup_size_bytes, wal_size_bytes, …}`, `wal_information`).
    pub fn show_backup(&self, backup_id: &str) -> serde_json::Value {
        let text = self.run(&["-f", "json", "show-backup", BARMAN_SERVER, backup_id]);
        let mut value: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("barman show-backup printed no JSON ({e}): {text}"));
        value[BARMAN_SERVER].take()
    }

    /// `barman recover` of `backup_id` into `dest` (which the Barman user
    /// must be able to create: see [`crate::pg_owned_tempdir`]), to
    /// `target_time` if given, else to the latest WAL Barman has. With a
    /// target the recovered server promotes itself once it reaches it.
    ///
    /// Start PostgreSQL on `dest` with
    /// `PgCluster::builder().bin_dir(…).existing_data(dest).start()`.
    pub fn recover(&self, backup_id: &str, dest: &Path, target_time: Option<&str>) -> String {
        let target = match target_time {
            Some(time) => RecoveryTarget::Time(time),
            None => RecoveryTarget::Latest,
        };
        self.recover_to(backup_id, dest, target)
    }

    /// [`Barman::recover`] with any [`RecoveryTarget`].
    pub fn recover_to(&self, backup_id: &str, dest: &Path, target: RecoveryTarget) -> String {
        let dest = dest.to_str().expect("the recovery directory is UTF-8");
        let mut args = vec!["recover"];
        match target {
            RecoveryTarget::Latest => {}
            RecoveryTarget::Immediate => args.push("--target-immediate"),
            RecoveryTarget::Time(time) => args.extend(["--target-time", time]),
        }
        if !matches!(target, RecoveryTarget::Latest) {
            args.extend(["--target-action", "promote"]);
        }
        args.extend([BARMAN_SERVER, backup_id, dest]);
        self.run(&args)
    }
}

impl Drop for Barman {
    fn drop(&mut self) {
        // Whichever receive-wal holds the lock (ours, or one `cron`
        // started), then ours for sure. Never panic here.
        let _ = self
            .command()
            .args(["receive-wal", "--stop", BARMAN_SERVER])
            .output();
        if let Some(mut process) = self.receive_wal.take() {
            process.signal(libc::SIGTERM);
            if !process.wait_exit(Duration::from_secs(5)) {
                process.kill();
            }
        }
    }
}

/// `barman_user`: `postgres` when root, else whoever runs the tests.
fn os_user() -> String {
    if running_as_root() {
        return "postgres".to_string();
    }
    let out = Command::new("id")
        .arg("-un")
        .output()
        .expect("cannot run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
