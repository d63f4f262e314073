//! The agent's TOML configuration (documented in docs/CONFIG.md).
//!
//! Every table denies unknown keys so that a typo is a start-up error naming
//! the key, not a silently ignored setting.

pub mod backups;
pub mod databases;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from (absolute), reported by `/status`.
    pub file: PathBuf,
    pub server: Server,
    pub postgresql: Postgresql,
    pub system: System,
    pub runtime: Runtime,
    pub plugins_dir: Option<PathBuf>,
    pub plugin: BTreeMap<String, PluginSettings>,
    pub auth: Auth,
    pub notifications: Notifications,
    pub logging: Logging,
    /// `[databases.<resource_id>]`, in resource id order.
    pub databases: Vec<databases::ManagedDatabase>,
    /// `[backups]`: Barman and the recovery targets of its servers.
    pub backups: backups::Backups,
    /// `[metrics] listen`: a second listener serving `GET /metrics` alone,
    /// without credentials, for scrapers.
    pub metrics_listen: Option<SocketAddr>,
}

/// Where the agent's log goes and how much of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Logging {
    /// A `tracing` filter such as "info" or "dbagent=debug"; `RUST_LOG` wins when set.
    pub level: String,
    /// Append to this file instead of writing to standard error.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Auth {
    pub users_file: PathBuf,
    /// The agent key: authenticates read-only GET routes without a session.
    pub key: Option<String>,
    /// Bearer tokens, as configured; the server keeps only their digests.
    pub api_tokens: Vec<String>,
    /// Idle time after which a session ends (sliding).
    pub session_timeout: Duration,
    /// Time after login at which a session ends however much it is used.
    pub session_lifetime: Duration,
}

#[derive(Debug, Clone)]
pub struct Notifications {
    /// How many notifications are kept; older ones are pruned.
    pub keep: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub max_body_bytes: usize,
    /// PEM certificate chain and private key; both or neither.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The `Access-Control-Allow-Origin` value sent on every response; none when empty.
    pub cors_allow_origin: Option<String>,
    /// The host name the agent reports (`/discover`, the dashboard); the
    /// machine's own when unset, as temBoard's `[temboard] hostname`.
    pub hostname: Option<String>,
    /// How long a client may take to send one whole request, headers and body.
    pub request_timeout: Duration,
    /// Connections served at once; past it new ones are closed at once.
    pub max_connections: usize,
    /// Connections served at once from one client address (IPv6: one /64).
    pub max_connections_per_address: usize,
}

#[derive(Clone, PartialEq)]
pub struct Postgresql {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
    /// Connections requests share, whatever the database.
    pub pool_size: usize,
    /// Connections jobs share.
    pub job_pool_size: usize,
    /// A connection idle this long is closed.
    pub pool_idle_timeout: Duration,
    pub control: PgCtl,
    /// Binary directories of the PostgreSQL versions the instance may be
    /// upgraded to, by major version.
    pub upgrade_bin_dirs: BTreeMap<u32, PathBuf>,
    /// Data directories a point-in-time restore keeps aside (the newest).
    pub pitr_keep_copies: usize,
}

/// The password never shows in a log or an error message.
impl std::fmt::Debug for Postgresql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgresql")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("dbname", &self.dbname)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("pool_size", &self.pool_size)
            .field("job_pool_size", &self.job_pool_size)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("control", &self.control)
            .field("upgrade_bin_dirs", &self.upgrade_bin_dirs)
            .field("pitr_keep_copies", &self.pitr_keep_copies)
            .finish()
    }
}

