//! Background sampling of the PostgreSQL instance's processes and the host.
//!
//! CPU and I/O figures are rates, so they need two readings some time apart.
//! Sampling in the background means a request reads the latest rates at once
//! instead of sleeping to measure them.

use super::probes;
use crate::wit::system::{CpuShares, HostInfo, MemoryShares, ProcessSample};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The cumulative counters of one process at one instant.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    cpu_ticks: u64,
    read_bytes: u64,
    write_bytes: u64,
}

pub struct Sampler {
    /// The postmaster whose children are sampled; 0 until a connection finds it.
    postmaster_pid: AtomicI32,
    samples: RwLock<HashMap<i32, ProcessSample>>,
    previous: Mutex<HashMap<i32, Reading>>,
    host: RwLock<HostInfo>,
    /// The CPU times of the previous sample, for shares over the interval.
    cpu_times: Mutex<Option<probes::CpuTimes>>,
    clock_ticks_per_second: f64,
    page_size: u64,
    /// The host name to report instead of the machine's (`[server] hostname`).
    hostname: Option<String>,
}

impl Sampler {
    pub fn new(hostname: Option<String>) -> Arc<Sampler> {
        let (ticks, page) = (procfs::ticks_per_second(), procfs::page_size());
        let sampler = Sampler {
            postmaster_pid: AtomicI32::new(0),
            samples: RwLock::new(HashMap::new()),
            previous: Mutex::new(HashMap::new()),
            host: RwLock::new(empty_host_info()),
            cpu_times: Mutex::new(None),
            clock_ticks_per_second: if ticks > 0 { ticks as f64 } else { 100.0 },
            page_size: if page > 0 { page } else { 4096 },
            hostname,
        };
        sampler.sample_host();
        Arc::new(sampler)
    }

    /// Starts sampling every `interval` on a blocking thread of the runtime.
    pub fn spawn(self: &Arc<Self>, interval: Duration) {
        let sampler = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let pass = Arc::clone(&sampler);
                if let Err(e) = tokio::task::spawn_blocking(move || pass.sample_once()).await {
                    tracing::warn!("process sampling failed: {e}");
                }
            }
        });
    }

    /// Records the backend pid of one of the agent's connections; its parent
    /// is the postmaster. Ignored when that pid is not a local PostgreSQL
    /// process (the instance runs on another machine).
    pub fn note_backend_pid(&self, backend_pid: i32) {
        let Some(stat) = read_stat(backend_pid) else {
            return;
        };
        let is_postgres = procfs::process::Process::new(stat.ppid)
            .and_then(|parent| parent.stat())
            .map(|parent| {
                parent.comm.starts_with("postgres") || parent.comm.starts_with("postmaster")
            })
            .unwrap_or(false);
        if is_postgres && self.postmaster_pid.swap(stat.ppid, Ordering::Relaxed) != stat.ppid {
            tracing::info!(
                postmaster_pid = stat.ppid,
                "sampling the PostgreSQL instance's processes"
            );
        }
    }

    pub fn process(&self, pid: i32) -> Option<ProcessSample> {
        self.samples.read().ok()?.get(&pid).cloned()
    }

    pub fn host(&self) -> HostInfo {
        let mut info = self
            .host
            .read()
            .map(|h| h.clone())
            .unwrap_or_else(|_| empty_host_info());
        if let Some(name) = &self.hostname {
            info.hostname.clone_from(name);
        }
        info
    }

    pub fn sample_once(&self) {
        self.sample_host();
        self.sample_processes();
    }

    fn sample_host(&self) {
        let (load_1, load_5, load_15) = probes::load_average();
        let cpu_now = probes::CpuTimes::read();
        let cpu_shares = match (self.cpu_times.lock().ok().as_deref_mut(), cpu_now) {
            (Some(previous), Some(now)) => {
                let shares = previous.as_ref().map(|before| now.shares_since(before));
                *previous = Some(now);
                shares
            }
            _ => None,
        };
        let cpu_shares = cpu_shares.unwrap_or_else(idle_cpu);
        let (memory_total_bytes, memory_used_bytes, memory_shares) =
            probes::memory().unwrap_or((0, 0, empty_memory()));
        let info = HostInfo {
            hostname: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            os: os_description(),
            cpu_count: probes::cpu_count(),
            memory_total_bytes,
            memory_used_bytes,
            cpu_percent: 100.0 - cpu_shares.idle,
            load_average_1: load_1,
            load_average_5: load_5,
            load_average_15: load_15,
            cpu_shares,
            memory_shares,
            cpu_models: probes::cpu_models(),
            linux_distribution: probes::linux_distribution(),
        };
        if let Ok(mut host) = self.host.write() {
            *host = info;
        }
    }

    fn sample_processes(&self) {
        let postmaster = self.postmaster_pid.load(Ordering::Relaxed);
        if postmaster == 0 {
            return;
        }
        let memory_total = self.host().memory_total_bytes.max(1) as f64;
        let Ok(processes) = procfs::process::all_processes() else {
            return;
        };
        let now = Instant::now();
        let Ok(mut previous) = self.previous.lock() else {
            return;
        };
        let mut readings = HashMap::new();
        let mut samples = HashMap::new();
        for process in processes.flatten() {
            let pid = process.pid;
            let Some(stat) = stat_of(&process) else {
                continue;
            };
            if stat.ppid != postmaster {
                continue;
            }
            // Zeros when the agent may not read it (another OS user without
            // CAP_SYS_PTRACE).
            let (read_bytes, write_bytes) = process
                .io()
                .map_or((0, 0), |io| (io.read_bytes, io.write_bytes));
            let reading = Reading {
                at: now,
                cpu_ticks: stat.utime + stat.stime,
                read_bytes,
                write_bytes,
            };
            let (cpu, read_rate, write_rate) = match previous.get(&pid) {
                Some(before) => {
                    let secs = now.duration_since(before.at).as_secs_f64().max(1e-3);
                    (
                        reading.cpu_ticks.saturating_sub(before.cpu_ticks) as f64
                            / self.clock_ticks_per_second
                            / secs
                            * 100.0,
                        reading.read_bytes.saturating_sub(before.read_bytes) as f64 / secs,
                        reading.write_bytes.saturating_sub(before.write_bytes) as f64 / secs,
                    )
                }
                None => (0.0, 0.0, 0.0),
            };
            samples.insert(
                pid,
                ProcessSample {
                    pid,
                    cpu_percent: cpu,
                    memory_percent: (stat.rss_pages * self.page_size) as f64 / memory_total * 100.0,
                    read_bytes_per_second: read_rate,
                    write_bytes_per_second: write_rate,
                    io_wait: stat.state == 'D',
                },
            );
            readings.insert(pid, reading);
        }
        // Only live processes are kept, so the maps never outgrow the instance.
        *previous = readings;
        if let Ok(mut current) = self.samples.write() {
            *current = samples;
        }
    }
}

