//! Agent-wide facts for `/status`.

/// Agent-wide facts for `/status`, fixed at start-up except the reload time.
pub struct AgentInfo {
    pub start_datetime: String,
    pub reload_datetime: std::sync::RwLock<String>,
    pub os_user: String,
    pub pid: u32,
}

impl AgentInfo {
    pub fn new() -> AgentInfo {
        let now = local_datetime();
        AgentInfo {
            start_datetime: now.clone(),
            reload_datetime: std::sync::RwLock::new(now),
            os_user: os_user(),
            pid: std::process::id(),
        }
    }

    pub fn mark_reloaded(&self) {
        if let Ok(mut at) = self.reload_datetime.write() {
            *at = local_datetime();
        }
    }
}

/// temBoard shows agent times in local time without a zone, e.g. "2018-06-15T15:42:42".
pub fn local_datetime() -> String {
    chrono::Local::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The name of the OS user the agent runs as.
fn os_user() -> String {
    match nix::unistd::User::from_uid(nix::unistd::geteuid()) {
        Ok(Some(user)) => user.name,
        _ => std::env::var("USER").unwrap_or_default(),
    }
}
