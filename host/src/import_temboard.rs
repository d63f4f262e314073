//! `dbagent import-temboard`: turns a temBoard agent INI configuration into
//! the equivalent dbagent TOML, so an installation can switch agents
//! without re-entering its settings.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// temBoard agent plugins that dbagent bundles under the same name.
const TEMBOARD_PLUGINS: &[&str] = &[
    "activity",
    "administration",
    "dashboard",
    "maintenance",
    "monitoring",
    "pgconf",
    "statements",
];

type Ini = BTreeMap<String, BTreeMap<String, String>>;

/// Parses temBoard's INI dialect: `[section]`, `key = value`, `#`/`;` comments.
fn parse_ini(text: &str) -> Result<Ini> {
    let mut ini = Ini::new();
    let mut section = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_lowercase();
            ini.entry(section.clone()).or_default();
            continue;
        }
        let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) else {
            bail!("line {}: expected `key = value`, found {line:?}", n + 1);
        };
        if section.is_empty() {
            bail!("line {}: setting outside of any [section]", n + 1);
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        ini.entry(section.clone())
            .or_default()
            .insert(key.trim().to_lowercase(), value.to_string());
    }
    Ok(ini)
}

/// A TOML string literal.
fn quoted(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// The plugin list of `[temboard] plugins`: a JSON-ish list or comma-separated names.
fn plugin_list(value: &str) -> Vec<String> {
    value
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|s| s.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The configuration temBoard's agent reads from `path`: the file, then
/// each `*.conf` of `<path>.d/` in name order, later values winning.
fn read_with_drop_ins(path: &Path) -> Result<Ini> {
    let read = |file: &Path| -> Result<Ini> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        parse_ini(&text)
            .with_context(|| format!("{} is not a temBoard agent configuration", file.display()))
    };
    let mut ini = read(path)?;
    let mut dir = path.as_os_str().to_owned();
    dir.push(".d");
    let dir = std::path::PathBuf::from(dir);
    if dir.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        files.sort();
        for file in files {
            for (section, values) in read(&file)? {
                ini.entry(section).or_default().extend(values);
            }
        }
    }
    Ok(ini)
}

/// (pg_ctl, data directory) out of temBoard's `[administration] pg_ctl`
/// command template, e.g. `/usr/lib/postgresql/15/bin/pg_ctl %s -D /var/lib/postgresql/15/main`;
/// `None` for a template that is not a plain pg_ctl call (sudo, a script).
fn pg_ctl_template(template: &str) -> Option<(String, String)> {
    let words: Vec<&str> = template.split_whitespace().collect();
    let program = *words.first()?;
    if !program.ends_with("/pg_ctl") && program != "pg_ctl" {
        return None;
    }
    let mut data = None;
    let mut rest = words[1..].iter();
    while let Some(word) = rest.next() {
        match *word {
            "%s" => {}
            "-D" | "--pgdata" => data = Some(rest.next()?.to_string()),
            w if w.starts_with("--pgdata=") => data = Some(w["--pgdata=".len()..].to_string()),
            w if w.starts_with("-D") && w.len() > 2 => data = Some(w[2..].to_string()),
            _ => return None,
        }
    }
    Some((program.to_string(), data?))
}

/// dbagent's level for temBoard's (Python logging's) level name.
fn log_level(level: &str) -> Option<&'static str> {
    Some(match level.to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "CRITICAL" => "error",
        _ => return None,
    })
}

/// The text of one temBoard configuration, without drop-ins.
#[cfg(test)]
pub fn convert(text: &str, origin: &Path) -> Result<String> {
    let ini = parse_ini(text)
        .with_context(|| format!("{} is not a temBoard agent configuration", origin.display()))?;
    convert_ini(&ini, origin)
}

