//! `dbagent`: a remote-control agent for database servers whose API areas
//! are sandboxed WebAssembly plugins.

mod access;
mod auth;
mod authn;
mod capabilities;
mod config;
mod core_api;
mod import_temboard;
mod manifest;
mod reload;
mod runtime;
mod scheduler;
mod server;
mod store;
mod tls;

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
    /// Check a configuration and its plugins without serving, then exit.
    Check {
        /// The TOML configuration file (see docs/CONFIG.md).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
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
    use auth::users::{Users, validate_password, validate_username};
    match action {
        UserAction::Add { name, config } => {
            let config = config::Config::load(&config)?;
            validate_username(&name)?;
            let password = auth::users::read_password_from_stdin()?;
            validate_password(&password)?;
            Users::set_password(&config.auth.users_file, &name, &password)?;
            eprintln!(
                "user '{name}' saved in {}",
                config.auth.users_file.display()
            );
            Ok(())
        }
        UserAction::Del { name, config } => {
            let config = config::Config::load(&config)?;
            if Users::delete(&config.auth.users_file, &name)? {
                eprintln!(
                    "user '{name}' removed from {}",
                    config.auth.users_file.display()
                );
                Ok(())
            } else {
                anyhow::bail!("no user '{name}' in {}", config.auth.users_file.display())
            }
        }
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
        Command::Serve { config } => {
            let app = start(&config).await?;
            reload::on_sighup(Arc::clone(&app), config);
            scheduler::spawn(Arc::clone(&app));
            server::serve(app).await
        }
        Command::User { action } => users_command(action),
        Command::ImportTemboard { config, output } => {
            import_temboard::run(&config, output.as_deref())
        }
        Command::Check { config } => {
            let app = start(&config).await?;
            println!(
                "configuration {} is valid; {} plugins loaded",
                config.display(),
                app.plugins.len()
            );
            Ok(())
        }
    }
}

/// Loads the configuration and every plugin; any problem is a start-up error.
async fn start(config_path: &std::path::Path) -> Result<Arc<server::App>> {
    let config = config::Config::load(config_path)?;
    std::fs::create_dir_all(&config.server.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data directory {}: {e}",
            config.server.data_dir.display()
        )
    })?;
    let store = store::Store::open(&config.server.data_dir)?;
    let sampler = capabilities::proc_sampler::Sampler::new();
    sampler.spawn(config.system.sample_interval);
    let capabilities = Arc::new(capabilities::Capabilities {
        postgres: capabilities::pg_pool::PgPool::new(
            config.postgresql.clone(),
            Arc::clone(&sampler),
        ),
        system: sampler,
        notifications: capabilities::Notifier::new(store.clone(), config.notifications.keep),
        store: store.clone(),
        control: capabilities::control::Control::new(config.postgresql.control.clone()),
        running_jobs: capabilities::RunningJobs::default(),
        jobs_changed: tokio::sync::Notify::new(),
    });
    let sources = runtime::loader::collect(&config)?;
    let max_memory = runtime::loader::max_memory_bytes(&config, &sources)?;
    let runtime = runtime::Runtime::new(
        Arc::clone(&capabilities),
        config.runtime.max_instances,
        max_memory,
    )?;
    let (plugins, routes) = {
        let config = config.clone();
        tokio::task::block_in_place(|| runtime::loader::load(&runtime, &config, sources))?
    };
    // Connect once now so the process sampler knows the instance's
    // processes before the first request; a database that is down is not a
    // start-up error, the agent keeps trying on each request.
    match capabilities.postgres.get(None).await {
        Ok(_) => tracing::info!("connected to PostgreSQL"),
        Err(e) => tracing::warn!("PostgreSQL is not reachable yet: {}", e.message),
    }
    let users = auth::users::Users::load(&config.auth.users_file)?;
    tracing::info!(users = users.len(), users_file = %config.auth.users_file.display(), "users loaded");
    spawn_session_purge(store.clone(), config.auth.session_timeout);
    if users.is_empty() && config.auth.api_tokens.is_empty() {
        tracing::warn!(
            users_file = %config.auth.users_file.display(),
            "no users and no API tokens: nobody can log in; add one with `dbagent user add NAME --config FILE`"
        );
    }
    Ok(Arc::new(server::App::new(
        config, runtime, plugins, routes, store,
    )))
}

/// Deletes sessions nobody logged out of once they expire, so the store
/// does not grow with abandoned sessions.
fn spawn_session_purge(store: store::Store, idle: std::time::Duration) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            every.tick().await;
            let store = store.clone();
            let purged = tokio::task::spawn_blocking(move || {
                store.purge_expired_sessions(std::time::SystemTime::now(), idle)
            })
            .await;
            match purged {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::debug!(sessions = n, "purged expired sessions"),
                Ok(Err(e)) => tracing::warn!("cannot purge expired sessions: {e:#}"),
                Err(e) => tracing::warn!("cannot purge expired sessions: {e}"),
            }
        }
    });
}
