//! The agent's notification feed (`GET /notifications`).

/// Records `message` in the feed, attributed to the requesting user: use it
/// for changes an operator wants to see later (a kill, a setting changed).
pub fn notify(message: &str) {
    crate::bindings::dbagent::api::notifications::notify(message);
}
