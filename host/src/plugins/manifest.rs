//! Plugin manifests: what a plugin says it is, serves and needs.

use anyhow::{Result, bail};
use serde::Deserialize;

use super::registry;

/// The WIT package whose interfaces are capabilities.
pub const API_PACKAGE: &str = "dbagent:api";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// An API area served over HTTP, or an engine's action module.
    #[serde(default)]
    pub kind: Kind,
    /// The engine an action module serves (`postgresql`, `mysql`, …).
    #[serde(default)]
    pub engine: Option<String>,
    /// Route prefixes of an HTTP plugin; an action module has none.
    #[serde(default)]
    pub routes: Vec<String>,
    /// How callers authenticate: temBoard's way (a missing session is 406,
    /// the agent key may read where `key_read` says), or `bearer`, the
    /// database-service API's (a session or a bearer token; a missing or
    /// wrong credential is 401).
    #[serde(default)]
    pub auth: AuthStyle,
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The agent key (`?key=`, `X-TemBoard-Agent-Key`) may read this
    /// plugin's GET routes, as it reads temBoard's read-only areas.
    #[serde(default)]
    pub key_read: bool,
    #[serde(default)]
    pub limits: Limits,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    #[default]
    Http,
    ActionModule,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthStyle {
    #[default]
    Temboard,
    Bearer,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub timeout_secs: Option<f64>,
    /// The deadline of one job run (a VACUUM FULL may take hours); the
    /// request deadline when unset.
    pub job_timeout_secs: Option<f64>,
    pub memory_mib: Option<u64>,
}

impl Manifest {
    /// Parses and validates a manifest; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest> {
        let manifest: Manifest = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{origin}: {}", e.to_string().trim_end()))?;
        if manifest.name.is_empty()
            || manifest.name.len() > 64
            || !manifest
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            bail!(
                "{origin}: plugin name {:?} must be 1-64 characters of a-z, 0-9, - and _",
                manifest.name
            );
        }
        match (manifest.kind, &manifest.engine) {
            (Kind::Http, None) if manifest.routes.is_empty() => {
                bail!("{origin}: plugin '{}' declares no routes", manifest.name)
            }
            (Kind::Http, None) => {}
            (Kind::Http, Some(_)) => bail!(
                "{origin}: plugin '{}' names an engine: only an action module (kind = \"action-module\") serves one",
                manifest.name
            ),
            (Kind::ActionModule, _) if !manifest.routes.is_empty() => bail!(
                "{origin}: action module '{}' declares routes: the host calls it, it serves none",
                manifest.name
            ),
            (Kind::ActionModule, None) => bail!(
                "{origin}: action module '{}' names no engine (engine = \"postgresql\", …)",
                manifest.name
            ),
            (Kind::ActionModule, Some(engine))
                if engine.is_empty()
                    || !engine.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    }) =>
            {
                bail!(
                    "{origin}: action module '{}' has engine {engine:?}: lower-case letters, digits, '-' and '_'",
                    manifest.name
                )
            }
            (Kind::ActionModule, Some(_)) => {}
        }
        for route in &manifest.routes {
            if !valid_prefix(route) {
                bail!(
                    "{origin}: route {route:?} of plugin '{}' must start with '/', not end with '/', and hold only URL path characters",
                    manifest.name
                );
            }
        }
        for capability in &manifest.capabilities {
            if registry::find(capability).is_none() {
                bail!(
                    "{origin}: plugin '{}' asks for unknown capability '{capability}' (known: {})",
                    manifest.name,
                    registry::CAPABILITIES
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Ok(manifest)
    }
}

fn valid_prefix(route: &str) -> bool {
    route.len() > 1
        && route.len() <= 256
        && route.starts_with('/')
        && !route.ends_with('/')
        && !route.contains("//")
        && route
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
}

/// The capability name of an imported interface such as
/// `dbagent:api/postgres@0.1.0`, or `None` when it is not one of ours.
pub fn capability_of_import(import: &str) -> Option<&str> {
    let rest = import.strip_prefix(API_PACKAGE)?.strip_prefix('/')?;
    Some(rest.split('@').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let m = Manifest::parse(
            "name = \"activity\"\nversion = \"0.1.0\"\nroutes = [\"/activity\"]\ncapabilities = [\"postgres\"]\n",
            "t",
        )
        .unwrap();
        assert_eq!(m.routes, vec!["/activity"]);
        assert!(
            Manifest::parse("name = \"A\"\nversion = \"1\"\nroutes = [\"/a\"]\n", "t").is_err()
        );
        assert!(Manifest::parse("name = \"a\"\nversion = \"1\"\nroutes = [\"a\"]\n", "t").is_err());
        assert!(
            Manifest::parse("name = \"a\"\nversion = \"1\"\nroutes = [\"/a/\"]\n", "t").is_err()
        );
        let err = Manifest::parse(
            "name = \"a\"\nversion = \"1\"\nroutes = [\"/a\"]\ncapabilities = [\"fs\"]\n",
            "t",
        )
        .unwrap_err();
        assert!(err.to_string().contains("fs"));
    }

    #[test]
    fn action_modules_have_an_engine_and_no_routes() {
        let m = Manifest::parse(
            "name = \"pg\"\nversion = \"1\"\nkind = \"action-module\"\nengine = \"postgresql\"\ncapabilities = [\"postgres\"]\n",
            "t",
        )
        .unwrap();
        assert_eq!(
            (m.kind, m.engine.as_deref()),
            (Kind::ActionModule, Some("postgresql"))
        );
        for bad in [
            "name = \"pg\"\nversion = \"1\"\nkind = \"action-module\"\n",
            "name = \"pg\"\nversion = \"1\"\nkind = \"action-module\"\nengine = \"x\"\nroutes = [\"/x\"]\n",
            "name = \"pg\"\nversion = \"1\"\nengine = \"x\"\nroutes = [\"/x\"]\n",
            "name = \"pg\"\nversion = \"1\"\nkind = \"action-module\"\nengine = \"Bad Engine\"\n",
        ] {
            assert!(Manifest::parse(bad, "t").is_err(), "{bad}");
        }
        let api = Manifest::parse(
            "name = \"db\"\nversion = \"1\"\nroutes = [\"/api/databases\"]\nauth = \"bearer\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(api.auth, AuthStyle::Bearer);
    }

    #[test]
    fn import_names() {
        assert_eq!(
            capability_of_import("dbagent:api/postgres@0.1.0"),
            Some("postgres")
        );
        assert_eq!(capability_of_import("wasi:cli/environment@0.2.6"), None);
    }
}
