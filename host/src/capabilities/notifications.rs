use crate::runtime::bindings::dbagent::api::notifications::Host;
use crate::runtime::state::PluginState;

/// Longest message kept; the feed is for short lines.
const MAX_MESSAGE_CHARS: usize = 1024;

impl Host for PluginState {
    async fn notify(&mut self, message: String) {
        let message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        let user = self.user.clone().unwrap_or_else(|| self.plugin.to_string());
        tracing::info!(plugin = %self.plugin, user, "notification: {message}");
        self.capabilities
            .notifications
            .notify(&user, &message)
            .await;
    }
}
