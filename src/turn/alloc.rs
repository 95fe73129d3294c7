//! The allocations table (RFC 8656 §2.2, §5): one allocation per client
//! 5-tuple, each with its relay port, permissions and channel bindings.
//! Every set is bounded: allocations by the relay port range and the
//! quotas, permissions and channels per allocation by constants.
//! Peer and client addresses live here, in memory only, while the
//! allocation does.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

/// Permissions per allocation (RFC 8656 §9: the server may limit them).
pub const MAX_PERMISSIONS: usize = 32;
/// Channel bindings per allocation.
pub const MAX_CHANNELS: usize = 32;
/// Permission lifetime, seconds (RFC 8656 §9: 300).
pub const PERMISSION_LIFETIME: i64 = 300;
/// Channel binding lifetime, seconds (RFC 8656 §12: 600).
pub const CHANNEL_LIFETIME: i64 = 600;

pub struct Allocation {
    pub user: String,
    pub key: [u8; 16],
    pub relayed: SocketAddr,
    pub expires: i64,
    /// Transaction id of the Allocate that made it (retransmissions get the
    /// same answer, RFC 8656 §7.2).
    pub tid: [u8; 12],
    perms: Vec<(IpAddr, i64)>,
    channels: Vec<(u16, SocketAddr, i64)>,
}

impl Allocation {
    pub fn permitted(&self, ip: IpAddr, now: i64) -> bool {
        self.perms.iter().any(|&(p, e)| p == ip && e > now)
    }

    /// Install or refresh a permission; false when the table is full.
    pub fn permit(&mut self, ip: IpAddr, now: i64) -> bool {
        self.perms.retain(|&(_, e)| e > now);
        if let Some(p) = self.perms.iter_mut().find(|p| p.0 == ip) {
            p.1 = now + PERMISSION_LIFETIME;
            return true;
        }
        if self.perms.len() >= MAX_PERMISSIONS {
            return false;
        }
        self.perms.push((ip, now + PERMISSION_LIFETIME));
        true
    }

    pub fn channel_peer(&self, ch: u16, now: i64) -> Option<SocketAddr> {
        self.channels
            .iter()
            .find(|c| c.0 == ch && c.2 > now)
            .map(|c| c.1)
    }

    pub fn peer_channel(&self, peer: SocketAddr, now: i64) -> Option<u16> {
        self.channels
            .iter()
            .find(|c| c.1 == peer && c.2 > now)
            .map(|c| c.0)
    }

    /// Bind or refresh (RFC 8656 §11.2); Err(()) on a conflicting binding or
    /// a full table.
    pub fn bind(&mut self, ch: u16, peer: SocketAddr, now: i64) -> Result<(), &'static str> {
        self.channels.retain(|c| c.2 > now);
        let by_ch = self.channels.iter().position(|c| c.0 == ch);
        let by_peer = self.channels.iter().position(|c| c.1 == peer);
        match (by_ch, by_peer) {
            (Some(a), Some(b)) if a == b => {
                self.channels[a].2 = now + CHANNEL_LIFETIME;
                Ok(())
            }
            (None, None) if self.channels.len() < MAX_CHANNELS => {
                self.channels.push((ch, peer, now + CHANNEL_LIFETIME));
                Ok(())
            }
            (None, None) => Err("Too many channels"),
            _ => Err("Channel or peer already bound"),
        }
    }
}

/// Relay ports not in use, taken round-robin so a freed port is reused last.
pub struct Ports {
    free: VecDeque<u16>,
}

impl Ports {
    pub fn new(lo: u16, hi: u16) -> Ports {
        Ports {
            free: (lo..=hi).collect(),
        }
    }
    pub fn take(&mut self) -> Option<u16> {
        self.free.pop_front()
    }
    pub fn give(&mut self, p: u16) {
        self.free.push_back(p);
    }
    pub fn available(&self) -> usize {
        self.free.len()
    }
}

#[derive(Default)]
pub struct Table {
    by_client: HashMap<SocketAddr, Allocation>,
    by_port: HashMap<u16, SocketAddr>,
    per_user: HashMap<String, usize>,
    per_ip: HashMap<IpAddr, usize>,
}

impl Table {
    pub fn len(&self) -> usize {
        self.by_client.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }
    pub fn get(&self, client: &SocketAddr) -> Option<&Allocation> {
        self.by_client.get(client)
    }
    pub fn get_mut(&mut self, client: &SocketAddr) -> Option<&mut Allocation> {
        self.by_client.get_mut(client)
    }
    pub fn client_of_port(&self, port: u16) -> Option<SocketAddr> {
        self.by_port.get(&port).copied()
    }
    pub fn user_count(&self, user: &str) -> usize {
        self.per_user.get(user).copied().unwrap_or(0)
    }
    pub fn ip_count(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        client: SocketAddr,
        user: String,
        key: [u8; 16],
        relayed: SocketAddr,
        expires: i64,
        tid: [u8; 12],
    ) {
        *self.per_user.entry(user.clone()).or_default() += 1;
        *self.per_ip.entry(client.ip()).or_default() += 1;
        self.by_port.insert(relayed.port(), client);
        self.by_client.insert(
            client,
            Allocation {
                user,
                key,
                relayed,
                expires,
                tid,
                perms: Vec::new(),
                channels: Vec::new(),
            },
        );
    }

    /// Remove an allocation; returns its relay port.
    pub fn remove(&mut self, client: &SocketAddr) -> Option<u16> {
        let a = self.by_client.remove(client)?;
        self.by_port.remove(&a.relayed.port());
        dec(&mut self.per_user, &a.user);
        dec(&mut self.per_ip, &client.ip());
        Some(a.relayed.port())
    }

    /// Clients whose allocations have expired.
    pub fn expired(&self, now: i64) -> Vec<SocketAddr> {
        self.by_client
            .iter()
            .filter(|(_, a)| a.expires <= now)
            .map(|(c, _)| *c)
            .collect()
    }
}

fn dec<K: std::hash::Hash + Eq + ?Sized + ToOwned>(m: &mut HashMap<K::Owned, usize>, k: &K)
where
    K::Owned: std::hash::Hash + Eq + std::borrow::Borrow<K>,
{
    if let Some(n) = m.get_mut(k) {
        *n -= 1;
        if *n == 0 {
            m.remove(k);
        }
    }
}
