//! Major upgrade of the managed instance with `pg_upgrade`, to the next
//! major version among `[postgresql] upgrade_bin_dirs`.
//!
//! While the old server runs: `initdb` a new data directory beside the old
//! one (`<data>-<major>`) with the old cluster's superuser, encoding,
//! locale and checksums, copy its configuration files in, and `pg_upgrade
//! --check`. Then stop, `pg_upgrade` (copy mode: the old directory stays
//! as it was until the end), switch the agent to the new directory and
//! binaries (kept in the state store), start, and make the old cluster
//! unstartable (`global/pg_control` renamed `pg_control.old`, as
//! `pg_upgrade --link` does). Statistics are rebuilt afterwards
//! (`vacuumdb --all --analyze-in-stages`). Any failure before the new
//! server runs puts the old one back and starts it.
//!
//! What the switch has reached is written to the state store before each
//! step, so an agent killed midway finishes (switched) or rolls back (not
//! yet) at its next start.

use super::{DbOps, Refusal, is_the_instance};
use crate::capabilities::operations::now;
use crate::config::databases::ManagedDatabase;
use crate::wit::control::Action;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

/// What an operation of this kind is called.
pub const KIND: &str = "upgrade";
/// Where the state store keeps the upgrade under way and the switch.
const NAMESPACE: &str = "@dbops";
const UNDER_WAY: &str = "upgrade";
const INSTANCE: &str = "instance";
/// Bound of `initdb`, `pg_upgrade --check` and `vacuumdb`.
const STEP_TIMEOUT: Duration = Duration::from_secs(3600);

/// The upgrade the agent has planned: what it tells the client.
pub struct Plan {
    pub operation_id: String,
    pub version: String,
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    pub created_at: String,
}

/// The instance's data directory and `pg_ctl` after an upgrade.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Switched {
    pub data_directory: PathBuf,
    pub pg_ctl: PathBuf,
}

/// An upgrade under way, as the state store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UnderWay {
    operation: String,
    old_data: PathBuf,
    old_pg_ctl: PathBuf,
    new_data: PathBuf,
    new_bin: PathBuf,
    /// The agent runs the new cluster from now on.
    switched: bool,
}

/// What the old cluster is made of, read while it runs.
struct OldCluster {
    superuser: String,
    encoding: String,
    collate: String,
    ctype: String,
    checksums: bool,
    port: u16,
    /// The directory of its Unix socket.
    socket_dir: String,
}

/// `postgres --version` of a bin directory: "16.15" → (16, 15, 0).
async fn version_of(bin: &Path) -> Result<(String, u32, u32, u32), String> {
    let output = tokio::process::Command::new(bin.join("postgres"))
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {}/postgres: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "postgres (PostgreSQL) 16.15" or "postgres (PostgreSQL) 18beta1 (Debian …)".
    let version = text
        .split_whitespace()
        .nth(2)
        .ok_or_else(|| format!("{}/postgres --version said {text:?}", bin.display()))?
        .to_string();
    let mut numbers = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let major = numbers.next().unwrap_or(0);
    let minor = numbers.next().unwrap_or(0);
    let patch = numbers.next().unwrap_or(0);
    Ok((version, major, minor, patch))
}

impl DbOps {
    /// At start-up: the switch an upgrade made, and an upgrade a stopped
    /// agent left under way, finished or rolled back.
    pub async fn resume_after_restart(&self) {
        if let Some(switched) = self.kv::<Switched>(INSTANCE).await {
            tracing::info!(data = %switched.data_directory.display(), "the instance was upgraded: running it from its new data directory");
            self.control
                .switch(switched.data_directory, switched.pg_ctl);
        }
        let Some(under_way) = self.kv::<UnderWay>(UNDER_WAY).await else {
            return;
        };
        let outcome = if under_way.switched {
            tracing::warn!(operation = %under_way.operation, "finishing an upgrade the last stop interrupted");
            let _ = self.control.pg_ctl(Action::Start).await;
            disable_old(&under_way.old_data);
            ("finished", None)
        } else {
            tracing::warn!(operation = %under_way.operation, "rolling back an upgrade the last stop interrupted");
            let back = self.roll_back(&under_way).await;
            (
                "error",
                Some(format!(
                    "interrupted: the agent stopped during the upgrade, which was rolled back; {back}"
                )),
            )
        };
        self.set_status(&under_way.operation, outcome.0, outcome.1.as_deref())
            .await;
        self.kv_delete(UNDER_WAY).await;
    }

