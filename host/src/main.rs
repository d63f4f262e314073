//! `dbagent`: a remote-control agent for database servers whose API areas
//! are sandboxed WebAssembly plugins.

mod app;
mod auth;
mod capabilities;
mod config;
mod dbops;
mod http;
mod import_temboard;
mod jobs;
mod logging;
mod percent;
mod plugins;
mod store;
mod telemetry;
mod template;
mod wit;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "dbagent", version, about = "Remote-control agent for database servers", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: serve the HTTP API with the bundled and drop-in plugins.
    Serve {
        /// The TOML configuration file (see docs/CONFIG.md).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Manage the users who may log in (the `[auth] users_file`).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Convert a temBoard agent INI configuration into dbagent TOML.
    ImportTemboard {
        /// The temBoard agent configuration, e.g. /etc/temboard-agent/temboard-agent.conf.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Where to write the TOML; standard output when absent.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Compile every enabled plugin into the compiled-code cache
    /// (`[runtime] cache_dir`), so that a start compiles nothing.
    Compile {
        /// The TOML configuration file (see docs/CONFIG.md).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Write a new plugin, ready to build outside any repository.
    Plugin {
        #[command(subcommand)]
        action: PluginAction,
    },
    /// Check a configuration and its plugins without serving, then exit.
    Check {
        /// The TOML configuration file (see docs/CONFIG.md).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum PluginAction {
    /// A plugin serving `GET /NAME` with one query through `postgres`: its
    /// manifest, WIT world, code, build script and README.
    New {
        /// Lower-case letters, digits and '-'.
        name: String,
        #[arg(long, value_enum, default_value = "rust")]
        lang: template::Lang,
        /// Where to write it; default: ./NAME.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Add a user, or change their password; the password is read from
    /// standard input (without echo on a terminal).
    Add {
        name: String,
        /// The TOML configuration file naming the users file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Remove a user.
    Del {
        name: String,
        /// The TOML configuration file naming the users file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
}

fn users_command(action: UserAction) -> Result<()> {
    use auth::users::{Users, check_login_shape, validate_username};
    match action {
        UserAction::Add { name, config } => {
            let config = config::Config::load(&config)?;
            validate_username(&name)?;
            let password = auth::users::read_password_from_stdin()?;
            check_login_shape(&name, &password)?;
            Users::set_password(&config.auth.users_file, &name, &password)?;
            eprintln!(
                "user '{name}' saved in {}",
                config.auth.users_file.display()
            );
            end_sessions_of(&config, &name);
            Ok(())
        }
        UserAction::Del { name, config } => {
            let config = config::Config::load(&config)?;
            if Users::delete(&config.auth.users_file, &name)? {
                eprintln!(
                    "user '{name}' removed from {}",
                    config.auth.users_file.display()
                );
                end_sessions_of(&config, &name);
                Ok(())
            } else {
                anyhow::bail!("no user '{name}' in {}", config.auth.users_file.display())
            }
        }
    }
}

/// Raises the soft limit on open files towards the hard one, so that the
/// connection limits, not the descriptor table, decide who is served; warns
/// when the hard limit is below what `max_connections` needs.
fn raise_open_files_limit(max_connections: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    // Connections, plus PostgreSQL connections, the state store, plugins' files.
    let wanted = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(256);
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < wanted => {
            let raised = wanted.min(hard);
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
                tracing::warn!("cannot raise the open files limit from {soft}: {e}");
            } else if raised < wanted {
                tracing::warn!(
                    limit = raised,
                    max_connections,
                    "the open files limit is below what [server] max_connections needs; new connections are turned away when it is reached"
                );
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot read the open files limit: {e}"),
    }
}

/// Ends the sessions of a user whose password changed or who was removed,
/// in the state store of a running (or stopped) agent. A running agent also
/// does it at its next reload; this makes it immediate.
fn end_sessions_of(config: &config::Config, name: &str) {
    if !config.server.data_dir.join(store::FILE_NAME).exists() {
        return;
    }
    match store::Store::open(&config.server.data_dir).and_then(|s| s.delete_sessions_of(name)) {
        Ok(0) => {}
        Ok(n) => eprintln!("ended {n} session(s) of '{name}'"),
        Err(e) => eprintln!(
            "warning: cannot end the sessions of '{name}' now ({e:#}); they end at the agent's next reload"
        ),
    }
}

fn main() {
    // Large blocks (a password check's 19 MiB) always get their own
    // mapping, so freeing them gives the memory back to the system;
    // glibc's default would raise this threshold after the first free and
    // keep such blocks in per-thread arenas for good.
    // SAFETY: mallopt only sets allocator parameters, before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    let cli = Cli::parse();
    let outcome = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => Err(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    if let Err(e) = outcome {
        eprintln!("dbagent: error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { config: path } => {
            let config = config::Config::load(&path)?;
            logging::init(&config.logging)?;
            raise_open_files_limit(config.server.max_connections);
            let app = app::start(config, &http::routes::native_paths()).await?;
            app::reload::on_sighup(Arc::clone(&app), path);
            jobs::scheduler::spawn(Arc::clone(&app.services.jobs), Arc::clone(&app.plugins));
            http::server::serve(app).await
        }
        Command::User { action } => {
            logging::init_default();
            users_command(action)
        }
        Command::Compile { config } => {
            logging::init_default();
            let config = config::Config::load(&config)?;
            let done = tokio::task::block_in_place(|| plugins::compile::compile_all(&config))?;
            println!(
                "compiled {} plugin(s){}; {} already in {}",
                done.compiled.len(),
                if done.compiled.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", done.compiled.join(", "))
                },
                done.cached,
                config.runtime.cache_dir.display()
            );
            Ok(())
        }
        Command::Plugin {
            action: PluginAction::New { name, lang, dir },
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let written = template::create(&name, lang, &dir)?;
            println!(
                "wrote {} files into {}: build with {}/build.sh, then see {}/README.md",
                written.len(),
                dir.display(),
                dir.display(),
                dir.display()
            );
            Ok(())
        }
        Command::ImportTemboard { config, output } => {
            logging::init_default();
            import_temboard::run(&config, output.as_deref())
        }
        Command::Check { config } => {
            logging::init_default();
            let app = app::start(
                config::Config::load(&config)?,
                &http::routes::native_paths(),
            )
            .await?;
            println!(
                "configuration {} is valid; {} plugins loaded",
                config.display(),
                app.plugins.current().list.len()
            );
            Ok(())
        }
    }
}
