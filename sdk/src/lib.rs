//! The SDK for dbagent plugins.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2` that exports
//! the `dbagent:api/handler` interface. This crate gives it everything it
//! needs to do so without touching the raw bindings:
//!
//! - [`Router`]: method + path patterns (`/:db/schema/:schema`) with decoded parameters;
//! - [`Request`] / [`Response`]: query parameters, JSON bodies, JSON answers;
//! - [`Error`]: an error that carries its HTTP status and renders as `{"error": "..."}`;
//! - [`pg`]: typed queries on the managed PostgreSQL instance, rows by column name;
//! - [`quote_ident`] / [`quote_literal`]: safe quoting where SQL needs an identifier;
//! - [`log`] and [`system`]: the host's log and OS probes.
//!
//! ```ignore
//! use dbagent_sdk::{Request, Response, Error, Router};
//!
//! fn hello(_req: &Request, _params: &dbagent_sdk::Params) -> Result<Response, Error> {
//!     Ok(Response::json(200, &serde_json::json!({"hello": "world"})))
//! }
//!
//! fn handle(req: &Request) -> Result<Response, Error> {
//!     Router::new().get("/", hello).handle(req)
//! }
//!
//! dbagent_sdk::export_plugin!(handle);
//! ```

// Lets generated code name this crate by its public path from inside it too.
extern crate self as dbagent_sdk;

/// The raw bindings generated from the crate's copy of the `dbagent:api`
/// WIT package (`wit/`, kept identical to the repository's by a test).
///
/// Generated for `sdk-plugin`, every plugin world at once: a component
/// imports only the interfaces whose functions it calls, so a plugin that
/// never calls `control` does not import it. With the `action-module`
/// feature, for `sdk-action-module` instead: an engine's action module
/// (see [`action`]), which serves no HTTP.
#[cfg(not(feature = "action-module"))]
pub mod bindings {
    wit_bindgen::generate!({
        world: "sdk-plugin",
        path: "wit",
        pub_export_macro: true,
        default_bindings_module: "dbagent_sdk::bindings",
        runtime_path: "dbagent_sdk::__private::wit_bindgen::rt",
    });
}

#[cfg(feature = "action-module")]
pub mod bindings {
    wit_bindgen::generate!({
        world: "sdk-action-module",
        path: "wit",
        pub_export_macro: true,
        default_bindings_module: "dbagent_sdk::bindings",
        runtime_path: "dbagent_sdk::__private::wit_bindgen::rt",
    });
}

#[cfg(feature = "action-module")]
pub mod action;
#[cfg(not(feature = "action-module"))]
pub mod barman;
#[cfg(not(feature = "action-module"))]
pub mod control;
#[cfg(not(feature = "action-module"))]
pub mod databases;
mod error;
#[cfg(not(feature = "action-module"))]
mod http;
#[cfg(feature = "action-module")]
pub mod influxdb;
#[cfg(not(feature = "action-module"))]
pub mod jobs;
pub mod log;
#[cfg(not(feature = "action-module"))]
pub mod metrics;
#[cfg(feature = "action-module")]
pub mod mysql;
#[cfg(not(feature = "action-module"))]
pub mod notifications;
#[cfg(not(feature = "action-module"))]
pub mod operations;
pub mod pg;
mod quote;
#[cfg(feature = "action-module")]
pub mod redis;
#[cfg(not(feature = "action-module"))]
mod router;
#[cfg(not(feature = "action-module"))]
pub mod settings;
#[cfg(not(feature = "action-module"))]
pub mod store;
#[cfg(not(feature = "action-module"))]
pub mod system;

pub use error::Error;
#[cfg(not(feature = "action-module"))]
pub use http::{Request, Response};
pub use quote::{quote_ident, quote_literal};
#[cfg(not(feature = "action-module"))]
pub use router::{Params, Router};

#[doc(hidden)]
#[cfg(feature = "action-module")]
pub mod __private {
    pub use wit_bindgen;
}

#[doc(hidden)]
#[cfg(not(feature = "action-module"))]
pub mod __private {
    pub use wit_bindgen;

    use crate::bindings::dbagent::api::http_types;

    /// The start-up hook of a plugin without one.
    pub fn no_init() -> Result<(), String> {
        Ok(())
    }

    /// The job runner of a plugin without jobs.
    pub fn no_jobs(job: &crate::jobs::Job) -> Result<(), String> {
        Err(format!(
            "this plugin runs no jobs (asked to run '{}')",
            job.name
        ))
    }

    /// Runs the plugin's handler and turns its error into a JSON response.
    pub fn dispatch(
        request: http_types::Request,
        handler: fn(&crate::Request) -> Result<crate::Response, crate::Error>,
    ) -> http_types::Response {
        let request = crate::Request::from_raw(request);
        let response = match handler(&request) {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        response.into_raw()
    }
}

#[cfg(not(feature = "action-module"))]
/// Exports `handler` (a `fn(&Request) -> Result<Response, Error>`) as the
/// plugin's `handle` entry point. Plugins with jobs also name their
/// start-up hook and job runner:
///
/// ```ignore
/// dbagent_sdk::export_plugin!(handle, init = init, run_job = run_job);
/// // fn init() -> Result<(), String>
/// // fn run_job(job: &dbagent_sdk::jobs::Job) -> Result<(), String>
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($handler:path) => {
        $crate::export_plugin!(
            $handler,
            init = $crate::__private::no_init,
            run_job = $crate::__private::no_jobs
        );
    };
    ($handler:path, init = $init:path, run_job = $run_job:path) => {
        struct __DbagentPlugin;

        impl $crate::bindings::exports::dbagent::api::handler::Guest for __DbagentPlugin {
            fn handle(
                request: $crate::bindings::dbagent::api::http_types::Request,
            ) -> $crate::bindings::dbagent::api::http_types::Response {
                $crate::__private::dispatch(request, $handler)
            }
        }

        impl $crate::bindings::exports::dbagent::api::lifecycle::Guest for __DbagentPlugin {
            fn init() -> Result<(), String> {
                $init()
            }

            fn run_job(job: $crate::jobs::Job) -> Result<(), String> {
                $run_job(&job)
            }
        }

        $crate::bindings::export!(__DbagentPlugin with_types_in $crate::bindings);
    };
}
