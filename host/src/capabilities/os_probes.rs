//! CPU and memory shares from /proc, measured over an interval the way
//! `top` and temBoard do, not since boot; and the machine's fixed facts
//! (CPU models, distribution), read once.

use crate::runtime::bindings::dbagent::api::system::{CpuModel, CpuShares, MemoryShares};
use std::sync::OnceLock;

/// Cumulative CPU times from the `cpu` line of /proc/stat, in ticks, folded
/// into the five shares temBoard shows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    user: u64,
    system: u64,
    idle: u64,
    iowait: u64,
    steal: u64,
}

impl CpuTimes {
    pub fn read() -> Option<CpuTimes> {
        parse_cpu_line(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// Shares of the time between `earlier` and `self`; all idle when no
    /// time passed.
    pub fn shares_since(&self, earlier: &CpuTimes) -> CpuShares {
        let delta = |now: u64, then: u64| now.saturating_sub(then) as f64;
        let parts = [
            delta(self.user, earlier.user),
            delta(self.system, earlier.system),
            delta(self.iowait, earlier.iowait),
            delta(self.steal, earlier.steal),
            delta(self.idle, earlier.idle),
        ];
        let total: f64 = parts.iter().sum();
        if total <= 0.0 {
            return CpuShares {
                user: 0.0,
                system: 0.0,
                iowait: 0.0,
                steal: 0.0,
                idle: 100.0,
            };
        }
        let pct = |v: f64| v / total * 100.0;
        CpuShares {
            user: pct(parts[0]),
            system: pct(parts[1]),
            iowait: pct(parts[2]),
            steal: pct(parts[3]),
            idle: pct(parts[4]),
        }
    }
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`;
/// guest time is already counted in user, so it is left out.
fn parse_cpu_line(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    Some(CpuTimes {
        user: at(0) + at(1),
        system: at(2) + at(5) + at(6),
        idle: at(3),
        iowait: at(4),
        steal: at(7),
    })
}

pub fn memory_shares() -> Option<MemoryShares> {
    parse_meminfo(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

fn parse_meminfo(text: &str) -> Option<MemoryShares> {
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    let total = field("MemTotal")?;
    let free = field("MemFree")?.min(total);
    let cached = field("Cached").unwrap_or(0).min(total - free);
    let active = total - free - cached;
    let pct = |v: u64| v as f64 / total.max(1) as f64 * 100.0;
    Some(MemoryShares {
        total_kb: total,
        active: pct(active),
        cached: pct(cached),
        free: pct(free),
    })
}

/// The machine's CPU models with their counts (read once: they do not
/// change while the agent runs).
pub fn cpu_models() -> Vec<CpuModel> {
    static MODELS: OnceLock<Vec<(String, u32)>> = OnceLock::new();
    MODELS
        .get_or_init(|| {
            std::fs::read_to_string("/proc/cpuinfo")
                .map(|text| parse_cpu_models(&text))
                .unwrap_or_default()
        })
        .iter()
        .map(|(name, count)| CpuModel {
            name: name.clone(),
            count: *count,
        })
        .collect()
}

/// `model name` of each processor in /proc/cpuinfo, counted; most common
/// first, then by name.
fn parse_cpu_models(cpuinfo: &str) -> Vec<(String, u32)> {
    let mut models: Vec<(String, u32)> = Vec::new();
    for line in cpuinfo.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.trim() != "model name" {
            continue;
        }
        let name = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match models.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => *count += 1,
            None => models.push((name, 1)),
        }
    }
    models.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    models
}

/// The distribution's `PRETTY_NAME` (else `NAME VERSION`) from
/// /etc/os-release, or /usr/lib/os-release; "" when neither says. Read once.
pub fn linux_distribution() -> String {
    static DISTRIBUTION: OnceLock<String> = OnceLock::new();
    DISTRIBUTION
        .get_or_init(|| {
            ["/etc/os-release", "/usr/lib/os-release"]
                .iter()
                .find_map(|path| std::fs::read_to_string(path).ok())
                .map(|text| parse_os_release(&text))
                .unwrap_or_default()
        })
        .clone()
}

fn parse_os_release(text: &str) -> String {
    let field = |name: &str| -> Option<String> {
        text.lines().find_map(|line| {
            let value = line.trim().strip_prefix(name)?.strip_prefix('=')?.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            let unescaped = unquoted.replace("\\\"", "\"").replace("\\\\", "\\");
            (!unescaped.is_empty()).then_some(unescaped)
        })
    };
    field("PRETTY_NAME")
        .or_else(|| {
            let name = field("NAME")?;
            Some(match field("VERSION") {
                Some(version) => format!("{name} {version}"),
                None => name,
            })
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_models_are_counted() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7543 32-Core Processor\ncpu MHz\t\t: 2800.000\n\n\
                       processor\t: 1\nmodel name\t: AMD EPYC 7543 32-Core Processor\n\n\
                       processor\t: 2\nmodel name\t: Intel(R)   Xeon(R) CPU\n";
        assert_eq!(
            parse_cpu_models(cpuinfo),
            [
                ("AMD EPYC 7543 32-Core Processor".to_string(), 2),
                ("Intel(R) Xeon(R) CPU".to_string(), 1)
            ]
        );
        // arm64 kernels may not name the model.
        assert!(parse_cpu_models("processor\t: 0\nBogoMIPS\t: 50.00\n").is_empty());
    }

    #[test]
    fn distribution_from_os_release() {
        let debian = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n";
        assert_eq!(parse_os_release(debian), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(
            parse_os_release("NAME='Alpine Linux'\nVERSION=3.19\n"),
            "Alpine Linux 3.19"
        );
        assert_eq!(parse_os_release("ID=x\n"), "");
    }

    #[test]
    fn reads_this_machines_facts() {
        let expected = std::fs::read_to_string("/proc/cpuinfo")
            .map(|t| t.lines().filter(|l| l.starts_with("model name")).count())
            .unwrap_or(0);
        let counted: u32 = cpu_models().iter().map(|m| m.count).sum();
        assert_eq!(counted as usize, expected);
        if std::path::Path::new("/etc/os-release").exists() {
            assert!(!linux_distribution().is_empty());
        }
    }

    #[test]
    fn cpu_shares_sum_to_100() {
        let before = parse_cpu_line("cpu  100 10 50 1000 20 5 5 2 0 0\ncpu0 1 2 3").unwrap();
        let after = parse_cpu_line("cpu  200 20 100 1800 40 10 10 4 7 0\n").unwrap();
        let s = after.shares_since(&before);
        let sum = s.user + s.system + s.iowait + s.steal + s.idle;
        assert!((sum - 100.0).abs() < 0.5, "{sum}");
        // user = 100 + 10 = 110 of 110+60+20+2+800 = 992 ticks
        assert!((s.user - 110.0 / 992.0 * 100.0).abs() < 1e-9);
        assert_eq!(after.shares_since(&after).idle, 100.0);
    }

    #[test]
    fn memory_shares_sum_to_100() {
        let m = parse_meminfo("MemTotal:       1000 kB\nMemFree:         200 kB\nBuffers: 5 kB\nCached:          300 kB\n").unwrap();
        assert_eq!(m.total_kb, 1000);
        assert_eq!((m.active, m.cached, m.free), (50.0, 30.0, 20.0));
    }

    #[test]
    fn reads_this_machine() {
        let a = CpuTimes::read().expect("/proc/stat");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let s = CpuTimes::read().expect("/proc/stat").shares_since(&a);
        let sum = s.user + s.system + s.iowait + s.steal + s.idle;
        assert!((sum - 100.0).abs() < 0.5);
        let m = memory_shares().expect("/proc/meminfo");
        assert!((m.active + m.cached + m.free - 100.0).abs() < 0.5);
    }
}
