//! The figures of a data set as temBoard computes and rounds them. Pure
//! functions, so the unit tests run natively with `cargo test --lib`.

use serde::{Deserialize, Serialize};

/// `value` rounded to `decimals` places; JSON has no NaN or infinity, so
/// those become 0.
pub fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    let rounded = (value * factor).round() / factor;
    if rounded.is_finite() { rounded } else { 0.0 }
}

/// The cache hit ratio in % with one decimal, as temBoard's
/// `ROUND(hit / (hit + read), 3) * 100`; 0 before any block was asked for.
pub fn hitratio(blks_hit: f64, blks_read: f64) -> f64 {
    let asked = blks_hit + blks_read;
    if asked > 0.0 {
        round(blks_hit / asked * 100.0, 1)
    } else {
        0.0
    }
}

/// Shares of CPU time in %, one decimal. Field order is the reference's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub iowait: f64,
    pub idle: f64,
    pub steal: f64,
    pub user: f64,
    pub system: f64,
}

impl Cpu {
    /// From the host's shares over its sampling interval (user includes
    /// nice; system includes irq and softirq).
    pub fn from_shares(user: f64, system: f64, iowait: f64, steal: f64, idle: f64) -> Self {
        Cpu {
            iowait: round(iowait, 1),
            idle: round(idle, 1),
            steal: round(steal, 1),
            user: round(user, 1),
            system: round(system, 1),
        }
    }
}

/// Memory: `total` in kB, the three shares in % of it with one decimal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub total: u64,
    pub active: f64,
    pub cached: f64,
    pub free: f64,
}

impl Memory {
    /// From the host's shares (active = total - free - cached).
    pub fn from_shares(total_kb: u64, active: f64, cached: f64, free: f64) -> Self {
        Memory {
            total: total_kb,
            active: round(active, 1),
            cached: round(cached, 1),
            free: round(free, 1),
        }
    }
}

/// The time since the server started as PostgreSQL's default interval
/// style prints it, e.g. `01:50:31.573788` or `2 days 01:50:31.573788`.
/// Computed here rather than with `::text` so that the server's
/// `IntervalStyle` cannot change the shape.
pub fn uptime(seconds: f64) -> String {
    let micros = if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1e6).round() as u64
    } else {
        0
    };
    let (secs, micros) = (micros / 1_000_000, micros % 1_000_000);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let clock = format!(
        "{:02}:{:02}:{:02}.{micros:06}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    match days {
        0 => clock,
        1 => format!("1 day {clock}"),
        n => format!("{n} days {clock}"),
    }
}

/// Seconds since the Unix epoch with microseconds, like Python's
/// `time.time()` that temBoard puts in its `time` fields.
pub fn epoch_seconds(micros: u64) -> f64 {
    micros as f64 / 1e6
}

/// The history lives in the plugin's store as one key per data set:
/// this prefix and the collection time in microseconds since the epoch,
/// zero-padded so that byte order is chronological order.
pub const HISTORY_PREFIX: &str = "history/";

/// The key of a set collected at `now_micros`: after `last` (the newest
/// key) even if the clock stepped back, so the newest set is never the one
/// pruned.
pub fn history_key(now_micros: u64, last: Option<&str>) -> String {
    let after_last = last
        .and_then(|key| key.strip_prefix(HISTORY_PREFIX)?.parse::<u64>().ok())
        .map_or(0, |t| t.saturating_add(1));
    format!("{HISTORY_PREFIX}{:020}", now_micros.max(after_last))
}

/// The oldest keys to delete so that `keep` remain (`keys` in byte order).
pub fn keys_to_prune(keys: &[String], keep: usize) -> &[String] {
    &keys[..keys.len().saturating_sub(keep)]
}

/// The newest `keep` keys, oldest first (`keys` in byte order).
pub fn keys_to_show(keys: &[String], keep: usize) -> &[String] {
    &keys[keys.len().saturating_sub(keep)..]
}

/// The plugin's settings (`[plugin.dashboard.settings]`), as served by
/// `GET /dashboard/config`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Config {
    /// How many data sets the history keeps.
    pub history_length: u64,
    /// Seconds between two collections.
    pub scheduler_interval: u64,
}

pub const DEFAULT_HISTORY_LENGTH: u64 = 150;
pub const DEFAULT_SCHEDULER_INTERVAL: u64 = 2;
/// Bounds a history response (about 1 kB a set) well within the plugin's memory.
pub const MAX_HISTORY_LENGTH: u64 = 10_000;
/// A day.
pub const MAX_SCHEDULER_INTERVAL: u64 = 86_400;