    async fn kv<T: for<'de> Deserialize<'de>>(&self, key: &'static str) -> Option<T> {
        let store = self.store.clone();
        let bytes = tokio::task::spawn_blocking(move || store.kv_get(NAMESPACE, key))
            .await
            .ok()?
            .ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    async fn kv_put<T: Serialize>(&self, key: &'static str, value: &T) -> Result<(), String> {
        let bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.kv_put(NAMESPACE, key, &bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("state store: {e:#}"))
    }

    async fn kv_delete(&self, key: &'static str) {
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.kv_delete(NAMESPACE, key)).await;
    }

    /// Checks an upgrade of `db` and starts it.
    pub async fn start_upgrade(
        self: &Arc<Self>,
        db: &ManagedDatabase,
        database_id: &str,
    ) -> Result<Plan, Refusal> {
        if !is_the_instance(db) {
            return Err(Refusal::Unprocessable(
                "database",
                "upgrades are available for the managed PostgreSQL instance only (managed = true)"
                    .into(),
            ));
        }
        let current = self.server_major().await.map_err(|e| {
            Refusal::Unprocessable("database", format!("cannot read the server's version: {e}"))
        })?;
        let Some((&major, bin)) = self
            .settings
            .upgrade_bin_dirs
            .iter()
            .find(|(major, _)| **major > current)
        else {
            return Err(Refusal::Unprocessable(
                "database",
                format!(
                    "no PostgreSQL version newer than {current} is installed for the agent: add its bin directory to [postgresql] upgrade_bin_dirs"
                ),
            ));
        };
        let bin = bin.clone();
        let (version, found_major, minor, patch) = version_of(&bin)
            .await
            .map_err(|e| Refusal::Unprocessable("database", e))?;
        if found_major != major {
            return Err(Refusal::Unprocessable(
                "database",
                format!(
                    "{} holds PostgreSQL {version}, not {major} as [postgresql] upgrade_bin_dirs says",
                    bin.display()
                ),
            ));
        }
        let (data, old_pg_ctl) = self.instance_paths()?;
        if !data.join("postgresql.conf").is_file() {
            return Err(Refusal::Unprocessable(
                "database",
                format!(
                    "{} holds no postgresql.conf: upgrades need the configuration files in the data directory",
                    data.display()
                ),
            ));
        }
        let new_data = PathBuf::from(format!("{}-{major}", data.display()));
        if new_data.exists() {
            return Err(Refusal::Unprocessable(
                "database",
                format!("{} exists already: remove it first", new_data.display()),
            ));
        }
        let Ok(guard) = Arc::clone(&self.instance).try_lock_owned() else {
            return Err(Refusal::Unprocessable(
                "database",
                "another restore or upgrade of this server is running".into(),
            ));
        };
        let created_at = now();
        let operation_id = self.create_operation(database_id, KIND).await?;
        let under_way = UnderWay {
            operation: operation_id.clone(),
            old_data: data,
            old_pg_ctl,
            new_data,
            new_bin: bin,
            switched: false,
        };
        let ops = Arc::clone(self);
        let version_text = version.clone();
        tokio::spawn(async move {
            let _one_at_a_time = guard;
            let op = under_way.operation.clone();
            ops.set_status(&op, "running", None).await;
            tracing::info!(operation = %op, to = %version_text, "upgrade");
            match ops.upgrade(under_way).await {
                Ok(()) => {
                    ops.set_status(&op, "finished", None).await;
                    ops.notify(&format!("PostgreSQL upgraded to {version_text}"))
                        .await;
                }
                Err(why) => {
                    tracing::error!(operation = %op, "upgrade failed: {why}");
                    ops.set_status(&op, "error", Some(&why)).await;
                    ops.notify(&format!(
                        "PostgreSQL upgrade to {version_text} failed: {why}"
                    ))
                    .await;
                }
            }
            ops.kv_delete(UNDER_WAY).await;
        });
        Ok(Plan {
            operation_id,
            version,
            major,
            minor,
            patch,
            created_at,
        })
    }

