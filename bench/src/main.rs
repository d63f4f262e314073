//! Drives, in one run and over one keep-alive connection each:
//! (a) `GET /ping`, served natively by the host;
//! (b) `GET /hello/ping`, the same answer from the example plugin;
//! (c) `GET /activity`, with a few idle client backends to list;
//! (d) `GET /dashboard`, the last set the collector stored;
//! (e) `GET /dashboard/live`, a set collected during the request;
//! and prints requests/s, p50 and p99 for each, and what a plugin adds.
//! Then it reports the dashboard collector's own cost: the agent's CPU time
//! per collection and its resident memory before and after 1,000
//! collections (driven through `/dashboard/live`, which runs the same
//! collection code as the periodic job, so the count does not take 1,000
//! scheduler intervals).
//!
//! Then each engine's action latency against the same call made directly
//! (see [`engines`]).
//!
//! Then the concurrency benchmark (see [`load`]): wrk at 16 and 64
//! connections over HTTP and HTTPS, and the pgbench floor.
//!
//! Run with `bench/run` (release build, throwaway cluster).

mod engines;
mod load;
mod reload;

use dbagent_tests::{Agent, AgentOptions, PgCluster, TOKEN};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Stats {
    name: &'static str,
    count: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

/// One HTTP/1.1 keep-alive connection speaking just enough of the protocol
/// to time requests without a client library's overhead in the figures.
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    authority: String,
    /// The `Authorization` header line sent with each request, if any.
    authorization: String,
}

impl Connection {
    fn open(authority: &str) -> Connection {
        let stream = TcpStream::connect(authority).expect("connect to the agent");
        stream.set_nodelay(true).expect("nodelay");
        Connection {
            reader: BufReader::new(stream.try_clone().expect("clone stream")),
            writer: stream,
            authority: authority.to_string(),
            authorization: format!("Authorization: Bearer {TOKEN}\r\n"),
        }
    }

    /// A connection that sends no credentials (to a server other than the
    /// agent).
    fn open_anonymous(authority: &str) -> Connection {
        Connection {
            authorization: String::new(),
            ..Connection::open(authority)
        }
    }

    /// Sends one GET and reads the whole response; returns the status.
    fn get(&mut self, path: &str) -> u16 {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{}\r\n",
            self.authority, self.authorization
        );
        self.exchange(&request)
    }

    /// Sends one POST of a JSON `body` and reads the whole response.
    fn post(&mut self, path: &str, body: &str) -> u16 {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\n{}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.authority,
            self.authorization,
            body.len()
        );
        self.exchange(&request)
    }

    fn exchange(&mut self, request: &str) -> u16 {
        self.writer
            .write_all(request.as_bytes())
            .expect("send request");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0usize;
        let mut chunked = false;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header line");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        if !chunked {
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body).expect("body");
            return status;
        }
        // Chunks (InfluxDB streams its answers): size line, data, CRLF,
        // until a zero-size chunk and the trailer's empty line.
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("chunk size");
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .expect("a chunk size");
            if size == 0 {
                line.clear();
                self.reader.read_line(&mut line).expect("the trailer's end");
                return status;
            }
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).expect("chunk");
        }
    }
}

impl Stats {
    fn of(name: &'static str, mut samples: Vec<Duration>, elapsed: Duration) -> Stats {
        samples.sort();
        let count = samples.len();
        Stats {
            name,
            count,
            elapsed,
            p50: samples[count / 2],
            p99: samples[(count * 99 / 100).min(count - 1)],
        }
    }
}

/// How long one `GET path` took; anything but 200 stops the benchmark.
fn timed_get(connection: &mut Connection, path: &str) -> Duration {
    let t = Instant::now();
    let status = connection.get(path);
    let took = t.elapsed();
    assert_eq!(status, 200, "{path} must answer 200");
    took
}

fn measure(name: &'static str, authority: &str, path: &str, warmup: usize, count: usize) -> Stats {
    let mut connection = Connection::open(authority);
    for _ in 0..warmup {
        timed_get(&mut connection, path);
    }
    let started = Instant::now();
    let samples = (0..count)
        .map(|_| timed_get(&mut connection, path))
        .collect();
    Stats::of(name, samples, started.elapsed())
}

