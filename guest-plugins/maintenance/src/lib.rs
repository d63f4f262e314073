//! temBoard's maintenance API.
//!
//! - read side ([`read`]): sizes, counts, statistics and estimated bloat of
//!   the instance, its databases, schemas, tables and indexes;
//! - actions ([`actions`]): VACUUM, ANALYZE and REINDEX, started now or at a
//!   given time, run as host jobs off the request path.
//!
//! Every name in a path is looked up in the catalog first ([`catalog`]):
//! an unknown one is a 404 naming it, and only catalog names reach SQL,
//! quoted.

mod actions;
mod catalog;
mod read;

use dbagent_sdk::{Error, Request, Response, Router};

fn handle(req: &Request) -> Result<Response, Error> {
    use actions::*;
    Router::new()
        .get("/", read::instance)
        .get("/:db", read::database)
        .get("/:db/schema/:schema", read::schema)
        .get("/:db/schema/:schema/table/:table", read::table)
        // Actions: one handler per kind serves every level; which path
        // parameters are present says what the target is.
        .post("/:db/vacuum", post_vacuum)
        .post("/:db/schema/:schema/table/:table/vacuum", post_vacuum)
        .post("/:db/analyze", post_analyze)
        .post("/:db/schema/:schema/table/:table/analyze", post_analyze)
        .post("/:db/reindex", post_reindex)
        .post("/:db/schema/:schema/table/:table/reindex", post_reindex)
        .post("/:db/schema/:schema/index/:index/reindex", post_reindex)
        .get("/vacuum/scheduled", list_vacuum)
        .get("/:db/vacuum/scheduled", list_vacuum)
        .get("/:db/schema/:schema/vacuum/scheduled", list_vacuum)
        .get(
            "/:db/schema/:schema/table/:table/vacuum/scheduled",
            list_vacuum,
        )
        .get("/analyze/scheduled", list_analyze)
        .get("/:db/analyze/scheduled", list_analyze)
        .get("/:db/schema/:schema/analyze/scheduled", list_analyze)
        .get(
            "/:db/schema/:schema/table/:table/analyze/scheduled",
            list_analyze,
        )
        .get("/reindex/scheduled", list_reindex)
        .get("/:db/reindex/scheduled", list_reindex)
        .get("/:db/schema/:schema/reindex/scheduled", list_reindex)
        .get(
            "/:db/schema/:schema/table/:table/reindex/scheduled",
            list_reindex,
        )
        // The reference lists this alias of the schema level (it does not
        // filter on the table); `:index` and `:table` are ignored.
        .get(
            "/:db/schema/:schema/:index/table/:table/reindex/scheduled",
            list_reindex_in_schema,
        )
        .delete("/vacuum/:id", cancel_vacuum)
        .delete("/analyze/:id", cancel_analyze)
        .delete("/reindex/:id", cancel_reindex)
        .handle(req)
}

dbagent_sdk::export_plugin!(handle, init = actions::init, run_job = actions::run_job);
