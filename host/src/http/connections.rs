//! How many connections the agent serves at once, in total and per client
//! address, so that one client (or a flood of idle sockets) cannot take
//! every file descriptor and lock everyone else out.

use crate::auth::throttle::client_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

pub struct ConnectionLimits {
    max_total: usize,
    max_per_address: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// A connection being served; dropping it frees its place.
pub struct Admitted {
    limits: Arc<ConnectionLimits>,
    address: IpAddr,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Total,
    PerAddress,
}

impl ConnectionLimits {
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            max_total: max_total.max(1),
            max_per_address: max_per_address.max(1),
            open: Mutex::new(Open::default()),
        })
    }

    /// A place for a connection from `peer`, or why there is none.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admitted, Refused> {
        let address = client_key(peer);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max_total {
            return Err(Refused::Total);
        }
        let mine = open.per_address.entry(address).or_default();
        if *mine >= self.max_per_address {
            return Err(Refused::PerAddress);
        }
        *mine += 1;
        open.total += 1;
        Ok(Admitted {
            limits: Arc::clone(self),
            address,
        })
    }

    /// Connections being served now.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .limits
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.per_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn per_address_and_total_bounds_and_release() {
        let limits = ConnectionLimits::new(3, 2);
        let a1 = limits.admit(A).unwrap();
        let _a2 = limits.admit(A).unwrap();
        assert_eq!(limits.admit(A).err(), Some(Refused::PerAddress));
        let _b1 = limits.admit(B).unwrap();
        assert_eq!(limits.admit(B).err(), Some(Refused::Total));
        drop(a1);
        assert_eq!(limits.open(), 2);
        assert!(limits.admit(A).is_ok());
    }

    #[test]
    fn ipv6_neighbours_share_a_budget_and_mapped_ipv4_is_ipv4() {
        let limits = ConnectionLimits::new(100, 1);
        let _one = limits
            .admit(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 3, 4, 5, 6)))
            .unwrap();
        let neighbour = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
        assert_eq!(limits.admit(neighbour).err(), Some(Refused::PerAddress));
        let _a = limits.admit(A).unwrap();
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(limits.admit(mapped).err(), Some(Refused::PerAddress));
    }
}
