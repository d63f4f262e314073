//! The agent's own log: `tracing` to standard error or to a file, at the
//! level of `[logging]` unless `RUST_LOG` says otherwise.

use crate::config::Logging;
use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

/// Logging for commands that run before (or without) a configuration.
pub fn init_default() {
    init_stderr(filter("info"));
}

/// Logging as `[logging]` asks.
pub fn init(logging: &Logging) -> Result<()> {
    let filter = filter(&logging.level);
    match &logging.file {
        None => init_stderr(filter),
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .init();
        }
    }
    Ok(())
}

fn filter(level: &str) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

fn init_stderr(filter: EnvFilter) {
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
