//! Connection slots: per-service counters taken at accept (before any TLS
//! work), a small per-client-address limit for connections that have not
//! authenticated, and the open-files limit that must fit them all.
//!
//! The client address lives only in `IpSlots`' map, only while a connection
//! from it is open and unauthenticated; it is never logged or stored, and
//! nothing here knows an account.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;

/// Unauthenticated connections one address may hold at once (a NAT of a
/// whole household or a busy peer relay stays well below this).
pub const UNAUTH_PER_IP: u32 = 32;
/// TLS handshakes in progress on 443 at once.
pub const MAX_HANDSHAKES: usize = 512;
/// HTTP connections at once (80 and 443).
pub const MAX_HTTP: usize = 1000;

/// Counts a live connection; decremented on drop.
pub struct ConnGuard(Rc<Cell<usize>>);

impl ConnGuard {
    pub fn try_new(c: &Rc<Cell<usize>>, max: usize) -> Option<ConnGuard> {
        if c.get() >= max {
            return None;
        }
        c.set(c.get() + 1);
        Some(ConnGuard(c.clone()))
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Per-address counters of unauthenticated connections.
pub struct IpSlots {
    max: u32,
    map: RefCell<HashMap<IpAddr, u32>>,
}

/// One unauthenticated connection's hold on its address' counter; released
/// on login (`release`) or when the connection ends.
pub struct IpSlot {
    slots: Option<(Rc<IpSlots>, IpAddr)>,
}

impl IpSlots {
    pub fn new(max: u32) -> IpSlots {
        IpSlots {
            max,
            map: RefCell::new(HashMap::new()),
        }
    }

    /// Take a slot for `ip`, or `None` when it holds `max` already.
    /// IPv6 addresses count per /64 (one host usually owns a whole /64).
    pub fn try_take(self: &Rc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let key = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        };
        let mut m = self.map.borrow_mut();
        let n = m.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            slots: Some((self.clone(), key)),
        })
    }

    /// Addresses currently holding slots (for tests and metrics).
    pub fn addresses(&self) -> usize {
        self.map.borrow().len()
    }
}

impl IpSlot {
    /// The connection authenticated: it no longer counts against its address.
    pub fn release(&mut self) {
        if let Some((slots, key)) = self.slots.take() {
            let mut m = slots.map.borrow_mut();
            if let Some(n) = m.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&key);
                }
            }
        }
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        self.release();
    }
}

/// Raise the soft `RLIMIT_NOFILE` to fit `needed` descriptors (up to the hard
/// limit). Returns a warning when even the hard limit is too low.
pub fn raise_nofile(needed: u64) -> Option<String> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let cur = getrlimit(Resource::Nofile);
    let hard = cur.maximum;
    let soft = cur.current.unwrap_or(u64::MAX);
    if soft >= needed {
        return None;
    }
    let want = match hard {
        Some(h) => needed.min(h),
        None => needed,
    };
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: hard,
        },
    );
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    (now < needed).then(|| {
        format!(
            "open-files limit is {now}, the configured connection limits need {needed}: \
             raise the hard limit (ulimit -Hn) or lower max_imap_connections/max_smtp_connections"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_slots() {
        let s = Rc::new(IpSlots::new(2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let b2: IpAddr = "2001:db8::2".parse().unwrap();
        let x = s.try_take(a).unwrap();
        let mut y = s.try_take(a).unwrap();
        assert!(s.try_take(a).is_none());
        y.release();
        let _z = s.try_take(a).unwrap();
        drop(x);
        let _p = s.try_take(b).unwrap();
        let _q = s.try_take(b2).unwrap();
        assert!(s.try_take(b).is_none(), "one /64 counts as one address");
        assert_eq!(s.addresses(), 2);
    }
}
