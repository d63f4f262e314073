//! Slowing down password guessing, per client address.
//!
//! A client that keeps failing to log in is made to wait before each further attempt, with a
//! delay that doubles up to a cap. Legitimate typos (a few failures) cost nothing, and a success
//! forgets the address at once.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failures older than this are forgiven.
const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Failures within the window that are free of delay.
const FREE_FAILURES: usize = 5;
/// Delay for the first attempt past the free ones; each further failure doubles it.
const BASE_DELAY: Duration = Duration::from_millis(500);
/// Longest delay: long enough to make guessing slow, short enough that a real user is not locked
/// out by someone else behind the same address.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Failures kept per address: enough to reach `MAX_DELAY`, so memory per address is bounded.
const KEPT_FAILURES: usize = 16;
/// Addresses tracked at once, so that a flood from many addresses cannot grow memory without
/// bound; past it the address idle the longest is forgotten.
const DEFAULT_CAPACITY: usize = 10_000;

#[derive(Debug)]
pub struct LoginThrottle {
    capacity: usize,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new(DEFAULT_CAPACITY)
    }
}

impl LoginThrottle {
    pub fn new(capacity: usize) -> LoginThrottle {
        LoginThrottle {
            capacity: capacity.max(1),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// How long an attempt from `ip` at `now` must wait before its password is checked.
    pub fn delay_for(&self, ip: IpAddr, now: Instant) -> Duration {
        let map = self.lock();
        let recent = map.get(&client_key(ip)).map_or(0, |times| {
            times.iter().filter(|t| is_recent(**t, now)).count()
        });
        delay_after(recent)
    }

    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        let key = client_key(ip);
        let mut map = self.lock();
        if !map.contains_key(&key) && map.len() >= self.capacity {
            map.retain(|_, times| times.back().is_some_and(|t| is_recent(*t, now)));
            if map.len() >= self.capacity {
                let idlest = map
                    .iter()
                    .min_by_key(|(_, times)| times.back().copied())
                    .map(|(ip, _)| *ip);
                if let Some(idlest) = idlest {
                    map.remove(&idlest);
                }
            }
        }
        let times = map.entry(key).or_default();
        times.retain(|t| is_recent(*t, now));
        if times.len() >= KEPT_FAILURES {
            times.pop_front();
        }
        times.push_back(now);
    }

    pub fn record_success(&self, ip: IpAddr) {
        self.lock().remove(&client_key(ip));
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, VecDeque<Instant>>> {
        // The map is consistent after any panic (each update is a single insert/remove), so a
        // poisoned lock is still usable.
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn is_recent(t: Instant, now: Instant) -> bool {
    now.saturating_duration_since(t) < WINDOW
}

fn delay_after(recent_failures: usize) -> Duration {
    let Some(excess) = recent_failures.checked_sub(FREE_FAILURES) else {
        return Duration::ZERO;
    };
    let doublings = u32::try_from(excess).unwrap_or(u32::MAX).min(16);
    BASE_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

/// The unit an attacker pays for: one IPv4 address, or one IPv6 /64, since anyone with IPv6
/// usually holds a whole /64 and could otherwise rotate addresses for free.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    fn fail(t: &LoginThrottle, ip: IpAddr, now: Instant, times: usize) {
        for _ in 0..times {
            t.record_failure(ip, now);
        }
    }

    #[test]
    fn five_failures_are_free_then_the_delay_grows_to_the_cap() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        fail(&t, A, now, 5);
        assert_eq!(t.delay_for(A, now), Duration::from_millis(500));
        let mut previous = t.delay_for(A, now);
        for _ in 0..20 {
            t.record_failure(A, now);
            let d = t.delay_for(A, now);
            assert!(d >= previous && d <= MAX_DELAY, "{d:?} after {previous:?}");
            previous = d;
        }
        assert_eq!(previous, MAX_DELAY);
        assert_eq!(
            t.delay_for(B, now),
            Duration::ZERO,
            "other addresses are not slowed"
        );
    }

    #[test]
    fn fewer_than_five_failures_cost_nothing() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        fail(&t, A, now, 4);
        assert_eq!(t.delay_for(A, now), Duration::ZERO);
        t.record_failure(A, now);
        assert!(t.delay_for(A, now) > Duration::ZERO);
    }

    #[test]
    fn failures_expire_after_the_window() {
        let t = LoginThrottle::default();
        let start = Instant::now();
        fail(&t, A, start, 10);
        assert_eq!(t.delay_for(A, start), MAX_DELAY);
        let later = start + WINDOW + Duration::from_secs(1);
        assert_eq!(t.delay_for(A, later), Duration::ZERO);
    }

    #[test]
    fn success_resets() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        fail(&t, A, now, 8);
        t.record_success(A);
        assert_eq!(t.delay_for(A, now), Duration::ZERO);
    }

    #[test]
    fn ipv6_neighbours_share_a_budget_and_mapped_ipv4_is_ipv4() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..6u16 {
            t.record_failure(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, i, i, i)),
                now,
            );
        }
        let neighbour = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
        assert!(t.delay_for(neighbour, now) > Duration::ZERO);
        let other_net = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert_eq!(t.delay_for(other_net, now), Duration::ZERO);

        fail(&t, A, now, 6);
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(t.delay_for(mapped, now), t.delay_for(A, now));
    }

    #[test]
    fn memory_is_bounded_and_the_idlest_address_goes_first() {
        let t = LoginThrottle::new(3);
        let start = Instant::now();
        for (i, n) in [1u8, 2, 3, 4, 5].into_iter().enumerate() {
            let at = start + Duration::from_secs(i as u64);
            fail(&t, IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), at, 6);
            assert!(t.tracked() <= 3);
        }
        let at = start + Duration::from_secs(5);
        assert_eq!(
            t.delay_for(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), at),
            Duration::ZERO
        );
        assert!(t.delay_for(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), at) > Duration::ZERO);
    }

    #[test]
    fn history_per_address_is_bounded() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        fail(&t, A, now, 1000);
        assert!(t.lock().get(&A).is_some_and(|v| v.len() <= KEPT_FAILURES));
        assert_eq!(t.delay_for(A, now), MAX_DELAY);
    }
}
