//! The HTTP front's building blocks: connection limits and hyper's own
//! error answers.

pub mod canned_errors;
pub mod connections;
pub mod percent;
