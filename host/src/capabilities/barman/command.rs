//! Running the configured Barman: the command line from the configuration
//! and checked names only, as its OS user, in a process group of its own,
//! bounded in time and in output.

use crate::config::backups::Backups;
use crate::wit::barman::{BarmanError, ErrorKind};
use std::process::Stdio;
use tokio::io::AsyncReadExt as _;

/// Most bytes of Barman's JSON read from one command.
const MAX_OUTPUT_BYTES: u64 = 16 * 1024 * 1024;
/// Most bytes of its standard error kept for a message.
const MAX_STDERR_BYTES: u64 = 64 * 1024;

pub fn error(kind: ErrorKind, message: impl Into<String>) -> BarmanError {
    BarmanError {
        kind,
        message: message.into(),
    }
}

/// The OS user Barman runs as, resolved once per command.
struct RunAs {
    uid: u32,
    gid: u32,
    home: std::path::PathBuf,
    name: String,
}

fn run_as(name: &str) -> Result<Option<RunAs>, BarmanError> {
    let user = match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => user,
        _ => {
            return Err(error(
                ErrorKind::Unavailable,
                format!("OS user '{name}' ([backups] run_as) does not exist"),
            ));
        }
    };
    let euid = nix::unistd::geteuid().as_raw();
    if euid == user.uid.as_raw() {
        return Ok(None);
    }
    if euid != 0 {
        return Err(error(
            ErrorKind::Unavailable,
            format!(
                "the agent cannot run Barman as OS user '{name}': it is not running as root or as that user"
            ),
        ));
    }
    Ok(Some(RunAs {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir,
        name: name.to_string(),
    }))
}

/// `barman [-c CONFIG] ARGS` as the configured user, in its own process
/// group (so that stopping it stops what it started), stdin closed.
pub fn command(settings: &Backups, args: &[&str]) -> Result<tokio::process::Command, BarmanError> {
    let mut cmd = tokio::process::Command::new(&settings.barman);
    if let Some(config) = &settings.config {
        cmd.arg("-c").arg(config);
    }
    cmd.args(args);
    if let Some(name) = &settings.run_as
        && let Some(user) = run_as(name)?
    {
        // std drops supplementary groups when it changes the uid.
        cmd.uid(user.uid).gid(user.gid);
        cmd.env("HOME", &user.home)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name);
    }
    // A directory every user can enter.
    cmd.current_dir("/")
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    Ok(cmd)
}

/// What `barman -f json …` printed: Barman's `{"_ERROR": [...]}` as an
/// error whose kind follows its words, anything else as the value.
fn interpret(
    stdout: &[u8],
    stderr: &[u8],
    success: bool,
) -> Result<serde_json::Value, BarmanError> {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(stdout).ok();
    if let Some(errors) = parsed.as_ref().and_then(|v| v.get("_ERROR")) {
        let message = errors
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_else(|| errors.to_string());
        let kind = if message.starts_with("Unknown server") || message.starts_with("Unknown backup")
        {
            ErrorKind::NotFound
        } else {
            ErrorKind::Failed
        };
        return Err(error(kind, message));
    }
    match parsed {
        Some(value) if success || value.is_object() => Ok(value),
        _ => {
            let stderr = String::from_utf8_lossy(stderr);
            let stdout = String::from_utf8_lossy(stdout);
            let text = format!("{}\n{}", stdout.trim(), stderr.trim());
            Err(error(
                ErrorKind::Failed,
                format!("barman printed no JSON: {}", tail(text.trim(), 15)),
            ))
        }
    }
}

