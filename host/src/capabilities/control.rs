//! The `control` interface: `pg_ctl` for the managed instance.
//!
//! Everything about the command comes from the operator's configuration;
//! the plugin chooses only the action. `pg_ctl` runs with `-w` and a
//! timeout, as the configured OS user, with its output captured and the
//! server's own output sent to a log file (a server holding our pipe open
//! would never let us see pg_ctl's end).

use crate::config::PgCtl;
use crate::wit::control::{Action, Host};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};

pub const NAME: &str = "control";

/// The one plugin that may have this capability, and only bundled.
pub const RESERVED_TO: &str = "administration";

/// Lines of output kept in an error message.
const TAIL_LINES: usize = 15;
/// Grace beyond pg_ctl's own `-t` before the host kills it.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Runs one `pg_ctl` at a time for the configured instance.
pub struct Control {
    /// As configured, until an upgrade switches the instance to another
    /// data directory and `pg_ctl`.
    settings: std::sync::RwLock<PgCtl>,
    running: tokio::sync::Mutex<()>,
}

impl Control {
    pub fn new(settings: PgCtl) -> Control {
        Control {
            settings: std::sync::RwLock::new(settings),
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// What `pg_ctl` runs with now.
    pub fn settings(&self) -> PgCtl {
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The instance lives in `data_directory` from now on, run by `pg_ctl`.
    pub fn switch(&self, data_directory: PathBuf, pg_ctl: PathBuf) {
        let mut settings = self
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        settings.data_directory = Some(data_directory);
        settings.program = Some(pg_ctl);
    }

    /// The `pg_ctl` that runs the instance: the configured one, else the
    /// one matching its data directory's version.
    pub fn program(&self) -> Result<PathBuf, String> {
        let s = self.settings();
        let data = s.data_directory.as_deref().ok_or(
            "administration needs [postgresql] data_directory in the agent's configuration",
        )?;
        match s.program {
            Some(program) => Ok(program),
            None => find_pg_ctl(data),
        }
    }

    /// Runs `pg_ctl ACTION`; Ok with its output, Err with why and the last lines.
    pub async fn pg_ctl(&self, action: Action) -> Result<String, String> {
        let _one_at_a_time = self.running.lock().await;
        let s = &self.settings();
        let data = s.data_directory.as_deref().ok_or(
            "administration needs [postgresql] data_directory in the agent's configuration",
        )?;
        let program = match &s.program {
            Some(program) => program.clone(),
            None => find_pg_ctl(data)?,
        };
        let log_file = s
            .log_file
            .clone()
            .unwrap_or_else(|| data.join("pg_ctl.log"));
        let verb = verb(action);

        let mut cmd = self.command_as_owner(&program)?;
        cmd.arg(verb).arg("-D").arg(data);
        if !matches!(action, Action::Reload) {
            cmd.arg("-w").arg("-t").arg(s.timeout.as_secs().to_string());
        }
        if matches!(action, Action::Stop | Action::Restart) {
            cmd.args(["-m", "fast"]);
        }
        if matches!(action, Action::Start | Action::Restart) {
            cmd.arg("-l").arg(&log_file);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());

        tracing::info!(action = verb, program = %program.display(), data = %data.display(), "running pg_ctl");
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        let output =
            match tokio::time::timeout(s.timeout + KILL_GRACE, child.wait_with_output()).await {
                Ok(Ok(output)) => output,
                Ok(Err(e)) => return Err(format!("pg_ctl {verb}: {e}")),
                Err(_) => {
                    return Err(format!(
                        "pg_ctl {verb} did not finish within {} s and was killed",
                        (s.timeout + KILL_GRACE).as_secs()
                    ));
                }
            };
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        if output.status.success() {
            tracing::info!(action = verb, "pg_ctl done");
            return Ok(text.trim().to_string());
        }
        let mut message = format!("pg_ctl {verb} failed ({}):\n{}", output.status, tail(&text));
        if matches!(action, Action::Start | Action::Restart)
            && let Ok(log) = std::fs::read(&log_file)
        {
            let log = String::from_utf8_lossy(&log);
            message.push_str(&format!(
                "\nserver log {}:\n{}",
                log_file.display(),
                tail(&log)
            ));
        }
        tracing::warn!(action = verb, "{message}");
        Err(message)
    }
}

impl Control {
    /// `program` as the instance's OS user (`pg_ctl_user`), from `/` (a
    /// directory every user can enter: PostgreSQL's programs complain about
    /// a working directory their user cannot read), stdin closed, killed
    /// if dropped.
    pub fn command_as_owner(&self, program: &Path) -> Result<tokio::process::Command, String> {
        let mut cmd = tokio::process::Command::new(program);
        if let Some(user) = &self.settings().user {
            let (uid, gid) = os_user(user)?;
            let euid = nix::unistd::geteuid().as_raw();
            if euid != uid {
                if euid != 0 {
                    return Err(format!(
                        "the agent cannot run {} as OS user '{user}': it is not running as root or as that user",
                        program.display()
                    ));
                }
                // std drops supplementary groups when it changes the uid.
                cmd.uid(uid).gid(gid);
            }
        }
        cmd.current_dir("/").stdin(Stdio::null()).kill_on_drop(true);
        Ok(cmd)
    }
}

pub struct State {
    control: Arc<Control>,
}

impl State {
    pub fn new(control: &Arc<Control>) -> State {
        State {
            control: Arc::clone(control),
        }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut State,
) -> wasmtime::Result<()> {
    crate::wit::control::add_to_linker::<T, HasSelf<State>>(linker, get)
}

impl Host for State {
    async fn pg_ctl(&mut self, action: Action) -> Result<String, String> {
        self.control.pg_ctl(action).await
    }
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Start => "start",
        Action::Stop => "stop",
        Action::Restart => "restart",
        Action::Reload => "reload",
    }
}

/// The last [`TAIL_LINES`] non-empty lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// The `pg_ctl` matching the data directory's major version (Debian keeps
/// one per version under /usr/lib/postgresql), else the one on PATH, else
/// the newest under /usr/lib/postgresql.
fn find_pg_ctl(data: &Path) -> Result<PathBuf, String> {
    if let Ok(version) = std::fs::read_to_string(data.join("PG_VERSION")) {
        let candidate = Path::new("/usr/lib/postgresql")
            .join(version.trim())
            .join("bin/pg_ctl");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("pg_ctl"))
            .find(|p| p.is_file())
    });
    let newest = || {
        std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .filter_map(|entry| {
                let version: u32 = entry.file_name().to_str()?.parse().ok()?;
                let pg_ctl = entry.path().join("bin/pg_ctl");
                pg_ctl.is_file().then_some((version, pg_ctl))
            })
            .max_by_key(|(version, _)| *version)
            .map(|(_, pg_ctl)| pg_ctl)
    };
    on_path.or_else(newest).ok_or_else(|| {
        "cannot find pg_ctl: set [postgresql] pg_ctl in the agent's configuration".to_string()
    })
}

/// (uid, gid) of an OS user.
fn os_user(name: &str) -> Result<(u32, u32), String> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => Ok((user.uid.as_raw(), user.gid.as_raw())),
        _ => Err(format!("OS user '{name}' (pg_ctl_user) does not exist")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_keep_the_last_lines() {
        let text: String = (1..=40).map(|i| format!("line {i}\n\n")).collect();
        let t = tail(&text);
        assert!(t.starts_with("line 26\n") && t.ends_with("line 40"), "{t}");
    }

    #[test]
    fn users() {
        assert_eq!(os_user("root"), Ok((0, 0)));
        assert!(os_user("no-such-user-dbagent").is_err());
        assert!(os_user("nul\0byte").is_err());
    }

    #[tokio::test]
    async fn without_a_data_directory_it_says_what_to_configure() {
        let control = Control::new(PgCtl {
            data_directory: None,
            program: None,
            user: None,
            timeout: Duration::from_secs(1),
            log_file: None,
        });
        let err = control.pg_ctl(Action::Reload).await.unwrap_err();
        assert!(err.contains("data_directory"), "{err}");
    }
}
