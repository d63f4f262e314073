//! The machine's figures from /proc, all read through the `procfs` crate:
//! CPU and memory shares measured over an interval the way `top` and
//! temBoard do (not since boot), the load average, processes, and the
//! machine's fixed facts (CPU models, distribution), read once.

use crate::wit::system::{CpuModel, CpuShares, MemoryShares};
use procfs::{Current, CurrentSI};
use std::sync::OnceLock;

/// Cumulative CPU times, in ticks, folded into the five shares temBoard shows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    user: u64,
    system: u64,
    idle: u64,
    iowait: u64,
    steal: u64,
}

impl CpuTimes {
    /// The `cpu` line of /proc/stat. Guest time is already counted in
    /// user, so it is left out; nice is user time, irq and softirq system.
    pub fn read() -> Option<CpuTimes> {
        let total = procfs::KernelStats::current().ok()?.total;
        Some(CpuTimes {
            user: total.user + total.nice,
            system: total.system + total.irq.unwrap_or(0) + total.softirq.unwrap_or(0),
            idle: total.idle,
            iowait: total.iowait.unwrap_or(0),
            steal: total.steal.unwrap_or(0),
        })
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

/// Memory now: (total bytes, used bytes = total - available, the shares).
pub fn memory() -> Option<(u64, u64, MemoryShares)> {
    let info = procfs::Meminfo::current().ok()?;
    let available = info.mem_available.unwrap_or(info.mem_free + info.cached);
    Some((
        info.mem_total,
        info.mem_total.saturating_sub(available),
        memory_shares(
            info.mem_total / 1024,
            info.mem_free / 1024,
            info.cached / 1024,
        ),
    ))
}

/// Shares of `total` kB: active = total - free - cached.
fn memory_shares(total: u64, free: u64, cached: u64) -> MemoryShares {
    let free = free.min(total);
    let cached = cached.min(total - free);
    let active = total - free - cached;
    let pct = |v: u64| v as f64 / total.max(1) as f64 * 100.0;
    MemoryShares {
        total_kb: total,
        active: pct(active),
        cached: pct(cached),
        free: pct(free),
    }
}

/// The 1, 5 and 15-minute load averages.
pub fn load_average() -> (f64, f64, f64) {
    procfs::LoadAverage::current().map_or((0.0, 0.0, 0.0), |l| {
        (f64::from(l.one), f64::from(l.five), f64::from(l.fifteen))
    })
}

/// Logical CPUs.
pub fn cpu_count() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
}

/// The running kernel's release, e.g. "6.1.0-18-amd64".
pub fn kernel_release() -> String {
    static RELEASE: OnceLock<String> = OnceLock::new();
    RELEASE
        .get_or_init(|| {
            procfs::sys::kernel::Version::current()
                .map(|v| format!("{}.{}.{}", v.major, v.minor, v.patch))
                .unwrap_or_default()
        })
        .clone()
}

/// The machine's CPU models with their counts (read once: they do not
/// change while the agent runs).
pub fn cpu_models() -> Vec<CpuModel> {
    static MODELS: OnceLock<Vec<(String, u32)>> = OnceLock::new();
    MODELS
        .get_or_init(|| {
            procfs::CpuInfo::current()
                .map(|info| count_models((0..info.num_cores()).filter_map(|i| info.model_name(i))))
                .unwrap_or_default()
        })
        .iter()
        .map(|(name, count)| CpuModel {
            name: name.clone(),
            count: *count,
        })
        .collect()
}

/// Model names counted, whitespace normalised; most common first, then by name.
fn count_models<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(String, u32)> {
    let mut models: Vec<(String, u32)> = Vec::new();
    for name in names {
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
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
        let names = [
            "AMD EPYC 7543 32-Core Processor",
            "AMD EPYC 7543 32-Core Processor",
            "Intel(R)   Xeon(R) CPU",
        ];
        assert_eq!(
            count_models(names.into_iter()),
            [
                ("AMD EPYC 7543 32-Core Processor".to_string(), 2),
                ("Intel(R) Xeon(R) CPU".to_string(), 1)
            ]
        );
        assert!(count_models(std::iter::empty()).is_empty());
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
        let before = CpuTimes {
            user: 110,
            system: 60,
            idle: 1000,
            iowait: 20,
            steal: 2,
        };
        let after = CpuTimes {
            user: 220,
            system: 120,
            idle: 1800,
            iowait: 40,
            steal: 4,
        };
        let s = after.shares_since(&before);
        let sum = s.user + s.system + s.iowait + s.steal + s.idle;
        assert!((sum - 100.0).abs() < 0.5, "{sum}");
        // user = 110 of 110+60+20+2+800 = 992 ticks
        assert!((s.user - 110.0 / 992.0 * 100.0).abs() < 1e-9);
        assert_eq!(after.shares_since(&after).idle, 100.0);
    }

    #[test]
    fn memory_shares_sum_to_100() {
        let m = memory_shares(1000, 200, 300);
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
        let (total, used, m) = memory().expect("/proc/meminfo");
        assert!(total > 0 && used <= total);
        assert!((m.active + m.cached + m.free - 100.0).abs() < 0.5);
        assert!(load_average().0 >= 0.0);
        assert!(!kernel_release().is_empty());
    }
}