struct Stat {
    state: char,
    ppid: i32,
    utime: u64,
    stime: u64,
    rss_pages: u64,
}

fn read_stat(pid: i32) -> Option<Stat> {
    stat_of(&procfs::process::Process::new(pid).ok()?)
}

fn stat_of(process: &procfs::process::Process) -> Option<Stat> {
    let stat = process.stat().ok()?;
    Some(Stat {
        state: stat.state,
        ppid: stat.ppid,
        utime: stat.utime,
        stime: stat.stime,
        rss_pages: stat.rss,
    })
}

/// "Linux 6.1.0 (Debian GNU/Linux 12)": the kernel first, as temBoard
/// shows it, then the distribution when known.
fn os_description() -> String {
    let system = if cfg!(target_os = "linux") {
        "Linux"
    } else {
        std::env::consts::OS
    };
    let kernel = probes::kernel_release();
    match probes::linux_distribution() {
        distribution if distribution.is_empty() => format!("{system} {kernel}"),
        distribution => format!("{system} {kernel} ({distribution})"),
    }
}

fn empty_host_info() -> HostInfo {
    HostInfo {
        hostname: String::new(),
        os: String::new(),
        cpu_count: 1,
        memory_total_bytes: 0,
        memory_used_bytes: 0,
        cpu_percent: 0.0,
        load_average_1: 0.0,
        load_average_5: 0.0,
        load_average_15: 0.0,
        cpu_shares: idle_cpu(),
        memory_shares: empty_memory(),
        cpu_models: probes::cpu_models(),
        linux_distribution: probes::linux_distribution(),
    }
}

fn idle_cpu() -> CpuShares {
    CpuShares {
        user: 0.0,
        system: 0.0,
        iowait: 0.0,
        steal: 0.0,
        idle: 100.0,
    }
}

fn empty_memory() -> MemoryShares {
    MemoryShares {
        total_kb: 0,
        active: 0.0,
        cached: 0.0,
        free: 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_stat() {
        let pid = std::process::id() as i32;
        let stat = read_stat(pid).expect("own stat");
        assert!(stat.ppid > 0);
        assert!(stat.rss_pages > 0);
    }

    #[test]
    fn samples_children_of_a_parent() {
        // Our own children stand in for backends: the sampler must report them.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        // Sampled between fork and exec, the child has nothing resident of
        // its own yet: wait (bounded) until it runs `sleep`.
        let comm = format!("/proc/{}/comm", child.id());
        for _ in 0..200 {
            if std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let sampler = Sampler::new(None);
        sampler
            .postmaster_pid
            .store(std::process::id() as i32, Ordering::Relaxed);
        sampler.sample_once();
        let sample = sampler.process(child.id() as i32);
        let _ = child.kill();
        let _ = child.wait();
        let sample = sample.expect("child sampled");
        assert!(sample.memory_percent > 0.0);
        assert!(!sample.io_wait);
    }
}
