//! Slowing down password guessing, per client address.
//!
//! A client that keeps failing to log in is made to wait before each further attempt, with a
//! delay that doubles up to a cap. Legitimate typos (a few failures) cost nothing, and a success
//! forgives the failures at once.
//!
//! Attempts are paced, not just delayed: each one is given its turn after the previous one's
//! turn plus the delay, and counts as a failure from the moment it is admitted until it
//! succeeds. So sending many attempts at once does not multiply guesses: past the free ones,
//! one address gets at most one password check per [`MAX_DELAY`]. An attempt whose turn is
//! further away than [`MAX_QUEUED_WAIT`] is refused at once rather than held.

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
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// Longest an attempt is held waiting for its turn; later turns are refused (429).
pub const MAX_QUEUED_WAIT: Duration = Duration::from_secs(10);
/// Failures kept per address: enough to reach `MAX_DELAY`, so memory per address is bounded.
const KEPT_FAILURES: usize = 16;
/// Addresses tracked at once, so that a flood from many addresses cannot grow memory without
/// bound; past it the address idle the longest is forgotten.
const DEFAULT_CAPACITY: usize = 10_000;

#[derive(Debug)]
pub struct LoginThrottle {
    capacity: usize,
    clients: Mutex<HashMap<IpAddr, Client>>,
}

#[derive(Debug, Default)]
struct Client {
    /// Attempts admitted and not (yet) successful, oldest first.
    failures: VecDeque<Instant>,
    /// When the last admitted attempt may have its password checked.
    last_turn: Option<Instant>,
}