    async fn server_major(&self) -> Result<u32, String> {
        let conn = self
            .pool
            .get(None, std::time::Instant::now() + Duration::from_secs(10))
            .await
            .map_err(|e| e.message)?;
        let row = conn
            .client()
            .query_one("SELECT current_setting('server_version_num')::int4", &[])
            .await
            .map_err(|e| e.to_string())?;
        Ok(u32::try_from(row.get::<_, i32>(0) / 10_000).unwrap_or(0))
    }

    async fn old_cluster(&self) -> Result<OldCluster, String> {
        let conn = self
            .pool
            .get(None, std::time::Instant::now() + Duration::from_secs(10))
            .await
            .map_err(|e| e.message)?;
        let row = conn
            .client()
            .query_one(
                "SELECT (SELECT rolname::text FROM pg_roles WHERE oid = 10),
                        current_setting('server_encoding'),
                        d.datcollate::text, d.datctype::text,
                        current_setting('data_checksums') = 'on',
                        current_setting('port')::int4,
                        split_part(current_setting('unix_socket_directories'), ',', 1)
                   FROM pg_database d WHERE d.datname = 'template1'",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(OldCluster {
            superuser: row.get(0),
            encoding: row.get(1),
            collate: row.get(2),
            ctype: row.get(3),
            checksums: row.get(4),
            port: u16::try_from(row.get::<_, i32>(5)).unwrap_or(5432),
            socket_dir: row.get::<_, String>(6).trim().to_string(),
        })
    }

    /// Runs `program ARGS` as the instance's OS user from `cwd`; Ok with
    /// its output, Err with the end of it.
    async fn run_as_owner(
        &self,
        program: &Path,
        args: &[String],
        cwd: &Path,
    ) -> Result<String, String> {
        let mut cmd = self.control.command_as_owner(program)?;
        cmd.args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let name = program
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let output = tokio::time::timeout(STEP_TIMEOUT, cmd.output())
            .await
            .map_err(|_| format!("{name} did not finish within {} s", STEP_TIMEOUT.as_secs()))?
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        if output.status.success() {
            Ok(text)
        } else {
            Err(format!(
                "{name} failed ({}): {}",
                output.status,
                crate::capabilities::barman::command::tail(&text, 15)
            ))
        }
    }

    async fn upgrade(&self, mut under_way: UnderWay) -> Result<(), String> {
        let old = self
            .old_cluster()
            .await
            .map_err(|e| format!("reading the old cluster: {e}"))?;
        let old_bin = under_way
            .old_pg_ctl
            .parent()
            .map(Path::to_path_buf)
            .ok_or("the old pg_ctl has no directory")?;
        let new_bin = under_way.new_bin.clone();
        // pg_upgrade writes its logs in its working directory: one the
        // instance's OS user owns.
        let parent = under_way
            .old_data
            .parent()
            .map(Path::to_path_buf)
            .ok_or("the data directory has no parent")?;
        let work = parent.join(format!("pg_upgrade-{}", under_way.operation));
        std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
        if let Some(user) = self.control.settings().user {
            chown_to(&work, &user)?;
        }
        self.kv_put(UNDER_WAY, &under_way).await?;
        let prepared = self.prepare(&under_way, &old, &old_bin, &work).await;
        if let Err(why) = prepared {
            let _ = std::fs::remove_dir_all(&under_way.new_data);
            let _ = std::fs::remove_dir_all(&work);
            return Err(why);
        }

        self.control
            .pg_ctl(Action::Stop)
            .await
            .map_err(|e| format!("stop: {e}"))?;
        let upgraded = self
            .run_as_owner(
                &new_bin.join("pg_upgrade"),
                &pg_upgrade_args(&under_way, &old, &old_bin, false),
                &work,
            )
            .await;
        if let Err(why) = upgraded {
            let back = self.roll_back(&under_way).await;
            let _ = std::fs::remove_dir_all(&work);
            return Err(format!("pg_upgrade: {why}; {back}"));
        }

        let switched = Switched {
            data_directory: under_way.new_data.clone(),
            pg_ctl: new_bin.join("pg_ctl"),
        };
        under_way.switched = true;
        self.kv_put(INSTANCE, &switched).await?;
        self.kv_put(UNDER_WAY, &under_way).await?;
        self.control
            .switch(switched.data_directory.clone(), switched.pg_ctl.clone());
        let started = match self.control.pg_ctl(Action::Start).await {
            Ok(_) => self.wait_until_primary(Duration::from_secs(120)).await,
            Err(e) => Err(e),
        };
        if let Err(why) = started {
            under_way.switched = false;
            self.kv_delete(INSTANCE).await;
            let back = self.roll_back(&under_way).await;
            let _ = std::fs::remove_dir_all(&work);
            return Err(format!("starting the new server: {why}; {back}"));
        }
        disable_old(&under_way.old_data);
        let analyzed = self
            .run_as_owner(
                &new_bin.join("vacuumdb"),
                &[
                    "--all".into(),
                    "--analyze-in-stages".into(),
                    "-h".into(),
                    old.socket_dir.clone(),
                    "-p".into(),
                    old.port.to_string(),
                    "-U".into(),
                    old.superuser.clone(),
                ],
                &work,
            )
            .await;
        if let Err(why) = analyzed {
            // The upgrade stands; statistics come with autovacuum.
            tracing::warn!("vacuumdb after the upgrade: {why}");
            self.notify(&format!("After the upgrade, vacuumdb failed: {why}"))
                .await;
        }
        let _ = std::fs::remove_dir_all(&work);
        Ok(())
    }

    /// initdb, the configuration copied in, and `pg_upgrade --check` with
    /// the old server running.
    async fn prepare(
        &self,
        under_way: &UnderWay,
        old: &OldCluster,
        old_bin: &Path,
        work: &Path,
    ) -> Result<(), String> {
        let new_bin = &under_way.new_bin;
        let (_, new_major, _, _) = version_of(new_bin).await?;
        let mut initdb = vec![
            "-D".to_string(),
            under_way.new_data.display().to_string(),
            "-U".into(),
            old.superuser.clone(),
            "-E".into(),
            old.encoding.clone(),
            format!("--lc-collate={}", old.collate),
            format!("--lc-ctype={}", old.ctype),
        ];
        if old.checksums {
            initdb.push("--data-checksums".into());
        } else if new_major >= 18 {
            // 18 enables them by default; pg_upgrade needs both alike.
            initdb.push("--no-data-checksums".into());
        }
        self.run_as_owner(&new_bin.join("initdb"), &initdb, work)
            .await
            .map_err(|e| format!("initdb: {e}"))?;
        for file in [
            "postgresql.conf",
            "postgresql.auto.conf",
            "pg_hba.conf",
            "pg_ident.conf",
        ] {
            let from = under_way.old_data.join(file);
            if from.is_file() {
                std::fs::copy(&from, under_way.new_data.join(file))
                    .map_err(|e| format!("copying {file}: {e}"))?;
            }
        }
        if let Some(user) = self.control.settings().user {
            chown_to_recursive(&under_way.new_data, &user)?;
        }
        self.run_as_owner(
            &new_bin.join("pg_upgrade"),
            &pg_upgrade_args(under_way, old, old_bin, true),
            work,
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("pg_upgrade --check: {e}"))
    }

    /// Back to the old cluster: the new directory removed, the old one's
    /// `pg_control` in place, the agent on the old binaries, the server
    /// started; what to tell about it.
    async fn roll_back(&self, under_way: &UnderWay) -> String {
        // A pg_upgrade an agent killed midway left running goes first.
        kill_processes_naming(&under_way.new_data);
        // Whatever a killed pg_upgrade left running on the new directory.
        let _ = self
            .run_as_owner(
                &under_way.new_bin.join("pg_ctl"),
                &[
                    "stop".into(),
                    "-D".into(),
                    under_way.new_data.display().to_string(),
                    "-m".into(),
                    "immediate".into(),
                ],
                Path::new("/"),
            )
            .await;
        let _ = std::fs::remove_dir_all(&under_way.new_data);
        let control = under_way.old_data.join("global/pg_control");
        let renamed = under_way.old_data.join("global/pg_control.old");
        if !control.exists() && renamed.exists() {
            let _ = std::fs::rename(&renamed, &control);
        }
        self.control
            .switch(under_way.old_data.clone(), under_way.old_pg_ctl.clone());
        match self.control.pg_ctl(Action::Start).await {
            Ok(_) => "the old server runs again".into(),
            Err(e) => format!("the old server could not be started again: {e}"),
        }
    }
}

