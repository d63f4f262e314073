//! The HTTP front: the listener (`server`), where a request goes
//! (`dispatch`), the one table of routes the host serves itself (`routes`,
//! answered by `core`), and the responses it writes (`response`).

pub mod canned_errors;
pub mod connections;
pub mod core;
pub mod dispatch;
pub mod openapi;
pub mod response;
pub mod routes;
pub mod server;
pub mod tls;
