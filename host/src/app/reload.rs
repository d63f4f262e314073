//! SIGHUP: re-read the configuration and apply what can change while
//! serving (users file, key, tokens, session timeout, grants, notification
//! retention), and the plugins: drop-ins added, replaced or removed, and
//! plugin settings. A bad file is rejected with a log line; the old settings
//! stay.

use super::App;
use crate::auth::AuthSettings;
use crate::config::Config;
use crate::plugins::loader::{describe_missing, missing_grants};
use std::path::PathBuf;
use std::sync::Arc;

pub fn on_sighup(app: Arc<App>, config_path: PathBuf) {
    tokio::spawn(async move {
        let mut hangups =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(signal) => signal,
                Err(e) => {
                    tracing::error!("cannot listen for SIGHUP; reloads are off: {e}");
                    return;
                }
            };
        while hangups.recv().await.is_some() {
            reload(&app, &config_path).await;
        }
    });
}

pub async fn reload(app: &App, config_path: &std::path::Path) {
    let (config, users) = match Config::load(config_path).and_then(|c| {
        let users = crate::auth::users::Users::load(&c.auth.users_file)?;
        Ok((c, users))
    }) {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!(
                "configuration reload rejected, the previous configuration stays in force: {e:#}"
            );
            return;
        }
    };
    warn_about_restart_only_changes(&app.config, &config);
    app.plugins.reload(&config).await;
    // A version kept in service because its successor was refused answers
    // to the new grants too.
    for plugin in &app.plugins.current().list {
        let missing = missing_grants(&config, &plugin.manifest, plugin.bundled);
        if missing.is_empty() {
            if plugin.disabled_reason().is_some() {
                tracing::info!(plugin = %plugin.name, "plugin enabled again by reload");
            }
            plugin.set_disabled(None);
        } else {
            let reason = describe_missing(&config, &plugin.name, &missing);
            tracing::warn!(plugin = %plugin.name, "plugin disabled by reload: {reason}");
            plugin.set_disabled(Some(reason));
        }
    }
    app.services.notifier.set_keep(config.notifications.keep);
    app.auth
        .replace_settings(AuthSettings::from_config(&config), &users)
        .await;
    app.info.mark_reloaded();
    app.services
        .notifier
        .notify("dbagent", "Configuration reloaded")
        .await;
    tracing::info!(config = %config_path.display(), "configuration reloaded");
}

fn warn_about_restart_only_changes(old: &Config, new: &Config) {
    let changed = [
        ("[server] listen", old.server.listen != new.server.listen),
        (
            "[server] data_dir",
            old.server.data_dir != new.server.data_dir,
        ),
        (
            "[server] tls_cert/tls_key",
            old.server.tls != new.server.tls,
        ),
        ("[plugins] dir", old.plugins_dir != new.plugins_dir),
        ("[postgresql]", old.postgresql != new.postgresql),
        ("[logging]", old.logging != new.logging),
    ];
    for (key, differs) in changed {
        if differs {
            tracing::warn!("{key} changed; it takes effect at the next restart");
        }
    }
}
