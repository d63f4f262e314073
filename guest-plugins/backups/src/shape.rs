//! Barman's JSON and the host's jobs in barmaid's shapes.

use dbagent_sdk::barman::{self, Job, JobStatus, Target};
use serde_json::{Value, json};

/// `DONE` → `done`, as barmaid writes statuses.
pub fn lower(status: &Value) -> Value {
    json!(status.as_str().unwrap_or_default().to_ascii_lowercase())
}

/// Whether Barman reached PostgreSQL when it read the server's state.
pub fn pg_conn_ok(shown: &Value) -> bool {
    shown.get("connection_error").is_some_and(Value::is_null)
        && shown
            .get("server_txt_version")
            .is_some_and(Value::is_string)
}

/// A libpq connection string with any password masked.
pub fn masked_conninfo(conninfo: &str) -> String {
    conninfo
        .split(' ')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=********"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// `GET /api/servers/:id`, in the reference's order.
pub fn server(
    id: &str,
    shown: &Value,
    ssh_check_ok: bool,
    backups: &[Value],
    targets: &[String],
) -> Value {
    json!({
        "active": shown["active"].as_bool().unwrap_or(false),
        "backup_dir": text(&shown["backup_directory"]),
        "base_backups_dir": text(&shown["basebackups_directory"]),
        "conn_info": masked_conninfo(text(&shown["conninfo"])),
        "name": shown["name"].as_str().unwrap_or(id),
        "pg_conn_ok": pg_conn_ok(shown),
        "ssh_check_ok": ssh_check_ok,
        "ssh_cmd": text(&shown["ssh_command"]),
        "wals_dir": text(&shown["wals_directory"]),
        "id": id,
        "backups": backups,
        "targets": targets,
    })
}

pub fn target(server: &str, t: &Target) -> Value {
    json!({
        "id": t.id,
        "server_id": server,
        "path": t.path,
        "remote_ssh_cmd": t.remote_ssh_cmd.clone().unwrap_or_default(),
        "recover_job_name": t.recover_job_name,
    })
}

/// A Unix time Barman wrote as text ("1796104465") in barmaid's form.
fn barman_time(value: &Value) -> String {
    let seconds = match value {
        Value::String(s) => s.parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    seconds.map(barman::format_time).unwrap_or_default()
}

/// `GET /api/servers/:id/backups/:backup`: the base backup's size, the WAL
/// it needs and the WAL archived after it until the next backup.
pub fn backup(server: &str, shown: &Value) -> Value {
    let info = &shown["base_backup_information"];
    let bytes = |v: &Value| v.as_u64().unwrap_or(0);
    json!({
        "id": shown["backup_id"],
        "size": bytes(&info["backup_size_bytes"]),
        "status": lower(&shown["status"]),
        "backup_start": barman_time(&info["begin_time_timestamp"]),
        "backup_end": barman_time(&info["end_time_timestamp"]),
        "timeline": info["timeline"].as_u64().unwrap_or(0),
        "wal_file_size": bytes(&info["wal_size_bytes"]) + bytes(&shown["wal_information"]["disk_usage_bytes"]),
        "server_id": server,
    })
}

pub fn status(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Queued => "queued",
        JobStatus::Working => "working",
        JobStatus::Completed => "completed",
        JobStatus::Failed => "failed",
        JobStatus::Cancelled => "cancelled",
    }
}

/// A job as barmaid shows it. The reference writes `time` as text in the
/// answer to POST and as a Unix time in seconds in `GET …/:id`:
/// `time_as_number` picks the second.
pub fn job(job: &Job, time_as_number: bool) -> Value {
    let seconds = job.created_at.div_euclid(1000);
    let time = if time_as_number {
        json!(seconds)
    } else {
        json!(barman::format_time(seconds))
    };
    let completed_at = job
        .completed_at
        .map(|ms| barman::format_time(ms.div_euclid(1000)))
        .unwrap_or_default();
    let mut shaped = json!({
        "id": job.id,
        "time": time,
        "status": status(job.status),
        "message": job.message,
        "pct_complete": job.pct_complete,
        "server": job.server,
        "target": job.target.clone().unwrap_or_default(),
        "backup_id": job.backup_id.clone().unwrap_or_default(),
        "completed_at": completed_at,
    });
    // Beyond barmaid, only when asked for: a point-in-time recovery.
    if let Some(time) = &job.target_time {
        shaped["target_time"] = json!(time);
    }
    shaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_leave() {
        assert_eq!(
            masked_conninfo("host=db user=postgres password=s3cret port=5432"),
            "host=db user=postgres password=******** port=5432"
        );
        assert_eq!(masked_conninfo("host=db"), "host=db");
    }

    #[test]
    fn connection_state_is_read_from_show_server() {
        assert!(pg_conn_ok(
            &json!({"connection_error": null, "server_txt_version": "16.4"})
        ));
        assert!(!pg_conn_ok(
            &json!({"connection_error": "could not connect"})
        ));
        assert!(!pg_conn_ok(
            &json!({"connection_error": null, "server_txt_version": null})
        ));
    }
}