/// Native and plugin routes measured turn about, each on its own
/// connection, so that both see the same machine: a load that comes and
/// goes during the run weighs on both alike.
fn measure_pair(
    authority: &str,
    (native_name, native_path): (&'static str, &str),
    (plugin_name, plugin_path): (&'static str, &str),
    warmup: usize,
    count: usize,
) -> (Stats, Stats) {
    let mut native = Connection::open(authority);
    let mut plugin = Connection::open(authority);
    for _ in 0..warmup {
        timed_get(&mut native, native_path);
        timed_get(&mut plugin, plugin_path);
    }
    let (mut a, mut b) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for _ in 0..count {
        a.push(timed_get(&mut native, native_path));
        b.push(timed_get(&mut plugin, plugin_path));
    }
    // Elapsed time per route is the sum of its own requests.
    let (a_total, b_total) = (a.iter().sum(), b.iter().sum());
    (
        Stats::of(native_name, a, a_total),
        Stats::of(plugin_name, b, b_total),
    )
}

fn print_stats(s: &Stats) {
    println!(
        "{:<30} {:>9} {:>12.0} {:>10.1} {:>10.1}",
        s.name,
        s.count,
        s.count as f64 / s.elapsed.as_secs_f64(),
        micros(s.p50),
        micros(s.p99)
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let count: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    // Room for pgbench's 64 clients beside both agents' pools.
    let cluster = PgCluster::start_with(&["max_connections = 200"]);
    let options = || {
        AgentOptions::new()
            .plugin("hello")
            .config("[plugin.hello]\ngrants = [\"log\"]\n")
            .config("[databases.main]\nengine = \"postgresql\"\nmanaged = true\n")
    };
    let agent = Agent::start(&cluster, options());
    let tls_dir = tempfile::tempdir().expect("a temporary directory");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("a self-signed certificate");
    let (cert, key) = (
        tls_dir.path().join("agent.pem"),
        tls_dir.path().join("agent.key"),
    );
    std::fs::write(&cert, certified.cert.pem()).expect("write the certificate");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write the key");
    let https_agent = Agent::start(&cluster, options().tls(&cert, &key));
    let https_base = https_agent.url("").replace("http://", "https://");
    // Idle client backends give /activity rows to list and sample.
    let _clients: Vec<_> = (0..10).map(|_| cluster.connect("postgres")).collect();
    // `/dashboard` serves the collector's last set once there is one, and
    // collects live before: measure the stored set.
    dbagent_tests::wait_for(
        "the dashboard collector's first set",
        Duration::from_secs(30),
        || {
            let history = agent.get_ok("/dashboard/history");
            history
                .as_array()
                .is_some_and(|h| !h.is_empty())
                .then_some(())
        },
    );
    let url = agent.url("/");
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();

    let (native, plugin) = measure_pair(
        &authority,
        ("native GET /ping", "/ping"),
        ("plugin GET /hello/ping", "/hello/ping"),
        500,
        count,
    );
    let results = [
        native,
        plugin,
        measure(
            "plugin GET /activity",
            &authority,
            "/activity",
            100,
            count / 5,
        ),
        measure(
            "plugin GET /dashboard",
            &authority,
            "/dashboard",
            100,
            count / 5,
        ),
        measure(
            "plugin GET /dashboard/live",
            &authority,
            "/dashboard/live",
            100,
            count / 5,
        ),
    ];

    println!(
        "{:<30} {:>9} {:>12} {:>10} {:>10}",
        "route", "requests", "requests/s", "p50 µs", "p99 µs"
    );
    for s in &results {
        print_stats(s);
    }
    let (native, plugin) = (&results[0], &results[1]);
    let added = micros(plugin.p50) - micros(native.p50);
    println!(
        "plugin vs native: p50 {:.2}x, +{added:.1} µs per request (goal: at most +50 µs)",
        micros(plugin.p50) / micros(native.p50)
    );

    let live = &results[4];
    println!(
        "target {}: /dashboard/live p50 <= 1 ms ({:.2} ms)",
        if live.p50 <= Duration::from_millis(1) {
            "met"
        } else {
            "MISSED"
        },
        live.p50.as_secs_f64() * 1000.0
    );

    collector_cost(&agent, &authority, "/dashboard/live", "dashboard collector");
    collector_cost(
        &agent,
        &authority,
        "/monitoring/collect",
        "monitoring collector",
    );
    print_stats(&measure(
        "plugin GET /metrics",
        &authority,
        "/metrics",
        100,
        count / 5,
    ));
    action_overhead(&cluster, &authority, count / 5);
    engines::run(count / 5);
    warm_start(&cluster);
    reload::run(&cluster, seconds);

    load::run(&cluster, &agent, Some(&https_base), seconds);
}

/// How long an agent takes to load every plugin with a warm compiled-code
/// cache (the shared one the runs above filled), from its own log.
fn warm_start(cluster: &PgCluster) {
    let agent = Agent::start(cluster, AgentOptions::new());
    match logged_elapsed_ms(&agent.log_text(), "plugins ready") {
        Some(ms) => println!(
            "target {}: bundled plugins ready in <= 100 ms with a warm cache ({ms} ms)",
            if ms <= 100 { "met" } else { "MISSED" }
        ),
        None => println!("warm start: no 'plugins ready' line in the agent's log"),
    }
}

/// `elapsed_ms` of the last log line saying `what`.
fn logged_elapsed_ms(log: &str, what: &str) -> Option<u64> {
    log.lines()
        .rfind(|l| l.contains(what))
        .and_then(|l| l.split("elapsed_ms=").nth(1))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    let fields: Vec<u64> = after
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // After the state field: ppid .. utime is the 11th number, stime the 12th.
    let ticks = fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
    // SAFETY: sysconf only reads a constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / per_second
}

/// Resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The agent's CPU time per collection and its resident memory over 1,000
/// collections, driven through `path` (a route that runs the collection
/// code of the periodic job, so the count does not take 1,000 intervals).
fn collector_cost(agent: &Agent, authority: &str, path: &str, what: &str) {
    const COLLECTIONS: usize = 1000;
    let pid = agent.pid();
    let mut connection = Connection::open(authority);
    // Warm up so the first measurement is not the allocator's growth.
    for _ in 0..100 {
        connection.get(path);
    }
    let (rss_before, cpu_before) = (rss_kib(pid), cpu_seconds(pid));
    for _ in 0..COLLECTIONS {
        assert_eq!(connection.get(path), 200, "{path}");
    }
    let (rss_after, cpu_after) = (rss_kib(pid), cpu_seconds(pid));
    println!(
        "{what}: {:.2} ms agent CPU per collection; agent RSS {} KiB before, {} KiB after {COLLECTIONS} collections ({:+} KiB)",
        (cpu_after - cpu_before) * 1000.0 / COLLECTIONS as f64,
        rss_before,
        rss_after,
        rss_after as i64 - rss_before as i64
    );
}

/// An action through the database-service API against the same query sent
/// directly, one connection each, turn about: what the action path (HTTP,
/// the databases plugin, the host, a fresh action module) adds.
fn action_overhead(cluster: &PgCluster, authority: &str, count: usize) {
    const SQL: &str = "SELECT extname::text AS name, 'v' || extversion AS version FROM pg_extension ORDER BY extname";
    let body = r#"{"action_name": "list-extensions"}"#;
    let mut http = Connection::open(authority);
    let mut direct = cluster.connect("postgres");
    let statement = direct.prepare(SQL).expect("prepare the direct query");
    for _ in 0..50 {
        assert_eq!(http.post("/api/databases/main/action", body), 200);
        direct.query(&statement, &[]).expect("the direct query");
    }
    let (mut via_action, mut via_query) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for _ in 0..count {
        let t = Instant::now();
        assert_eq!(http.post("/api/databases/main/action", body), 200);
        via_action.push(t.elapsed());
        let t = Instant::now();
        direct.query(&statement, &[]).expect("the direct query");
        via_query.push(t.elapsed());
    }
    let (a_total, q_total) = (via_action.iter().sum(), via_query.iter().sum());
    let action = Stats::of("action list-extensions", via_action, a_total);
    let query = Stats::of("direct query (prepared)", via_query, q_total);
    for s in [&action, &query] {
        print_stats(s);
    }
    println!(
        "action overhead over the direct query: +{:.1} µs at p50",
        micros(action.p50) - micros(query.p50)
    );
}