/// How the administration plugin runs `pg_ctl` for the managed instance.
#[derive(Debug, Clone, PartialEq)]
pub struct PgCtl {
    /// The instance's data directory; administration is refused without it.
    pub data_directory: Option<PathBuf>,
    /// The `pg_ctl` program; found from the data directory's version when unset.
    pub program: Option<PathBuf>,
    /// The OS user `pg_ctl` runs as; the agent's own user when unset.
    pub user: Option<String>,
    /// How long `pg_ctl` may take (it waits for start-up and shut-down).
    pub timeout: Duration,
    /// Where a server started by `pg_ctl` writes its output.
    pub log_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct System {
    pub sample_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct Runtime {
    pub timeout: Duration,
    pub memory_bytes: usize,
    pub max_instances: u32,
    pub cache_dir: PathBuf,
}

/// The operator's settings for one plugin, overriding its manifest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    pub enabled: Option<bool>,
    pub grants: Option<Vec<String>>,
    pub timeout_secs: Option<f64>,
    pub job_timeout_secs: Option<f64>,
    pub memory_mib: Option<u64>,
    /// Plugin-specific settings (e.g. the dashboard's history length).
    pub settings: Option<toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    postgresql: RawPostgresql,
    #[serde(default)]
    system: RawSystem,
    #[serde(default)]
    runtime: RawRuntime,
    #[serde(default)]
    plugins: RawPlugins,
    #[serde(default)]
    plugin: BTreeMap<String, PluginSettings>,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    notifications: RawNotifications,
    #[serde(default)]
    logging: RawLogging,
    #[serde(default)]
    databases: BTreeMap<String, databases::RawDatabase>,
    #[serde(default)]
    backups: backups::RawBackups,
    #[serde(default)]
    metrics: RawMetrics,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogging {
    level: Option<String>,
    file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    users_file: Option<PathBuf>,
    key: Option<String>,
    api_tokens: Option<Vec<String>>,
    session_timeout_secs: Option<u64>,
    session_lifetime_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifications {
    keep: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    cors_allow_origin: Option<String>,
    hostname: Option<String>,
    request_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostgresql {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    connect_timeout_secs: Option<u64>,
    statement_timeout_secs: Option<u64>,
    pool_size: Option<usize>,
    job_pool_size: Option<usize>,
    pool_idle_timeout_secs: Option<u64>,
    data_directory: Option<PathBuf>,
    pg_ctl: Option<PathBuf>,
    pg_ctl_user: Option<String>,
    pg_ctl_timeout_secs: Option<u64>,
    pg_ctl_log: Option<PathBuf>,
    #[serde(default)]
    upgrade_bin_dirs: BTreeMap<String, PathBuf>,
    pitr_keep_copies: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    sample_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    timeout_secs: Option<f64>,
    memory_mib: Option<u64>,
    max_instances: Option<u32>,
    cache_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugins {
    dir: Option<PathBuf>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:2345";

impl Config {
    /// Reads and validates `path`; errors name the file and the offending key.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Self::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &Path) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.to_string().trim_end()))?;
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let listen_text = raw.server.listen.unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr = listen_text.parse().with_context(|| {
            format!(
                "{}: [server] listen = {listen_text:?} is not an address:port",
                file.display()
            )
        })?;
        let data_dir = resolve(raw.server.data_dir.unwrap_or_else(|| "dbagent-data".into()));
        let max_body_bytes = raw.server.max_body_bytes.unwrap_or(1024 * 1024);
        let tls = match (raw.server.tls_cert, raw.server.tls_key) {
            (Some(cert), Some(key)) => Some((resolve(cert), resolve(key))),
            (None, None) => None,
            _ => bail!(
                "{}: [server] tls_cert and tls_key go together",
                file.display()
            ),
        };
        let cors_allow_origin = match raw.server.cors_allow_origin {
            Some(origin) if origin.is_empty() => None,
            Some(origin) => Some(origin),
            None => Some("*".to_string()),
        };

        let hostname = match raw.server.hostname.filter(|h| !h.is_empty()) {
            Some(h) if !is_host_name(&h) => bail!(
                "{}: [server] hostname = {h:?} is not a host name (letters, digits, '-' and '.', at most 253 characters)",
                file.display()
            ),
            h => h,
        };
        let request_timeout = match raw.server.request_timeout_secs.unwrap_or(30) {
            secs @ 1..=3600 => Duration::from_secs(secs),
            _ => bail!(
                "{}: [server] request_timeout_secs must be between 1 and 3600",
                file.display()
            ),
        };
        let max_connections = raw.server.max_connections.unwrap_or(1024);
        let max_connections_per_address = raw.server.max_connections_per_address.unwrap_or(256);
        if max_connections == 0 || max_connections_per_address == 0 {
            bail!(
                "{}: [server] max_connections and max_connections_per_address must be at least 1",
                file.display()
            );
        }
        let logging = Logging {
            level: raw.logging.level.unwrap_or_else(|| "info".into()),
            file: raw.logging.file.map(&resolve),
        };
        if tracing_subscriber::EnvFilter::try_new(&logging.level).is_err() {
            bail!(
                "{}: [logging] level = {:?} is not a level (error, warn, info, debug, trace) or a filter",
                file.display(),
                logging.level
            );
        }

        let key = raw.auth.key.filter(|k| !k.is_empty());
        if key.as_ref().is_some_and(|k| k.len() < 8) {
            bail!(
                "{}: [auth] key must be at least 8 characters",
                file.display()
            );
        }
        let api_tokens = raw.auth.api_tokens.unwrap_or_default();
        if api_tokens.iter().any(|t| t.len() < 16) {
            bail!(
                "{}: [auth] api_tokens must each be at least 16 characters",
                file.display()
            );
        }
        let auth = Auth {
            // Beside the state store by default: secrets stay out of the
            // directory the configuration (often a repository) lives in.
            users_file: raw
                .auth
                .users_file
                .map(&resolve)
                .unwrap_or_else(|| data_dir.join("users")),
            key,
            api_tokens,
            session_timeout: Duration::from_secs(
                raw.auth.session_timeout_secs.unwrap_or(3600).max(1),
            ),
            session_lifetime: Duration::from_secs(
                raw.auth.session_lifetime_secs.unwrap_or(12 * 3600).max(1),
            ),
        };
        let notifications = Notifications {
            keep: raw.notifications.keep.unwrap_or(1000).clamp(1, 1_000_000),
        };

        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let pg = raw.postgresql;
        let port = match pg.port {
            Some(p) => p,
            None => match env("PGPORT") {
                Some(p) => p
                    .parse()
                    .with_context(|| format!("PGPORT={p:?} is not a port number"))?,
                None => 5432,
            },
        };
        let postgresql = Postgresql {
            host: pg
                .host
                .or_else(|| env("PGHOST"))
                .unwrap_or_else(|| "/var/run/postgresql".into()),
            port,
            user: pg
                .user
                .or_else(|| env("PGUSER"))
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "postgres".into()),
            password: pg
                .password
                .or_else(|| env("PGPASSWORD"))
                .filter(|p| !p.is_empty()),
            dbname: pg
                .dbname
                .or_else(|| env("PGDATABASE"))
                .unwrap_or_else(|| "postgres".into()),
            connect_timeout: Duration::from_secs(pg.connect_timeout_secs.unwrap_or(5)),
            statement_timeout: Duration::from_secs(pg.statement_timeout_secs.unwrap_or(30)),
            pool_size: match pg.pool_size.unwrap_or(8) {
                n @ 1..=1000 => n,
                _ => bail!(
                    "{}: [postgresql] pool_size must be between 1 and 1000",
                    file.display()
                ),
            },
            job_pool_size: match pg.job_pool_size.unwrap_or(4) {
                n @ 1..=1000 => n,
                _ => bail!(
                    "{}: [postgresql] job_pool_size must be between 1 and 1000",
                    file.display()
                ),
            },
            pool_idle_timeout: Duration::from_secs(pg.pool_idle_timeout_secs.unwrap_or(300).max(1)),
            control: PgCtl {
                data_directory: pg.data_directory.map(&resolve),
                program: pg.pg_ctl.map(&resolve),
                user: pg.pg_ctl_user.filter(|u| !u.is_empty()),
                timeout: match pg.pg_ctl_timeout_secs.unwrap_or(60) {
                    secs @ 1..=3600 => Duration::from_secs(secs),
                    _ => bail!(
                        "{}: [postgresql] pg_ctl_timeout_secs must be between 1 and 3600",
                        file.display()
                    ),
                },
                log_file: pg.pg_ctl_log.map(&resolve),
            },
            upgrade_bin_dirs: pg
                .upgrade_bin_dirs
                .into_iter()
                .map(|(major, dir)| match major.parse::<u32>() {
                    Ok(m @ 10..=99) => Ok((m, resolve(dir))),
                    _ => bail!(
                        "{}: [postgresql] upgrade_bin_dirs: {major:?} is not a PostgreSQL major version (\"16\")",
                        file.display()
                    ),
                })
                .collect::<Result<_>>()?,
            pitr_keep_copies: match pg.pitr_keep_copies.unwrap_or(0) {
                n @ 0..=100 => n,
                _ => bail!(
                    "{}: [postgresql] pitr_keep_copies must be between 0 and 100",
                    file.display()
                ),
            },
        };

        let sample_ms = raw.system.sample_interval_ms.unwrap_or(1000);
        if !(100..=60_000).contains(&sample_ms) {
            bail!(
                "{}: [system] sample_interval_ms must be between 100 and 60000",
                file.display()
            );
        }

        let timeout = raw.runtime.timeout_secs.unwrap_or(30.0);
        let runtime = Runtime {
            timeout: positive_secs(timeout, "[runtime] timeout_secs", file)?,
            memory_bytes: mib(
                raw.runtime.memory_mib.unwrap_or(64),
                "[runtime] memory_mib",
                file,
            )?,
            max_instances: raw.runtime.max_instances.unwrap_or(8).max(1),
            cache_dir: raw
                .runtime
                .cache_dir
                .map(resolve)
                .unwrap_or_else(|| data_dir.join("cache")),
        };

        for (name, settings) in &raw.plugin {
            if let Some(t) = settings.timeout_secs {
                positive_secs(t, &format!("[plugin.{name}] timeout_secs"), file)?;
            }
            if let Some(t) = settings.job_timeout_secs {
                positive_secs(t, &format!("[plugin.{name}] job_timeout_secs"), file)?;
            }
            if let Some(m) = settings.memory_mib {
                mib(m, &format!("[plugin.{name}] memory_mib"), file)?;
            }
        }

        Ok(Config {
            file: file.to_path_buf(),
            server: Server {
                listen,
                data_dir,
                max_body_bytes,
                tls,
                cors_allow_origin,
                hostname,
                request_timeout,
                max_connections,
                max_connections_per_address,
            },
            postgresql,
            system: System {
                sample_interval: Duration::from_millis(sample_ms),
            },
            runtime,
            plugins_dir: raw.plugins.dir.map(resolve),
            plugin: raw.plugin,
            auth,
            notifications,
            logging,
            databases: databases::validate(raw.databases, file, &resolve)?,
            backups: backups::validate(raw.backups, file, &resolve)?,
            metrics_listen: match raw.metrics.listen.filter(|l| !l.is_empty()) {
                None => None,
                Some(text) => Some(text.parse().with_context(|| {
                    format!(
                        "{}: [metrics] listen = {text:?} is not an address:port",
                        file.display()
                    )
                })?),
            },
        })
    }
}

/// An RFC 1123 host name: dot-separated labels of letters, digits and '-'.
fn is_host_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

pub fn positive_secs(secs: f64, key: &str, file: &Path) -> Result<Duration> {
    if !(secs > 0.0 && secs <= 86_400.0) {
        bail!(
            "{}: {key} must be a number of seconds between 0 and 86400",
            file.display()
        );
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Memory limits in MiB, bounded so that the pooling allocator can reserve them.
pub fn mib(mib: u64, key: &str, file: &Path) -> Result<usize> {
    if !(1..=4096).contains(&mib) {
        bail!("{}: {key} must be between 1 and 4096 (MiB)", file.display());
    }
    Ok(mib as usize * 1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("/etc/dbagent/dbagent.toml"))
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = parse("[plugins]\ndir = \"plugins\"\n").unwrap();
        assert_eq!(c.server.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(
            c.server.data_dir,
            PathBuf::from("/etc/dbagent/dbagent-data")
        );
        assert_eq!(
            c.runtime.cache_dir,
            PathBuf::from("/etc/dbagent/dbagent-data/cache")
        );
        assert_eq!(c.plugins_dir, Some(PathBuf::from("/etc/dbagent/plugins")));
        assert_eq!(c.runtime.memory_bytes, 64 << 20);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse("[server]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n").unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = parse("[postgresql]\nport = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
    }

    #[test]
    fn bad_listen_is_named() {
        let err = parse("[server]\nlisten = \"nowhere\"\n").unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
    }

    #[test]
    fn plugin_settings() {
        let c = parse("[plugin.spin]\ngrants = []\ntimeout_secs = 2\n").unwrap();
        assert_eq!(c.plugin["spin"].timeout_secs, Some(2.0));
        assert!(parse("[plugin.spin]\nmemory_mib = 0\n").is_err());
        assert!(parse("[plugin.spin]\ngrant = []\n").is_err());
    }
}
