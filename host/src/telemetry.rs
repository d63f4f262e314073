//! The agent's own figures for Prometheus: requests by route prefix and
//! status, plugin call latency, plugin failures by kind, instance slots in
//! use, job runs and their duration. Recorded where they happen (the HTTP
//! front, the plugin runtime, the job scheduler) into one process-wide
//! registry; rendered in the text exposition format by the `metrics`
//! capability. Label values come from the route table and plugin names,
//! never from request paths, so their number is bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

/// Latency buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default, Clone)]
struct Histogram {
    /// Cumulative counts per bucket of [`BUCKETS`].
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; BUCKETS.len()];
        }
        for (bucket, bound) in self.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= *bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Default)]
struct Figures {
    requests: BTreeMap<(String, u16), u64>,
    plugin_latency: BTreeMap<String, Histogram>,
    plugin_failures: BTreeMap<(String, &'static str), u64>,
    job_runs: BTreeMap<(String, String, &'static str), u64>,
    job_duration: BTreeMap<(String, String), Histogram>,
}

pub struct Telemetry {
    figures: Mutex<Figures>,
    instances_in_use: AtomicI64,
}

static TELEMETRY: LazyLock<Telemetry> = LazyLock::new(|| Telemetry {
    figures: Mutex::new(Figures::default()),
    instances_in_use: AtomicI64::new(0),
});

/// The process-wide registry.
pub fn get() -> &'static Telemetry {
    &TELEMETRY
}

/// `value` as a label value: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (count, bound) in h.buckets.iter().zip(BUCKETS) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

impl Telemetry {
    fn figures(&self) -> std::sync::MutexGuard<'_, Figures> {
        self.figures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request answered: `route` is the native route's path or the
    /// plugin's prefix ("unmatched" for a 404 before routing).
    pub fn request(&self, route: &str, status: u16) {
        *self
            .figures()
            .requests
            .entry((route.to_string(), status))
            .or_default() += 1;
    }

    /// A plugin call and how long it took, whatever its outcome.
    pub fn plugin_call(&self, plugin: &str, took: Duration) {
        self.figures()
            .plugin_latency
            .entry(plugin.to_string())
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// A plugin call that produced no answer: `busy`, `timeout` or `failed`
    /// (a trap, a panic, the memory limit).
    pub fn plugin_failure(&self, plugin: &str, kind: &'static str) {
        *self
            .figures()
            .plugin_failures
            .entry((plugin.to_string(), kind))
            .or_default() += 1;
    }

    /// An instance slot taken (+1) or given back (-1).
    pub fn instances(&self, change: i64) {
        self.instances_in_use.fetch_add(change, Ordering::Relaxed);
    }

    /// A job run ended, `done` or `failed`.
    pub fn job(&self, plugin: &str, job: &str, outcome: &'static str, took: Duration) {
        let mut figures = self.figures();
        *figures
            .job_runs
            .entry((plugin.to_string(), job.to_string(), outcome))
            .or_default() += 1;
        figures
            .job_duration
            .entry((plugin.to_string(), job.to_string()))
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Everything recorded, in the text exposition format.
    pub fn render(&self) -> String {
        let f = self.figures();
        let mut out = String::new();
        out.push_str("# HELP dbagent_http_requests_total HTTP requests answered, by route (native path or plugin prefix) and status.\n# TYPE dbagent_http_requests_total counter\n");
        for ((route, status), n) in &f.requests {
            let _ = writeln!(
                out,
                "dbagent_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                label(route)
            );
        }
        out.push_str("# HELP dbagent_plugin_call_duration_seconds Time of one plugin call, by plugin.\n# TYPE dbagent_plugin_call_duration_seconds histogram\n");
        for (plugin, h) in &f.plugin_latency {
            histogram(
                &mut out,
                "dbagent_plugin_call_duration_seconds",
                &format!("plugin=\"{}\"", label(plugin)),
                h,
            );
        }
        out.push_str("# HELP dbagent_plugin_failures_total Plugin calls without an answer, by plugin and kind (busy, timeout, failed).\n# TYPE dbagent_plugin_failures_total counter\n");
        for ((plugin, kind), n) in &f.plugin_failures {
            let _ = writeln!(
                out,
                "dbagent_plugin_failures_total{{plugin=\"{}\",kind=\"{kind}\"}} {n}",
                label(plugin)
            );
        }
        out.push_str("# HELP dbagent_plugin_instances_in_use Plugin instances alive now.\n# TYPE dbagent_plugin_instances_in_use gauge\n");
        let _ = writeln!(
            out,
            "dbagent_plugin_instances_in_use {}",
            self.instances_in_use.load(Ordering::Relaxed).max(0)
        );
        out.push_str("# HELP dbagent_job_runs_total Job runs ended, by plugin, job and outcome.\n# TYPE dbagent_job_runs_total counter\n");
        for ((plugin, job, outcome), n) in &f.job_runs {
            let _ = writeln!(
                out,
                "dbagent_job_runs_total{{plugin=\"{}\",job=\"{}\",outcome=\"{outcome}\"}} {n}",
                label(plugin),
                label(job)
            );
        }
        out.push_str("# HELP dbagent_job_duration_seconds Time of one job run (the monitoring collector's is job \"collect\" of plugin \"monitoring\").\n# TYPE dbagent_job_duration_seconds histogram\n");
        for ((plugin, job), h) in &f.job_duration {
            histogram(
                &mut out,
                "dbagent_job_duration_seconds",
                &format!("plugin=\"{}\",job=\"{}\"", label(plugin), label(job)),
                h,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_render_as_prometheus_text() {
        let t = Telemetry {
            figures: Mutex::new(Figures::default()),
            instances_in_use: AtomicI64::new(0),
        };
        t.request("/activity", 200);
        t.request("/activity", 200);
        t.plugin_call("activity", Duration::from_millis(3));
        t.plugin_failure("a\"b", "timeout");
        t.instances(2);
        t.instances(-1);
        let text = t.render();
        assert!(
            text.contains("dbagent_http_requests_total{route=\"/activity\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "dbagent_plugin_call_duration_seconds_bucket{plugin=\"activity\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "dbagent_plugin_call_duration_seconds_bucket{plugin=\"activity\",le=\"0.001\"} 0"
            ),
            "{text}"
        );
        assert!(
            text.contains("dbagent_plugin_failures_total{plugin=\"a\\\"b\",kind=\"timeout\"} 1"),
            "{text}"
        );
        assert!(text.contains("dbagent_plugin_instances_in_use 1"), "{text}");
    }
}
