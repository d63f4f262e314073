//! Who may call the API: users who log in with a password (sessions), API tokens from the
//! configuration, and the brakes on password guessing.

pub mod sessions;
pub mod temboard_hash;
pub mod throttle;
pub mod tokens;
pub mod users;
