//! Who a plugin call runs for.

use std::sync::Arc;
use std::time::Instant;

/// Who a plugin call runs for, what every capability's state may need.
#[derive(Debug, Clone)]
pub struct Call {
    pub plugin: Arc<str>,
    /// The authenticated user of a request.
    pub user: Option<String>,
    /// The id of the job being run, if the call runs one.
    pub job: Option<String>,
    /// When the call must be over.
    pub deadline: Instant,
}

impl Call {
    /// The name notifications are attributed to: the user, else the plugin.
    pub fn actor(&self) -> String {
        self.user.clone().unwrap_or_else(|| self.plugin.to_string())
    }
}
