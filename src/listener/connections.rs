//! How many connections are open, per address and in total. Past either
//! cap a new connection is closed before anything is read from it, so a
//! flood of idle connections cannot take every file descriptor (the
//! server would stop accepting anyone, and stop writing its database).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use crate::config::Limits;

/// File descriptors kept for everything but inbound connections: the
/// database, outbound connections to other servers, DNS.
const RESERVED_FDS: u64 = 512;
/// The open-files limit asked for, at most.
const MAX_FDS: libc::rlim_t = 65_536;

pub struct Connections {
    max_total: usize,
    per_ip: usize,
    proxies: Vec<IpAddr>,
    open: Mutex<Open>,
    refused_per_ip: AtomicU64,
    refused_total: AtomicU64,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Why a connection was closed unread.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    TooManyFromAddress,
    TooMany,
}

/// An open connection's place in the counts, given back on drop.
pub struct Slot {
    connections: Arc<Connections>,
    address: Option<IpAddr>,
}

impl Connections {
    pub fn new(limits: &Limits) -> Self {
        let fds = raise_fd_limit();
        let usable = fds.saturating_sub(RESERVED_FDS).max(64) as usize;
        if limits.max_connections > usable {
            tracing::warn!(
                configured = limits.max_connections,
                open_files_limit = fds,
                using = usable,
                "limits.max_connections is more than the open-files limit allows"
            );
        }
        Self {
            max_total: limits.max_connections.min(usable),
            per_ip: limits.connections_per_ip,
            proxies: limits.proxy_addresses.clone(),
            open: Mutex::default(),
            refused_per_ip: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
        }
    }

    /// Counts a new connection from `ip`, or refuses it.
    pub fn open(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let mut open = self.counts();
        if open.total >= self.max_total {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%ip, "refused a connection: too many open");
            return Err(Refusal::TooMany);
        }
        let address = (!self.is_proxy(ip)).then(|| address_key(ip));
        if let Some(address) = address {
            let count = open.by_address.entry(address).or_default();
            if *count >= self.per_ip {
                self.refused_per_ip.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%ip, "refused a connection: too many from this address");
                return Err(Refusal::TooManyFromAddress);
            }
            *count += 1;
        }
        open.total += 1;
        Ok(Slot {
            connections: self.clone(),
            address,
        })
    }

    pub fn is_proxy(&self, ip: IpAddr) -> bool {
        self.proxies.contains(&ip.to_canonical())
    }

    pub fn open_now(&self) -> usize {
        self.counts().total
    }

    /// Connections refused so far: (too many from one address, too many in all).
    pub fn refused(&self) -> (u64, u64) {
        (
            self.refused_per_ip.load(Ordering::Relaxed),
            self.refused_total.load(Ordering::Relaxed),
        )
    }

    fn counts(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.connections.counts();
        open.total -= 1;
        if let Some(address) = self.address {
            if let Some(count) = open.by_address.get_mut(&address) {
                *count -= 1;
                if *count == 0 {
                    open.by_address.remove(&address);
                }
            }
        }
    }
}

/// What counts as one address: an IPv4 address, or an IPv6 /64 (one
/// subscriber's network: each of its 2^64 addresses is theirs to use).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// Raises the soft open-files limit to the hard one, as Synapse does (the
/// soft default of 1,024 is low for a server), and returns the limit.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        // An unlimited hard limit is not a value the kernel takes.
        let target = limit.rlim_max.min(MAX_FDS);
        if limit.rlim_cur < target {
            let raised = libc::rlimit {
                rlim_cur: target,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = target;
            }
        }
    }
    // rlim_t is 32 bits on 32-bit ARM (a Raspberry Pi), 64 elsewhere.
    #[allow(clippy::useless_conversion)]
    u64::from(limit.rlim_cur)
}

#[cfg(test)]
mod tests;
