//! `[databases.<resource_id>]`: the databases the database-service API
//! manages, each with its engine and how the host reaches it. Credentials
//! stay here, in the host; plugins see none of them.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One managed database, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedDatabase {
    pub resource_id: String,
    /// "postgresql", "mysql", "redis", "influxdb", or a vendor's engine.
    pub engine: String,
    pub app_name: String,
    pub plan: String,
    pub encryption_at_rest: bool,
    pub features: Vec<Feature>,
    /// As configured; empty means "the server the connection reaches".
    pub instances: Vec<Instance>,
    pub connection: Connection,
    /// The Barman server that backs it up (`[backups]`): periodic backups
    /// and point-in-time restore (PostgreSQL).
    pub barman_server: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    pub name: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub hostname: String,
    pub port: u16,
    /// "db-node" or "gateway".
    pub kind: String,
}

/// How the host reaches a managed database.
#[derive(Clone, PartialEq)]
pub enum Connection {
    /// The `[postgresql]` instance, with its credentials.
    Managed,
    Server {
        /// A host name, an address, or a Unix socket directory.
        host: String,
        port: u16,
        user: Option<String>,
        password: Option<String>,
        /// The database (or InfluxDB database, Redis index) connections open.
        dbname: Option<String>,
    },
}

/// The password never shows in a log or an error message.
impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Connection::Managed => f.write_str("Managed"),
            Connection::Server {
                host,
                port,
                user,
                password,
                dbname,
            } => f
                .debug_struct("Server")
                .field("host", host)
                .field("port", port)
                .field("user", user)
                .field("password", &password.as_ref().map(|_| "********"))
                .field("dbname", dbname)
                .finish(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    engine: Option<String>,
    /// The `[postgresql]` instance: no connection settings repeated.
    #[serde(default)]
    managed: bool,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    /// Read at start-up; the file holds the password alone (a trailing
    /// newline is dropped).
    password_file: Option<PathBuf>,
    /// The name of an environment variable holding the password.
    password_env: Option<String>,
    dbname: Option<String>,
    app_name: Option<String>,
    plan: Option<String>,
    #[serde(default)]
    encryption_at_rest: bool,
    #[serde(default)]
    features: Vec<Feature>,
    #[serde(default)]
    instances: Vec<RawInstance>,
    barman_server: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInstance {
    hostname: String,
    port: u16,
    #[serde(rename = "type", default = "db_node")]
    kind: String,
}

fn db_node() -> String {
    "db-node".into()
}

/// The port an engine listens on unless told otherwise.
fn default_port(engine: &str) -> Option<u16> {
    Some(match engine {
        "postgresql" => 5432,
        "mysql" => 3306,
        "redis" => 6379,
        "influxdb" => 8086,
        _ => return None,
    })
}

/// Validates every entry; an error names the entry and the key.
pub(super) fn validate(
    raw: BTreeMap<String, RawDatabase>,
    file: &Path,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<Vec<ManagedDatabase>> {
    let mut out = Vec::with_capacity(raw.len());
    for (resource_id, entry) in raw {
        let at = format!("{}: [databases.{resource_id}]", file.display());
        out.push(one(resource_id.clone(), entry, resolve).with_context(|| at.clone())?);
    }
    Ok(out)
}

fn one(
    resource_id: String,
    raw: RawDatabase,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<ManagedDatabase> {
    if resource_id.is_empty()
        || resource_id.len() > 64
        || !resource_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        bail!("the resource id must be 1-64 characters of letters, digits, '-', '_' and '.'");
    }
    let Some(engine) = raw.engine.filter(|e| !e.is_empty()) else {
        bail!("engine is missing (postgresql, mysql, redis, influxdb, or a vendor's engine name)");
    };
    if !engine
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        bail!("engine {engine:?} must be lower-case letters, digits, '-' and '_'");
    }
    let connection = if raw.managed {
        if engine != "postgresql" {
            bail!("managed = true names the [postgresql] instance: engine must be \"postgresql\"");
        }
        if raw.host.is_some()
            || raw.port.is_some()
            || raw.user.is_some()
            || raw.password_file.is_some()
            || raw.password_env.is_some()
            || raw.dbname.is_some()
        {
            bail!(
                "managed = true uses the connection of [postgresql]: remove host, port, user, password_file, password_env and dbname"
            );
        }
        Connection::Managed
    } else {
        let Some(host) = raw.host.filter(|h| !h.is_empty()) else {
            bail!("host is missing (or set managed = true for the [postgresql] instance)");
        };
        let port = match raw.port.or_else(|| default_port(&engine)) {
            Some(port) => port,
            None => bail!("port is missing (no default for engine {engine:?})"),
        };
        let password = match (raw.password_file, raw.password_env) {
            (Some(_), Some(_)) => bail!("password_file and password_env: give one"),
            (Some(path), None) => {
                let path = resolve(path);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read password_file {}", path.display()))?;
                Some(text.trim_end_matches(['\n', '\r']).to_string())
            }
            (None, Some(name)) => Some(std::env::var(&name).with_context(|| {
                format!("password_env names {name}, which is not set in the agent's environment")
            })?),
            (None, None) => None,
        };
        let dbname = raw.dbname.filter(|d| !d.is_empty());
        if engine == "redis"
            && let Some(index) = &dbname
            && index.parse::<u32>().is_err()
        {
            bail!("dbname {index:?} must be a Redis database index (0, 1, ...)");
        }
        Connection::Server {
            host,
            port,
            user: raw.user.filter(|u| !u.is_empty()),
            password,
            dbname,
        }
    };
    let instances = raw
        .instances
        .into_iter()
        .map(|i| {
            if i.hostname.is_empty() {
                bail!("an instance needs a hostname");
            }
            if i.kind != "db-node" && i.kind != "gateway" {
                bail!(
                    "instance {} has type {:?}: \"db-node\" or \"gateway\"",
                    i.hostname,
                    i.kind
                );
            }
            Ok(Instance {
                hostname: i.hostname,
                port: i.port,
                kind: i.kind,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(server) = &raw.barman_server
        && (engine != "postgresql" || !super::backups::is_name(server))
    {
        bail!("barman_server = {server:?}: a Barman server name, for a postgresql database only");
    }
    Ok(ManagedDatabase {
        barman_server: raw.barman_server,
        app_name: raw.app_name.unwrap_or_else(|| resource_id.clone()),
        resource_id,
        engine,
        plan: raw.plan.unwrap_or_default(),
        encryption_at_rest: raw.encryption_at_rest,
        features: raw.features,
        instances,
        connection,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Vec<ManagedDatabase>> {
        let raw: BTreeMap<String, RawDatabase> = toml::from_str(toml_text)?;
        validate(raw, Path::new("/etc/dbagent.toml"), &|p| p)
    }

    #[test]
    fn managed_and_server_entries() {
        let dbs = parse(
            r#"
            [main]
            engine = "postgresql"
            managed = true
            app_name = "my-app"
            plan = "free"
            encryption_at_rest = true
            features = [{ name = "tls", status = "ACTIVATED" }]
            instances = [{ hostname = "db1.example.org", port = 5432, type = "db-node" }]

            [cache]
            engine = "redis"
            host = "127.0.0.1"
            "#,
        )
        .unwrap();
        assert_eq!(dbs[0].resource_id, "cache");
        assert_eq!(
            dbs[0].connection,
            Connection::Server {
                host: "127.0.0.1".into(),
                port: 6379,
                user: None,
                password: None,
                dbname: None
            }
        );
        assert_eq!(dbs[1].connection, Connection::Managed);
        assert_eq!(dbs[1].instances[0].kind, "db-node");
        assert!(dbs[1].encryption_at_rest);
    }

    #[test]
    fn bad_entries_are_named() {
        for (text, expected) in [
            ("[x]\nhost = \"h\"\n", "engine"),
            ("[x]\nengine = \"mysql\"\nmanaged = true\n", "managed"),
            (
                "[x]\nengine = \"postgresql\"\nmanaged = true\nport = 1\n",
                "managed",
            ),
            ("[x]\nengine = \"postgresql\"\n", "host"),
            ("[x]\nengine = \"vendor\"\nhost = \"h\"\n", "port"),
            (
                "[\"a b\"]\nengine = \"redis\"\nhost = \"h\"\n",
                "resource id",
            ),
            (
                "[x]\nengine = \"redis\"\nhost = \"h\"\ninstances = [{ hostname = \"h\", port = 1, type = \"primary\" }]\n",
                "db-node",
            ),
            (
                "[x]\nengine = \"redis\"\nhost = \"h\"\ndbname = \"cache\"\n",
                "Redis database index",
            ),
            (
                "[x]\nengine = \"redis\"\nhost = \"h\"\npassword_env = \"DBAGENT_SURELY_UNSET_VAR\"\n",
                "DBAGENT_SURELY_UNSET_VAR",
            ),
        ] {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(expected), "{text}: {err}");
        }
        let err = format!(
            "{:#}",
            parse("[x]\nengine = \"redis\"\nhost = \"h\"\n")
                .and_then(|_| parse("[y]\nengine = \"redis\"\nhost = \"h\"\nbogus = 1\n"))
                .unwrap_err()
        );
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn passwords_never_show_in_debug() {
        let dbs = parse("[x]\nengine = \"mysql\"\nhost = \"h\"\n").unwrap();
        let mut db = dbs[0].clone();
        db.connection = Connection::Server {
            host: "h".into(),
            port: 1,
            user: None,
            password: Some("s3cret".into()),
            dbname: None,
        };
        assert!(!format!("{db:?}").contains("s3cret"));
    }
}
