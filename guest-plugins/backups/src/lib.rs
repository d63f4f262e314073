//! Backups over Barman, with barmaid's API
//! (`shared/api-reference/barmaid-backup-api.txt`):
//!
//! - `GET /api/servers[/:id]`, `GET /api/servers/:id/targets[/:target]`,
//!   `GET /api/servers/:id/backups[/:backup]`: Barman's servers, the
//!   configured recovery targets, the backups;
//! - `POST /api/recover_jobs` (a form or JSON), `GET /api/recover_jobs[/:id]`,
//!   `DELETE /api/recover_jobs/:id`: recoveries run in the background;
//! - beyond barmaid: `POST /api/servers/:id/backups` starts a backup
//!   (followed at `/api/backup_jobs/:id`), `GET /api/servers/:id/check`.
//!
//! The host runs Barman (`barman` capability) with command lines of its
//! own making; this plugin picks what to run and shapes the answers.

mod shape;

use dbagent_sdk::barman::{self, JobKind};
use dbagent_sdk::{Error, Params, Request, Response, Router, log};
use serde_json::{Value, json};

fn handle(req: &Request) -> Result<Response, Error> {
    match req.prefix.as_str() {
        "/api/recover_jobs" => Router::new()
            .get("/", recover_jobs)
            .post("/", create_recover_job)
            .get("/:id", |_, p| job(p, JobKind::Recover))
            .delete("/:id", |_, p| cancel(p, JobKind::Recover))
            .handle(req),
        "/api/backup_jobs" => Router::new()
            .get("/", backup_jobs)
            .get("/:id", |_, p| job(p, JobKind::Backup))
            .delete("/:id", |_, p| cancel(p, JobKind::Backup))
            .handle(req),
        _ => Router::new()
            .get("/", servers)
            .get("/:id", server)
            .get("/:id/check", check)
            .get("/:id/targets", targets)
            .get("/:id/targets/:target", target)
            .get("/:id/backups", backups)
            .post("/:id/backups", create_backup_job)
            .get("/:id/backups/:backup", backup)
            .handle(req),
    }
}

dbagent_sdk::export_plugin!(handle);

/// The ids of the backups of `server`, newest first.
fn backup_ids(list: &[Value]) -> Vec<Value> {
    list.iter().map(|b| b["backup_id"].clone()).collect()
}

fn target_ids(server: &str) -> Vec<String> {
    barman::targets(server).into_iter().map(|t| t.id).collect()
}

fn servers(_: &Request, _: &Params) -> Result<Response, Error> {
    let mut all = Vec::new();
    for id in barman::servers()? {
        let shown = barman::show_server(&id)?;
        let backups = barman::list_backups(&id)?;
        all.push(json!({
            "id": id,
            "pg_conn_ok": shape::pg_conn_ok(&shown),
            "active": shown["active"].as_bool().unwrap_or(false),
            "targets": target_ids(&id),
            "backups": backup_ids(&backups),
        }));
    }
    Ok(Response::ok(&all))
}

fn server(_: &Request, params: &Params) -> Result<Response, Error> {
    let id = params.get("id");
    let shown = barman::show_server(id)?;
    let backups = barman::list_backups(id)?;
    // Barman checks SSH only for servers that use it (rsync backups).
    let ssh_check_ok = if shown["ssh_command"].is_string() {
        let checks = barman::check(id)?;
        checks["ssh"]["status"] == "OK"
    } else {
        true
    };
    Ok(Response::ok(&shape::server(
        id,
        &shown,
        ssh_check_ok,
        &backup_ids(&backups),
        &target_ids(id),
    )))
}

fn check(_: &Request, params: &Params) -> Result<Response, Error> {
    let id = params.get("id");
    let checks = barman::check(id)?;
    let ok = checks
        .as_object()
        .is_some_and(|all| all.values().all(|c| c["status"] == "OK"));
    Ok(Response::ok(
        &json!({"server_id": id, "ok": ok, "checks": checks}),
    ))
}

/// The configured targets of a server Barman knows (404 otherwise).
fn known_targets(server: &str) -> Result<Vec<barman::Target>, Error> {
    if !barman::servers()?.iter().any(|s| s == server) {
        return Err(Error::not_found(format!("Unknown server '{server}'")));
    }
    Ok(barman::targets(server))
}