/// What an attempt must do before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Wait this long, then check.
    Wait(Duration),
    /// Too many attempts queued from this address: try again after this long.
    Refused(Duration),
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
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Admits an attempt from `ip` at `now`: how long it waits for its turn, or its refusal.
    /// An admitted attempt counts as a failure until [`LoginThrottle::record_success`].
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Admission {
        let key = client_key(ip);
        let mut clients = self.lock();
        if !clients.contains_key(&key) && clients.len() >= self.capacity {
            self.evict(&mut clients, now);
        }
        let client = clients.entry(key).or_default();
        client.failures.retain(|t| is_recent(*t, now));
        let delay = delay_after(client.failures.len());
        let turn = client.last_turn.map_or(now, |last| last.max(now)) + delay;
        let wait = turn.saturating_duration_since(now);
        if wait > MAX_QUEUED_WAIT {
            return Admission::Refused(wait - MAX_QUEUED_WAIT);
        }
        client.last_turn = Some(turn);
        if client.failures.len() >= KEPT_FAILURES {
            client.failures.pop_front();
        }
        client.failures.push_back(now);
        Admission::Wait(wait)
    }

    /// The attempt's password was right: its address's failures are forgiven.
    pub fn record_success(&self, ip: IpAddr) {
        if let Some(client) = self.lock().get_mut(&client_key(ip)) {
            client.failures.clear();
        }
    }

    /// Forgets addresses with nothing recent, then the idlest one if still full.
    fn evict(&self, clients: &mut HashMap<IpAddr, Client>, now: Instant) {
        clients.retain(|_, c| {
            c.failures.back().is_some_and(|t| is_recent(*t, now))
                || c.last_turn.is_some_and(|t| t > now)
        });
        if clients.len() >= self.capacity {
            let idlest = clients
                .iter()
                .min_by_key(|(_, c)| c.failures.back().copied())
                .map(|(ip, _)| *ip);
            if let Some(idlest) = idlest {
                clients.remove(&idlest);
            }
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Client>> {
        // The map is consistent after any panic (each update is a single insert/remove), so a
        // poisoned lock is still usable.
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
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

/// The unit a client pays for: one IPv4 address, or one IPv6 /64, since
/// anyone with IPv6 usually holds a whole /64 and could otherwise rotate
/// addresses for free.
pub fn client_key(ip: IpAddr) -> IpAddr {
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
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    fn wait(admission: Admission) -> Duration {
        match admission {
            Admission::Wait(d) => d,
            Admission::Refused(_) => panic!("refused"),
        }
    }

    /// `times` sequential failed attempts, each at its turn.
    fn fail(t: &LoginThrottle, ip: IpAddr, mut now: Instant, times: usize) -> Instant {
        for _ in 0..times {
            now += wait(t.admit(ip, now));
        }
        now
    }

    #[test]
    fn five_failures_are_free_then_the_delay_grows_to_the_cap() {
        let t = LoginThrottle::default();
        let now = fail(&t, A, Instant::now(), 5);
        let mut previous = wait(t.admit(A, now));
        assert_eq!(previous, Duration::from_millis(500));
        let mut at = now + previous;
        for _ in 0..20 {
            let d = wait(t.admit(A, at));
            assert!(d >= previous && d <= MAX_DELAY, "{d:?} after {previous:?}");
            previous = d;
            at += d;
        }
        assert_eq!(previous, MAX_DELAY);
        assert_eq!(
            wait(t.admit(B, at)),
            Duration::ZERO,
            "other addresses are not slowed"
        );
    }

    #[test]
    fn concurrent_attempts_are_paced_and_the_queue_is_bounded() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let admissions: Vec<Admission> = (0..200).map(|_| t.admit(A, now)).collect();
        let turns: Vec<Duration> = admissions
            .iter()
            .filter_map(|a| match a {
                Admission::Wait(d) => Some(*d),
                Admission::Refused(_) => None,
            })
            .collect();
        assert!(turns.len() < 12, "{} admitted at once", turns.len());
        // Past the free five, each check is at least the delay after the previous one.
        for pair in turns[5..].windows(2) {
            assert!(pair[1] >= pair[0] + BASE_DELAY, "{pair:?}");
        }
        assert!(turns.iter().all(|d| *d <= MAX_QUEUED_WAIT));
        assert!(matches!(admissions[199], Admission::Refused(r) if r > Duration::ZERO));
    }

    #[test]
    fn fewer_than_five_failures_cost_nothing() {
        let t = LoginThrottle::default();
        let now = fail(&t, A, Instant::now(), 4);
        assert_eq!(wait(t.admit(A, now)), Duration::ZERO);
        assert!(wait(t.admit(A, now)) > Duration::ZERO);
    }

    #[test]
    fn failures_expire_after_the_window() {
        let t = LoginThrottle::default();
        let end = fail(&t, A, Instant::now(), 10);
        let later = end + WINDOW + Duration::from_secs(1);
        assert_eq!(wait(t.admit(A, later)), Duration::ZERO);
    }

    #[test]
    fn success_forgives() {
        let t = LoginThrottle::default();
        let end = fail(&t, A, Instant::now(), 8);
        t.record_success(A);
        let after = end + MAX_DELAY;
        assert_eq!(wait(t.admit(A, after)), Duration::ZERO);
    }

    #[test]
    fn ipv6_neighbours_share_a_budget_and_mapped_ipv4_is_ipv4() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..6u16 {
            t.admit(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, i, i, i)),
                now,
            );
        }
        let neighbour = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
        assert!(wait(t.admit(neighbour, now)) > Duration::ZERO);
        let other_net = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert_eq!(wait(t.admit(other_net, now)), Duration::ZERO);

        for _ in 0..6 {
            t.admit(A, now);
        }
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert!(wait(t.admit(mapped, now)) > Duration::ZERO);
    }

    #[test]
    fn memory_is_bounded_and_the_idlest_address_goes_first() {
        let t = LoginThrottle::new(3);
        let start = Instant::now();
        for (i, n) in [1u8, 2, 3, 4, 5].into_iter().enumerate() {
            let at = start + Duration::from_secs(60 * i as u64);
            fail(&t, IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), at, 6);
            assert!(t.tracked() <= 3);
        }
        let at = start + Duration::from_secs(300);
        assert_eq!(
            wait(t.admit(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), at)),
            Duration::ZERO
        );
    }

    #[test]
    fn history_per_address_is_bounded() {
        let t = LoginThrottle::default();
        let now = fail(&t, A, Instant::now(), 100);
        assert!(
            t.lock()
                .get(&A)
                .is_some_and(|c| c.failures.len() <= KEPT_FAILURES)
        );
        assert_eq!(wait(t.admit(A, now)), MAX_DELAY);
    }
}