fn convert_ini(ini: &Ini, origin: &Path) -> Result<String> {
    let empty = BTreeMap::new();
    let section = |name: &str| ini.get(name).unwrap_or(&empty);
    let temboard = section("temboard");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported from {} by dbagent import-temboard.",
        origin.display()
    );
    let _ = writeln!(out, "# Every key is documented in docs/CONFIG.md.\n");

    let _ = writeln!(out, "[server]");
    let address = temboard
        .get("address")
        .map(String::as_str)
        .unwrap_or("0.0.0.0");
    let port = temboard.get("port").map(String::as_str).unwrap_or("2345");
    let port: u16 = port
        .parse()
        .with_context(|| format!("[temboard] port = {port:?} is not a port"))?;
    let listen = if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    };
    let _ = writeln!(out, "listen = {}", quoted(&listen));
    if let Some(home) = temboard.get("home") {
        let _ = writeln!(out, "data_dir = {}", quoted(home));
    }
    if let Some(hostname) = temboard.get("hostname").filter(|h| !h.is_empty()) {
        let _ = writeln!(out, "hostname = {}", quoted(hostname));
    }
    if let (Some(cert), Some(key)) = (temboard.get("ssl_cert_file"), temboard.get("ssl_key_file")) {
        let _ = writeln!(out, "tls_cert = {}", quoted(cert));
        let _ = writeln!(out, "tls_key = {}", quoted(key));
    }

    let _ = writeln!(out, "\n[auth]");
    if let Some(users) = temboard.get("users") {
        let _ = writeln!(out, "users_file = {}", quoted(users));
    }
    if let Some(key) = temboard.get("key").filter(|k| !k.is_empty()) {
        let _ = writeln!(out, "key = {}", quoted(key));
    }

    let postgresql = section("postgresql");
    let _ = writeln!(out, "\n[postgresql]");
    for key in ["host", "user", "password", "dbname"] {
        if let Some(value) = postgresql.get(key) {
            let _ = writeln!(out, "{key} = {}", quoted(value));
        }
    }
    if let Some(port) = postgresql.get("port") {
        let port: u16 = port
            .parse()
            .with_context(|| format!("[postgresql] port = {port:?} is not a port"))?;
        let _ = writeln!(out, "port = {port}");
    }
    if let Some(template) = section("administration").get("pg_ctl") {
        match pg_ctl_template(template) {
            Some((program, data)) => {
                let _ = writeln!(out, "pg_ctl = {}", quoted(&program));
                let _ = writeln!(out, "data_directory = {}", quoted(&data));
            }
            None => {
                let _ = writeln!(
                    out,
                    "# [administration] pg_ctl = {template:?} is not a plain pg_ctl call:\n# set pg_ctl, data_directory and pg_ctl_user here (docs/CONFIG.md)."
                );
            }
        }
    }

    let logging = section("logging");
    if !logging.is_empty() {
        let _ = writeln!(out, "\n[logging]");
        if let Some(level) = logging.get("level").and_then(|l| log_level(l)) {
            let _ = writeln!(out, "level = {}", quoted(level));
        }
        match logging
            .get("method")
            .map(|m| m.to_ascii_lowercase())
            .as_deref()
        {
            Some("file") => {
                if let Some(file) = logging.get("destination") {
                    let _ = writeln!(out, "file = {}", quoted(file));
                }
            }
            Some("syslog") => {
                let _ = writeln!(
                    out,
                    "# temBoard logged to syslog; dbagent logs to standard error, which\n# journald (or the service manager) passes on to syslog."
                );
            }
            _ => {}
        }
    }

    if let Some(list) = temboard.get("plugins") {
        let enabled = plugin_list(list);
        for name in TEMBOARD_PLUGINS
            .iter()
            .filter(|p| !enabled.iter().any(|e| e == *p))
        {
            let _ = writeln!(out, "\n[plugin.{name}]\nenabled = false");
        }
    }
    for (plugin, keys) in [
        ("dashboard", &["scheduler_interval", "history_length"][..]),
        ("statements", &["dbname"][..]),
    ] {
        let values: Vec<(&str, &String)> = keys
            .iter()
            .filter_map(|k| Some((*k, section(plugin).get(*k)?)))
            .collect();
        if values.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n[plugin.{plugin}.settings]");
        for (key, value) in values {
            match value.parse::<i64>() {
                Ok(number) => writeln!(out, "{key} = {number}"),
                Err(_) => writeln!(out, "{key} = {}", quoted(value)),
            }
            .ok();
        }
    }
    Ok(out)
}

