//! The application: the shared services every request and job uses, the
//! loaded plugins, and start-up. The HTTP front (`crate::http`) serves it;
//! nothing here knows about HTTP.

pub mod info;
pub mod reload;

use crate::auth::{Auth, AuthSettings};
use crate::capabilities::barman::jobs::Jobs;
use crate::capabilities::control::Control;
use crate::capabilities::databases::{self, ActionRunner};
use crate::capabilities::notifications::Notifier;
use crate::capabilities::postgres;
use crate::capabilities::system::sampler::Sampler;
use crate::capabilities::{influxdb, mysql, operations, redis};
use crate::config::Config;
use crate::dbops::DbOps;
use crate::jobs;
use crate::plugins::live::Plugins;
use crate::plugins::state::Services;
use crate::plugins::{ActionTable, PluginSet, loader, runtime::Runtime};
use crate::store::{SessionLimits, Store};
use anyhow::Result;
use info::AgentInfo;
use std::sync::Arc;

pub struct App {
    pub info: AgentInfo,
    /// The configuration the agent started with (API tokens left out: the
    /// authentication keeps their digests). What a reload may change lives
    /// where it is used: [`Auth`], the plugins' grants, the notifier.
    pub config: Config,
    pub services: Arc<Services>,
    /// The plugins in service; a reload swaps them.
    pub plugins: Arc<Plugins>,
    pub store: Store,
    pub auth: Auth,
}

/// Loads every plugin and builds the shared services; any problem is a
/// start-up error. `native_paths` are the paths the host serves itself,
/// which no plugin may claim.
pub async fn start(mut config: Config, native_paths: &[&'static str]) -> Result<Arc<App>> {
    std::fs::create_dir_all(&config.server.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data directory {}: {e}",
            config.server.data_dir.display()
        )
    })?;
    let store = Store::open(&config.server.data_dir)?;
    let sampler = Sampler::new(config.server.hostname.clone());
    sampler.spawn(config.system.sample_interval);
    let postgres = Arc::new(postgres::Service::new(&config, &sampler));
    let notifier = Arc::new(Notifier::new(store.clone(), config.notifications.keep));
    let mysql = mysql::service(&config.databases);
    let redis = redis::service(&config.databases);
    let influxdb = influxdb::service(&config.databases);
    let databases = Arc::new(databases::Service::new(
        &config,
        &store,
        &databases::Engines {
            postgres: &postgres,
            mysql: &mysql,
            redis: &redis,
            influxdb: &influxdb,
        },
        sampler.host().hostname,
    ));
    let control = Arc::new(Control::new(config.postgresql.control.clone()));
    let barman = Jobs::start(
        config.backups.clone(),
        store.clone(),
        &config.server.data_dir,
    )
    .await;
    let ops = DbOps::new(
        Arc::clone(&control),
        Arc::clone(&barman),
        store.clone(),
        Arc::clone(postgres.managed()),
        config.postgresql.clone(),
        Arc::clone(&notifier),
    );
    // Before interrupted operations end as errors: an upgrade the last stop
    // interrupted is finished or rolled back, and says so itself.
    ops.resume_after_restart().await;
    fail_interrupted_operations(&store).await;
    ops.spawn_periodic_backups(databases.configured());
    databases.set_ops(Arc::new(ops));
    let services = Arc::new(Services {
        databases,
        jobs: Arc::new(jobs::service::Service::new(
            store.clone(),
            Arc::clone(&postgres),
        )),
        postgres,
        sampler,
        notifier: Arc::clone(&notifier),
        store: store.clone(),
        control,
        barman,
    });
    let sources = loader::collect(&config)?;
    let max_memory = loader::max_memory_bytes(&config, &sources)?;
    let runtime = Arc::new(Runtime::new(
        Arc::clone(&services),
        config.runtime.max_instances,
        max_memory,
    )?);
    crate::plugins::compile::ahead_in_child(&config, runtime.engine(), &sources);
    let loading = std::time::Instant::now();
    let (list, routes) =
        tokio::task::block_in_place(|| loader::load(&runtime, &config, sources, native_paths))?;
    let actions = ActionTable::build(&runtime, &list).await?;
    tracing::info!(
        plugins = list.len(),
        elapsed_ms = loading.elapsed().as_millis() as u64,
        "plugins ready"
    );
    // Connect once now so the process sampler knows the instance's
    // processes before the first request; a database that is down is not a
    // start-up error, the agent keeps trying on each request.
    let deadline = std::time::Instant::now() + config.postgresql.connect_timeout;
    match services.postgres.managed().get(None, deadline).await {
        Ok(_) => tracing::info!("connected to PostgreSQL"),
        Err(e) => tracing::warn!("PostgreSQL is not reachable yet: {}", e.message),
    }
    let users = crate::auth::users::Users::load(&config.auth.users_file)?;
    tracing::info!(users = users.len(), users_file = %config.auth.users_file.display(), "users loaded");
    let auth_settings = AuthSettings::from_config(&config);
    spawn_session_purge(store.clone(), auth_settings.sessions);
    if users.is_empty() && config.auth.api_tokens.is_empty() {
        let binary = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "dbagent".into());
        tracing::warn!(
            users_file = %config.auth.users_file.display(),
            "no users and no API tokens: nobody can log in; add one with `{binary} user add NAME --config {}`",
            config.file.display()
        );
    }
    // The plain tokens leave memory with the configuration text.
    config.auth.api_tokens.clear();
    let plugins = Arc::new(Plugins::new(
        PluginSet {
            runtime,
            list,
            routes,
            actions,
            openapi: Default::default(),
        },
        native_paths,
    ));
    let runner: Arc<dyn ActionRunner> = Arc::clone(&plugins) as Arc<dyn ActionRunner>;
    services.databases.set_runner(Arc::downgrade(&runner));
    Ok(Arc::new(App {
        info: AgentInfo::new(),
        config,
        auth: Auth::new(auth_settings, store.clone(), notifier),
        services,
        plugins,
        store,
    }))
}

/// Operations a stopped agent left under way end as `error`, never stuck
/// `running` (`GET /api/operations/:id` says why).
async fn fail_interrupted_operations(store: &Store) {
    let store = store.clone();
    let failed = tokio::task::spawn_blocking(move || {
        store.fail_interrupted_operations(operations::INTERRUPTED, &operations::now())
    })
    .await;
    match failed {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::warn!(
            operations = n,
            "operations interrupted by the last stop ended as errors"
        ),
        Ok(Err(e)) => tracing::error!("cannot end interrupted operations: {e:#}"),
        Err(e) => tracing::error!("cannot end interrupted operations: {e}"),
    }
}

/// Deletes sessions nobody logged out of once they expire, so the store
/// does not grow with abandoned sessions.
fn spawn_session_purge(store: Store, limits: SessionLimits) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            every.tick().await;
            let store = store.clone();
            let purged = tokio::task::spawn_blocking(move || {
                store.purge_expired_sessions(std::time::SystemTime::now(), limits)
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