/// Runs `barman -f json ARGS` within the configured timeout and returns
/// its JSON. A command that exits non-zero but prints its JSON (`check`
/// when a check fails) is a success.
pub async fn json(settings: &Backups, args: &[&str]) -> Result<serde_json::Value, BarmanError> {
    let mut full = vec!["-f", "json"];
    full.extend_from_slice(args);
    let mut cmd = command(settings, &full)?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        error(
            ErrorKind::Unavailable,
            format!("cannot run {}: {e}", settings.barman.display()),
        )
    })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(error(ErrorKind::Failed, "barman's output is not piped"));
    };
    let run = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let (mut stdout, mut stderr) = (
            stdout.take(MAX_OUTPUT_BYTES + 1),
            stderr.take(MAX_STDERR_BYTES),
        );
        let (read_out, read_err) =
            tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        read_out.and(read_err)?;
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((out, err, status))
    };
    let (out, err, status) = match tokio::time::timeout(settings.timeout, run).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            return Err(error(
                ErrorKind::Failed,
                format!("barman {}: {e}", args.join(" ")),
            ));
        }
        Err(_) => {
            return Err(error(
                ErrorKind::Failed,
                format!(
                    "barman {} did not finish within {} s ([backups] timeout_secs)",
                    args.join(" "),
                    settings.timeout.as_secs()
                ),
            ));
        }
    };
    if out.len() as u64 > MAX_OUTPUT_BYTES {
        return Err(error(
            ErrorKind::Failed,
            format!(
                "barman {} printed more than {MAX_OUTPUT_BYTES} bytes",
                args.join(" ")
            ),
        ));
    }
    interpret(&out, &err, status.success())
}

/// Runs `barman ARGS` (not JSON: `recover`) within `timeout`, stopping its
/// whole process group past it; Ok with its output, Err with its `ERROR`
/// lines or the end of its output.
pub async fn run(
    settings: &Backups,
    args: &[&str],
    timeout: std::time::Duration,
) -> Result<String, BarmanError> {
    let mut cmd = command(settings, args)?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().map_err(|e| {
        error(
            ErrorKind::Unavailable,
            format!("cannot run {}: {e}", settings.barman.display()),
        )
    })?;
    let pgid = child.id().and_then(|pid| i32::try_from(pid).ok());
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            return Err(error(
                ErrorKind::Failed,
                format!("barman {}: {e}", args.join(" ")),
            ));
        }
        Err(_) => {
            if let Some(pgid) = pgid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            return Err(error(
                ErrorKind::Failed,
                format!(
                    "barman {} did not finish within {} s and was stopped",
                    args.first().unwrap_or(&""),
                    timeout.as_secs()
                ),
            ));
        }
    };
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if output.status.success() {
        return Ok(text);
    }
    Err(error(
        ErrorKind::Failed,
        format!(
            "barman {} failed ({}): {}",
            args.first().unwrap_or(&""),
            output.status,
            failure(&text)
        ),
    ))
}

/// What a failed Barman said: its ERROR lines, else the end of its output.
pub fn failure(output: &str) -> String {
    const LINES: usize = 10;
    let errors: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("ERROR"))
        .map(str::trim)
        .collect();
    if errors.is_empty() {
        tail(output, LINES)
    } else {
        errors[errors.len().saturating_sub(LINES)..].join("\n")
    }
}

/// The last `n` non-empty lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barman_errors_keep_their_meaning() {
        let unknown = interpret(br#"{"_ERROR": ["Unknown server 'x'"]}"#, b"", false).unwrap_err();
        assert!(matches!(unknown.kind, ErrorKind::NotFound));
        assert_eq!(unknown.message, "Unknown server 'x'");
        let other = interpret(br#"{"_ERROR": ["boom", "again"]}"#, b"", false).unwrap_err();
        assert!(matches!(other.kind, ErrorKind::Failed));
        assert_eq!(other.message, "boom; again");
        // check exits 1 when a check fails, and still prints them all.
        let checks = interpret(
            br#"{"pg": {"postgresql": {"status": "FAILED"}}}"#,
            b"",
            false,
        );
        assert!(checks.is_ok());
        let garbage = interpret(b"Traceback", b"ImportError: x", false).unwrap_err();
        assert!(
            garbage.message.contains("ImportError"),
            "{}",
            garbage.message
        );
    }
}
