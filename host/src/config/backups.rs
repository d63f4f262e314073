//! `[backups]`: the Barman the agent drives, and the recovery targets of its
//! servers.

use anyhow::{Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Backups {
    /// The `barman` program; a bare name is looked up on PATH.
    pub barman: PathBuf,
    /// `barman -c`; Barman's own lookup (`~/.barman.conf`, `/etc/barman.conf`) when absent.
    pub config: Option<PathBuf>,
    /// The OS user Barman runs as (its `barman_user`); the agent's own when absent.
    pub run_as: Option<String>,
    /// Bound of one reading command (list, show, check).
    pub timeout: Duration,
    /// Bound of one backup or recover.
    pub job_timeout: Duration,
    /// Backups and recovers that run at once; more wait queued.
    pub max_running_jobs: usize,
    /// Recovery targets by Barman server name, then by target id.
    pub servers: BTreeMap<String, BTreeMap<String, Target>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub path: PathBuf,
    pub remote_ssh_cmd: Option<String>,
    pub recover_job_name: String,
}

impl Default for Backups {
    fn default() -> Backups {
        Backups {
            barman: PathBuf::from("barman"),
            config: None,
            run_as: None,
            timeout: Duration::from_secs(60),
            job_timeout: Duration::from_secs(24 * 3600),
            max_running_jobs: 2,
            servers: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackups {
    barman: Option<PathBuf>,
    config: Option<PathBuf>,
    run_as: Option<String>,
    timeout_secs: Option<u64>,
    job_timeout_secs: Option<u64>,
    max_running_jobs: Option<usize>,
    #[serde(default)]
    servers: BTreeMap<String, RawServer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default)]
    targets: BTreeMap<String, RawTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    path: PathBuf,
    remote_ssh_cmd: Option<String>,
    recover_job_name: Option<String>,
}

/// A Barman server name, target id or backup id the host accepts in a
/// command line: 1-64 letters, digits, `-`, `_` and `.`, not starting with
/// `-` (never an option) nor `.`.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub(super) fn validate(
    raw: RawBackups,
    file: &Path,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<Backups> {
    let at = |key: &str| format!("{}: [backups] {key}", file.display());
    let defaults = Backups::default();
    let barman = match raw.barman {
        // A bare program name is looked up on PATH, not beside the file.
        Some(p) if p.components().count() == 1 && !p.is_absolute() => p,
        Some(p) => resolve(p),
        None => defaults.barman,
    };
    let timeout = match raw.timeout_secs {
        None => defaults.timeout,
        Some(secs @ 1..=3600) => Duration::from_secs(secs),
        Some(_) => bail!("{} must be between 1 and 3600", at("timeout_secs")),
    };
    let job_timeout = match raw.job_timeout_secs {
        None => defaults.job_timeout,
        Some(secs @ 1..=604_800) => Duration::from_secs(secs),
        Some(_) => bail!(
            "{} must be between 1 and 604800 (a week)",
            at("job_timeout_secs")
        ),
    };
    let max_running_jobs = match raw.max_running_jobs {
        None => defaults.max_running_jobs,
        Some(n @ 1..=64) => n,
        Some(_) => bail!("{} must be between 1 and 64", at("max_running_jobs")),
    };
    if let Some(user) = &raw.run_as
        && (user.is_empty() || user.contains(['\0', '/', ':']))
    {
        bail!("{} = {user:?} is not an OS user name", at("run_as"));
    }
    let mut servers = BTreeMap::new();
    for (server, entry) in raw.servers {
        if !is_name(&server) {
            bail!(
                "{}: [backups.servers.{server}]: a server name is 1-64 letters, digits, '-', '_' and '.'",
                file.display()
            );
        }
        let mut targets = BTreeMap::new();
        for (id, target) in entry.targets {
            let here = format!(
                "{}: [backups.servers.{server}.targets.{id}]",
                file.display()
            );
            if !is_name(&id) {
                bail!("{here}: a target id is 1-64 letters, digits, '-', '_' and '.'");
            }
            // Absolute, local or remote alike: Barman would take a relative
            // one from its own working directory.
            let path = target.path;
            if !path.is_absolute() {
                bail!("{here}: path must be absolute");
            }
            if path.to_str().is_none_or(|p| p.contains(['\0', '\n'])) {
                bail!("{here}: path must be a UTF-8 path on one line");
            }
            if let Some(cmd) = &target.remote_ssh_cmd
                && (cmd.trim().is_empty() || cmd.contains(['\0', '\n']))
            {
                bail!("{here}: remote_ssh_cmd must be one line, such as \"ssh postgres@host2\"");
            }
            targets.insert(
                id.clone(),
                Target {
                    path,
                    remote_ssh_cmd: target.remote_ssh_cmd,
                    recover_job_name: target
                        .recover_job_name
                        .unwrap_or_else(|| format!("recover-{server}-{id}")),
                },
            );
        }
        servers.insert(server, targets);
    }
    Ok(Backups {
        barman,
        config: raw.config.map(resolve),
        run_as: raw.run_as,
        timeout,
        job_timeout,
        max_running_jobs,
        servers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Backups> {
        let raw: RawBackups = toml::from_str(text)?;
        validate(raw, Path::new("/etc/dbagent.toml"), &|p| {
            Path::new("/etc").join(p)
        })
    }

    #[test]
    fn targets_are_read_with_their_defaults() {
        let backups = parse(
            "config = \"barman.conf\"\nrun_as = \"barman\"\n\
             [servers.pg.targets.local]\npath = \"/srv/recover\"\n\
             [servers.pg.targets.host2]\npath = \"/var/lib/postgresql/16/main\"\nremote_ssh_cmd = \"ssh postgres@host2\"\nrecover_job_name = \"RecoverJobHost2\"\n",
        )
        .unwrap();
        assert_eq!(backups.barman, PathBuf::from("barman"));
        assert_eq!(backups.config, Some(PathBuf::from("/etc/barman.conf")));
        let pg = &backups.servers["pg"];
        assert_eq!(pg["local"].path, PathBuf::from("/srv/recover"));
        assert_eq!(pg["local"].recover_job_name, "recover-pg-local");
        assert_eq!(
            pg["host2"].remote_ssh_cmd.as_deref(),
            Some("ssh postgres@host2")
        );
        assert_eq!(pg["host2"].recover_job_name, "RecoverJobHost2");
    }

    #[test]
    fn bad_entries_are_named() {
        for (text, expected) in [
            ("[servers.\"-x\".targets.a]\npath = \"/a\"\n", "server name"),
            ("[servers.pg.targets.\"a b\"]\npath = \"/a\"\n", "target id"),
            ("[servers.pg.targets.a]\npath = \"rel\"\n", "absolute"),
            ("timeout_secs = 0\n", "timeout_secs"),
            ("max_running_jobs = 0\n", "max_running_jobs"),
            ("run_as = \"\"\n", "run_as"),
        ] {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(expected), "{text}: {err}");
        }
        assert!(parse("[servers.pg.targets.a]\nbogus = 1\npath = \"/a\"\n").is_err());
    }

    #[test]
    fn names_never_look_like_options() {
        assert!(is_name("pg") && is_name("20130322T072507") && is_name("db-1.main"));
        for bad in ["", "-c", ".hidden", "a b", "a/b", "a;b", &"x".repeat(65)] {
            assert!(!is_name(bad), "{bad:?}");
        }
    }
}
