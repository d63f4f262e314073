//! What every throwaway server shares: a child process in its own process
//! group writing to a log file, start-up that waits for readiness and
//! retries on a port race, and small helpers for running programs.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How many times a server's start-up is tried with fresh ports when the
/// port it was given was taken in between.
pub(crate) const START_ATTEMPTS: usize = 3;

/// How long a server may take to accept connections, or to exit once told.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A server process the harness started and owns. Its stdout and stderr go
/// to `log`; it leads its own process group so that everything it starts
/// can be signalled at once. Dropping it kills the group.
pub(crate) struct ServerProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `cmd` with stdin closed and its output appended to `log`.
    pub(crate) fn spawn(mut cmd: Command, log: &Path) -> Result<ServerProcess, String> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open the log {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot duplicate the log's handle: {e}"))?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        Ok(ServerProcess {
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if the process has ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Calls `ready` every 100 ms until it is true, failing with the log as
    /// soon as the process exits or after [`READY_TIMEOUT`].
    pub(crate) fn wait_ready(
        &mut self,
        what: &str,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return Err(format!(
                    "{what} exited during start-up ({status}); its log:\n{}",
                    read_log(&self.log)
                ));
            }
            if ready() {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(format!(
                    "{what} did not accept connections within {READY_TIMEOUT:?}; its log:\n{}",
                    read_log(&self.log)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` to the process group.
    pub(crate) fn signal(&self, signal: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill has no memory preconditions; a negative pid names
            // the process group this child leads.
            unsafe {
                libc::kill(-(pid as libc::pid_t), signal);
            }
        }
    }

    /// Waits up to `timeout` for the process to exit; true if it did.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.exited().is_some() || self.child.is_none() {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Asks the process to stop with SIGTERM (a clean shutdown for every
    /// server here) and waits for it; on timeout it is killed and the error
    /// carries the log.
    pub(crate) fn terminate(&mut self, what: &str) -> Result<(), String> {
        self.signal(libc::SIGTERM);
        if self.wait_exit(STOP_TIMEOUT) {
            return Ok(());
        }
        self.kill();
        Err(format!(
            "{what} did not stop within {STOP_TIMEOUT:?} of SIGTERM and was killed; its log:\n{}",
            read_log(&self.log)
        ))
    }

    /// SIGKILL to the whole group, then reaps the child.
    pub(crate) fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Tries `attempt` up to [`START_ATTEMPTS`] times while its error says an
/// address was in use (the free port was taken before the server bound
/// it); any other error panics at once.
pub(crate) fn start_with_retries<T>(
    what: &str,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> T {
    let mut errors = Vec::new();
    for _ in 0..START_ATTEMPTS {
        match attempt() {
            Ok(value) => return value,
            Err(e) if e.to_lowercase().contains("already in use") => errors.push(e),
            Err(e) => panic!("cannot start {what}: {e}"),
        }
    }
    panic!(
        "cannot start {what} after {START_ATTEMPTS} attempts, its port taken each time:\n{}",
        errors.join("\n---\n")
    );
}

/// The log's text, or a note saying why there is none.
pub(crate) fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` now.
pub fn port_is_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

pub(crate) fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Gives `path` to the OS user `user` (recursively) when running as root,
/// so that a server dropping its privileges to that user can write there.
pub(crate) fn chown_if_root(path: &Path, user: &str) -> Result<(), String> {
    if running_as_root() {
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{user}:"))
            .arg(path))?;
    }
    Ok(())
}

/// Runs `cmd` to completion; an error carries its status and output.
pub(crate) fn run(cmd: &mut Command) -> Result<Output, String> {
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

/// A temporary directory named `dbagent-PREFIX-…`, owned by `user` when
/// running as root.
pub(crate) fn server_tempdir(
    prefix: &str,
    user: Option<&str>,
) -> Result<tempfile::TempDir, String> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("dbagent-{prefix}-"))
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    if let Some(user) = user {
        chown_if_root(dir.path(), user)?;
    }
    Ok(dir)
}