fn targets(_: &Request, params: &Params) -> Result<Response, Error> {
    let id = params.get("id");
    let all: Vec<Value> = known_targets(id)?
        .iter()
        .map(|t| shape::target(id, t))
        .collect();
    Ok(Response::ok(&all))
}

fn target(_: &Request, params: &Params) -> Result<Response, Error> {
    let (id, wanted) = (params.get("id"), params.get("target"));
    match known_targets(id)?.iter().find(|t| t.id == wanted) {
        Some(t) => Ok(Response::ok(&shape::target(id, t))),
        None => Err(Error::not_found(format!(
            "Unknown target '{wanted}' for server '{id}'"
        ))),
    }
}

fn backups(_: &Request, params: &Params) -> Result<Response, Error> {
    let id = params.get("id");
    let all: Vec<Value> = barman::list_backups(id)?
        .iter()
        .map(|b| {
            json!({
                "id": b["backup_id"],
                "server_id": id,
                "status": shape::lower(&b["status"]),
            })
        })
        .collect();
    Ok(Response::ok(&all))
}

fn backup(_: &Request, params: &Params) -> Result<Response, Error> {
    let (id, backup_id) = (params.get("id"), params.get("backup"));
    let shown = barman::show_backup(id, backup_id)?;
    Ok(Response::ok(&shape::backup(id, &shown)))
}

fn create_backup_job(_: &Request, params: &Params) -> Result<Response, Error> {
    let job = barman::start_backup(params.get("id"))?;
    log::info(&format!(
        "backup of {} queued as job {}",
        job.server, job.id
    ));
    Ok(Response::json(201, &shape::job(&job, false)))
}

/// The fields of a POST body: a form (barmaid's clients) or a JSON object.
fn fields(req: &Request) -> Result<Vec<(String, String)>, Error> {
    let is_json = req
        .header("content-type")
        .is_some_and(|t| t.to_ascii_lowercase().contains("json"))
        || req.body.first() == Some(&b'{');
    if !is_json {
        return req.form();
    }
    let body: Value = req.json()?;
    let Value::Object(map) = body else {
        return Err(Error::bad_request("the body must be a JSON object"));
    };
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            Value::Null => None,
            other => Some((k, other.to_string())),
        })
        .collect())
}

fn create_recover_job(req: &Request, _: &Params) -> Result<Response, Error> {
    let fields = fields(req)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let required = |name: &str| {
        field(name).ok_or_else(|| Error::bad_request(format!("missing parameter: {name}")))
    };
    let (server, target, backup_id) = (
        required("server")?,
        required("target")?,
        required("backup_id")?,
    );
    let job = barman::start_recover(server, target, backup_id, field("target_time"))?;
    log::info(&format!(
        "recover of {server} backup {backup_id} to target {target} queued as job {}",
        job.id
    ));
    Ok(Response::json(201, &shape::job(&job, false)))
}

fn list_jobs(kind: JobKind) -> Result<Response, Error> {
    let all: Vec<Value> = barman::jobs(Some(kind))?
        .iter()
        .map(|j| json!({"id": j.id, "status": shape::status(j.status)}))
        .collect();
    Ok(Response::ok(&all))
}

fn recover_jobs(_: &Request, _: &Params) -> Result<Response, Error> {
    list_jobs(JobKind::Recover)
}

fn backup_jobs(_: &Request, _: &Params) -> Result<Response, Error> {
    list_jobs(JobKind::Backup)
}

/// A job of `kind` by its id; a job of the other kind is not found here.
fn job_of(params: &Params, kind: JobKind) -> Result<barman::Job, Error> {
    let id = params.get("id");
    match barman::job(id)? {
        Some(job) if job.kind == kind => Ok(job),
        _ => Err(Error::not_found(format!("no job '{id}'"))),
    }
}

fn job(params: &Params, kind: JobKind) -> Result<Response, Error> {
    Ok(Response::ok(&shape::job(&job_of(params, kind)?, true)))
}

fn cancel(params: &Params, kind: JobKind) -> Result<Response, Error> {
    let job = job_of(params, kind)?;
    let after = barman::cancel(&job.id)?;
    log::info(&format!(
        "job {} cancelled: {}",
        after.id,
        shape::status(after.status)
    ));
    Ok(Response {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    })
}