impl Config {
    /// Reads the settings object; a present but invalid value is an error
    /// naming it, rather than a silent fallback to the default.
    pub fn from_settings(settings: &serde_json::Value) -> Result<Config, String> {
        let read = |name: &str, default: u64, max: u64| -> Result<u64, String> {
            match settings.get(name) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(value) => value
                    .as_u64()
                    .filter(|v| (1..=max).contains(v))
                    .ok_or_else(|| {
                        format!(
                            "setting '{name}' of plugin dashboard must be an integer from 1 to {max}, not {value}"
                        )
                    }),
            }
        };
        Ok(Config {
            history_length: read("history_length", DEFAULT_HISTORY_LENGTH, MAX_HISTORY_LENGTH)?,
            scheduler_interval: read(
                "scheduler_interval",
                DEFAULT_SCHEDULER_INTERVAL,
                MAX_SCHEDULER_INTERVAL,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rounding() {
        assert_eq!(round(12.3456, 1), 12.3);
        assert_eq!(round(0.284, 2), 0.28);
        assert_eq!(round(f64::NAN, 1), 0.0);
        assert_eq!(round(f64::INFINITY, 1), 0.0);
    }

    #[test]
    fn hit_ratios() {
        assert_eq!(hitratio(987.0, 13.0), 98.7);
        assert_eq!(hitratio(99_996.0, 4.0), 100.0);
        assert_eq!(hitratio(1.0, 2.0), 33.3);
        assert_eq!(hitratio(0.0, 5.0), 0.0);
        assert_eq!(hitratio(0.0, 0.0), 0.0);
    }

    #[test]
    fn cpu_and_memory_are_rounded_and_still_sum_to_100() {
        let cpu = Cpu::from_shares(12.345, 3.333, 0.05, 0.0, 84.272);
        assert_eq!(cpu.user, 12.3);
        assert_eq!(cpu.system, 3.3);
        assert_eq!(cpu.iowait, 0.1);
        assert_eq!(cpu.idle, 84.3);
        let sum = cpu.user + cpu.system + cpu.iowait + cpu.steal + cpu.idle;
        assert!((sum - 100.0).abs() <= 0.5, "{sum}");

        let mem = Memory::from_shares(8_082_124, 51.04, 29.46, 19.5);
        assert_eq!(
            mem,
            Memory {
                total: 8_082_124,
                active: 51.0,
                cached: 29.5,
                free: 19.5
            }
        );
        assert_eq!(
            serde_json::to_string(&mem).unwrap(),
            r#"{"total":8082124,"active":51.0,"cached":29.5,"free":19.5}"#
        );
    }

    #[test]
    fn uptimes() {
        assert_eq!(uptime(6631.573788), "01:50:31.573788");
        assert_eq!(uptime(0.0), "00:00:00.000000");
        assert_eq!(uptime(-3.0), "00:00:00.000000");
        assert_eq!(uptime(86_400.5), "1 day 00:00:00.500000");
        assert_eq!(uptime(2.0 * 86_400.0 + 59.0), "2 days 00:00:59.000000");
    }

    #[test]
    fn history_keys_sort_chronologically() {
        let a = history_key(1_492_703_660_798_522, None);
        assert_eq!(a, "history/00001492703660798522");
        let b = history_key(1_492_703_662_000_000, Some(&a));
        assert!(b > a);
        // A clock that stepped back still gives a newer key.
        let c = history_key(1_000, Some(&b));
        assert_eq!(c, "history/00001492703662000001");
        // An unreadable last key is ignored.
        assert_eq!(
            history_key(5, Some("history/x")),
            "history/00000000000000000005"
        );
        assert_eq!(epoch_seconds(1_492_703_660_798_522), 1_492_703_660.798_522);
    }

    #[test]
    fn pruning_keeps_the_newest() {
        let keys: Vec<String> = (1..=7).map(|i| history_key(i, None)).collect();
        assert_eq!(keys_to_prune(&keys, 5), &keys[..2]);
        assert_eq!(keys_to_show(&keys, 5), &keys[2..]);
        assert!(keys_to_prune(&keys, 10).is_empty());
        assert_eq!(keys_to_show(&keys, 10), &keys[..]);
        assert!(keys_to_prune(&[], 3).is_empty());
    }

    #[test]
    fn config_from_settings() {
        assert_eq!(
            Config::from_settings(&json!({})),
            Ok(Config {
                history_length: 150,
                scheduler_interval: 2
            })
        );
        assert_eq!(
            Config::from_settings(
                &json!({"history_length": 5, "scheduler_interval": 1, "other": "x"})
            ),
            Ok(Config {
                history_length: 5,
                scheduler_interval: 1
            })
        );
        for bad in [
            json!({"scheduler_interval": 0}),
            json!({"history_length": "5"}),
            json!({"history_length": -1}),
            json!({"scheduler_interval": 1.5}),
        ] {
            let err = Config::from_settings(&bad).unwrap_err();
            assert!(err.contains("must be an integer"), "{err}");
        }
        assert_eq!(
            serde_json::to_string(&Config {
                history_length: 150,
                scheduler_interval: 2
            })
            .unwrap(),
            r#"{"history_length":150,"scheduler_interval":2}"#
        );
    }
}