/// Reads `ini_path` and writes the TOML to `output`, or to stdout when `None`.
pub fn run(ini_path: &Path, output: Option<&Path>) -> Result<()> {
    let toml = convert_ini(&read_with_drop_ins(ini_path)?, ini_path)?;
    match output {
        Some(path) => {
            std::fs::write(path, toml)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{toml}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[temboard]
# the agent
port = 2346
address = 192.0.2.10
users = /etc/temboard-agent/users
plugins = ["activity", "dashboard", "maintenance"]
ssl_cert_file = /etc/temboard-agent/agent.pem
ssl_key_file = /etc/temboard-agent/agent.key
key = SECRETKEYTOCHANGE
home = /var/lib/temboard-agent/main

[postgresql]
host = /var/run/postgresql
port = 5433
user = postgres
password = se'cret
dbname = postgres
instance = main

[dashboard]
scheduler_interval = 2
history_length = 150

[statements]
dbname = postgres
"#;

    #[test]
    fn converts_a_sample() {
        let toml = convert(SAMPLE, Path::new("/etc/temboard-agent/temboard-agent.conf")).unwrap();
        let config =
            crate::config::Config::parse(&toml, Path::new("/etc/dbagent/dbagent.toml")).unwrap();
        assert_eq!(config.server.listen.to_string(), "192.0.2.10:2346");
        assert_eq!(config.postgresql.port, 5433);
        assert_eq!(config.postgresql.password.as_deref(), Some("se'cret"));
        assert_eq!(config.auth.key.as_deref(), Some("SECRETKEYTOCHANGE"));
        assert_eq!(
            config.auth.users_file,
            Path::new("/etc/temboard-agent/users")
        );
        assert!(config.server.tls.is_some());
        assert_eq!(config.plugin["pgconf"].enabled, Some(false));
        assert_eq!(config.plugin.get("activity").and_then(|p| p.enabled), None);
        let settings = config.plugin["dashboard"].settings.as_ref().unwrap();
        assert_eq!(settings["history_length"].as_integer(), Some(150));
    }

    #[test]
    fn hostname_pg_ctl_logging_and_drop_ins() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("temboard-agent.conf");
        std::fs::write(
            &main,
            "[temboard]\nhostname = db1.example.org\nport = 2345\n[logging]\nmethod = file\ndestination = /var/log/ta.log\nlevel = WARNING\n[administration]\npg_ctl = '/usr/lib/postgresql/15/bin/pg_ctl %s -D /var/lib/postgresql/15/main'\n",
        )
        .unwrap();
        let drop_ins = dir.path().join("temboard-agent.conf.d");
        std::fs::create_dir(&drop_ins).unwrap();
        std::fs::write(drop_ins.join("10-port.conf"), "[temboard]\nport = 2399\n").unwrap();
        std::fs::write(drop_ins.join("20-port.conf"), "[temboard]\nport = 2400\n").unwrap();
        std::fs::write(drop_ins.join("ignored.txt"), "[temboard]\nport = 1\n").unwrap();
        let toml = convert_ini(&read_with_drop_ins(&main).unwrap(), &main).unwrap();
        let config =
            crate::config::Config::parse(&toml, Path::new("/etc/dbagent/dbagent.toml")).unwrap();
        assert_eq!(config.server.listen.port(), 2400, "{toml}");
        assert_eq!(config.server.hostname.as_deref(), Some("db1.example.org"));
        assert_eq!(config.logging.level, "warn");
        assert_eq!(
            config.logging.file.as_deref(),
            Some(Path::new("/var/log/ta.log"))
        );
        assert_eq!(
            config.postgresql.control.program.as_deref(),
            Some(Path::new("/usr/lib/postgresql/15/bin/pg_ctl"))
        );
        assert_eq!(
            config.postgresql.control.data_directory.as_deref(),
            Some(Path::new("/var/lib/postgresql/15/main"))
        );
        assert_eq!(pg_ctl_template("sudo systemctl %s postgresql"), None);
    }

    #[test]
    fn bad_port_is_reported() {
        let err = convert("[temboard]\nport = x\n", Path::new("a.conf")).unwrap_err();
        assert!(format!("{err:#}").contains("port"));
    }
}