fn pg_upgrade_args(
    under_way: &UnderWay,
    old: &OldCluster,
    old_bin: &Path,
    check: bool,
) -> Vec<String> {
    let mut args = vec![
        "-b".to_string(),
        old_bin.display().to_string(),
        "-B".into(),
        under_way.new_bin.display().to_string(),
        "-d".into(),
        under_way.old_data.display().to_string(),
        "-D".into(),
        under_way.new_data.display().to_string(),
        "-U".into(),
        old.superuser.clone(),
        // --check reaches the running old server on its port; otherwise
        // both servers pg_upgrade starts get ports no client uses.
        "-p".into(),
        if check { old.port } else { free_port() }.to_string(),
        "-P".into(),
        free_port().to_string(),
    ];
    if !old.socket_dir.is_empty() {
        args.extend(["-s".into(), old.socket_dir.clone()]);
    }
    if check {
        args.push("--check".into());
    }
    args
}

/// SIGKILL to every process whose command line names `path` (a
/// pg_upgrade working on it, a server it started there).
fn kill_processes_naming(path: &Path) {
    let needle = path.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && pid != std::process::id() as i32 {
            tracing::warn!(pid, "stopping {cmdline:?}, left by an interrupted upgrade");
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// A port nothing listens on now (pg_upgrade's temporary servers listen
/// on their socket only, named after the port).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(50432, |a| a.port())
}

/// Renames the old cluster's `global/pg_control` so that no `pg_ctl` can
/// start it any more (what `pg_upgrade --link` does to it).
fn disable_old(old_data: &Path) {
    let control = old_data.join("global/pg_control");
    if control.exists()
        && let Err(e) = std::fs::rename(&control, old_data.join("global/pg_control.old"))
    {
        tracing::error!("cannot disable the old cluster {}: {e}", old_data.display());
    }
}

fn chown_to(path: &Path, user: &str) -> Result<(), String> {
    let owner = nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .ok_or_else(|| format!("OS user '{user}' does not exist"))?;
    nix::unistd::chown(path, Some(owner.uid), Some(owner.gid))
        .map_err(|e| format!("cannot give {} to {user}: {e}", path.display()))
}

fn chown_to_recursive(path: &Path, user: &str) -> Result<(), String> {
    chown_to(path, user)?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)
            .map_err(|e| e.to_string())?
            .flatten()
        {
            chown_to_recursive(&entry.path(), user)?;
        }
    }
    Ok(())
}
