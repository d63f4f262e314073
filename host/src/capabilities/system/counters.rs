//! The machine's cumulative counters and current figures, read when asked:
//! /proc (through `procfs`), statvfs for file systems, getifaddrs for
//! addresses. Cheap enough for a collector's call; nothing is sampled.

use crate::wit::system::{Filesystem, HostCounters};
use procfs::{Current, CurrentSI};

/// File system types worth reporting besides block devices.
const REAL_FS_TYPES: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "overlay", "nfs", "nfs4", "f2fs", "jfs",
    "reiserfs",
];

pub fn read() -> HostCounters {
    let ticks = procfs::ticks_per_second().max(1);
    let ms = |t: u64| t.saturating_mul(1000) / ticks;
    let stats = procfs::KernelStats::current().ok();
    let (user, system, idle, iowait, steal) = stats.as_ref().map_or((0, 0, 0, 0, 0), |s| {
        let t = &s.total;
        (
            t.user + t.nice,
            t.system + t.irq.unwrap_or(0) + t.softirq.unwrap_or(0),
            t.idle,
            t.iowait.unwrap_or(0),
            t.steal.unwrap_or(0),
        )
    });
    let memory = procfs::Meminfo::current().ok();
    let mem = |f: fn(&procfs::Meminfo) -> u64| memory.as_ref().map_or(0, f);
    let load = procfs::LoadAverage::current().ok();
    HostCounters {
        cpu_user_ms: ms(user),
        cpu_system_ms: ms(system),
        cpu_idle_ms: ms(idle),
        cpu_iowait_ms: ms(iowait),
        cpu_steal_ms: ms(steal),
        context_switches: stats.as_ref().map_or(0, |s| s.ctxt),
        forks: stats.as_ref().map_or(0, |s| s.processes),
        procs_running: stats
            .as_ref()
            .and_then(|s| s.procs_running)
            .map_or(0, u64::from),
        procs_blocked: stats
            .as_ref()
            .and_then(|s| s.procs_blocked)
            .map_or(0, u64::from),
        procs_total: load.as_ref().map_or(0, |l| u64::from(l.max)),
        mem_total: mem(|m| m.mem_total),
        mem_free: mem(|m| m.mem_free),
        mem_buffers: mem(|m| m.buffers),
        mem_cached: mem(|m| m.cached),
        swap_total: mem(|m| m.swap_total),
        swap_free: mem(|m| m.swap_free),
        load1: load.as_ref().map_or(0.0, |l| f64::from(l.one)),
        load5: load.as_ref().map_or(0.0, |l| f64::from(l.five)),
        load15: load.as_ref().map_or(0.0, |l| f64::from(l.fifteen)),
        filesystems: filesystems(),
        ip_addresses: ip_addresses(),
        cpu_arch: std::env::consts::ARCH.to_string(),
        kernel_release: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|r| r.trim().to_string())
            .unwrap_or_default(),
    }
}

/// Mounted block devices and real file systems, each mount point once.
fn filesystems() -> Vec<Filesystem> {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(device), Some(mount_point), Some(fs_type)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !(device.starts_with('/') || REAL_FS_TYPES.contains(&fs_type)) {
            continue;
        }
        // /proc/self/mounts escapes blanks in paths as octal.
        let mount_point = mount_point.replace("\\040", " ");
        if !seen.insert(mount_point.clone()) {
            continue;
        }
        let Ok(stat) = nix::sys::statvfs::statvfs(mount_point.as_str()) else {
            continue;
        };
        let block = stat.fragment_size();
        let total = stat.blocks().saturating_mul(block);
        let free = stat.blocks_free().saturating_mul(block);
        out.push(Filesystem {
            mount_point,
            device: device.to_string(),
            total_bytes: total,
            used_bytes: total.saturating_sub(free),
        });
    }
    out
}

/// The machine's IPv4 and IPv6 addresses, loopback left out.
fn ip_addresses() -> Vec<String> {
    let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out: Vec<String> = addresses
        .filter_map(|a| {
            let address = a.address?;
            let ip: std::net::IpAddr = if let Some(v4) = address.as_sockaddr_in() {
                v4.ip().into()
            } else {
                address.as_sockaddr_in6()?.ip().into()
            };
            (!ip.is_loopback()).then(|| ip.to_string())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_machine_s_counters_are_read() {
        let c = super::read();
        assert!(c.mem_total > 0 && c.mem_free <= c.mem_total);
        assert!(c.cpu_user_ms + c.cpu_system_ms + c.cpu_idle_ms > 0);
        assert!(c.forks > 0 && c.procs_total > 0);
        assert!(!c.filesystems.is_empty(), "no file system found");
        assert!(!c.cpu_arch.is_empty());
    }
}
