//! Step 3 of server name resolution: `https://<hostname>/.well-known/matrix/server`,
//! its validation and its cache. Spec: server-server-api.md "Resolving
//! server names" and the `wellknown` endpoint.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant, SystemTime},
};

use http::{header, HeaderMap, StatusCode};
use ruma::OwnedServerName;

/// Largest well-known body read; real ones are a few dozen bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;
const DEFAULT_CACHE: Duration = Duration::from_secs(24 * 3600);
const MAX_CACHE: Duration = Duration::from_secs(48 * 3600);
/// A well-known that changes more often than this is not honoured sooner.
const MIN_CACHE: Duration = Duration::from_secs(5 * 60);
/// Failures are cached for this long, doubling per consecutive failure...
const FIRST_FAILURE_CACHE: Duration = Duration::from_secs(5 * 60);
/// ...up to this.
const MAX_FAILURE_CACHE: Duration = Duration::from_secs(3600);
/// Hosts remembered at once; the oldest entries go first.
const MAX_ENTRIES: usize = 10_000;

/// How long a successful response may be cached, from its headers.
pub fn cache_duration(headers: &HeaderMap) -> Duration {
    let from_cache_control = headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(|value| {
            let directives: Vec<String> = value
                .split(',')
                .map(|d| d.trim().to_ascii_lowercase())
                .collect();
            if directives
                .iter()
                .any(|d| d == "no-store" || d == "no-cache")
            {
                return Some(Duration::ZERO);
            }
            directives.iter().find_map(|d| {
                d.strip_prefix("max-age=")?
                    .parse()
                    .ok()
                    .map(Duration::from_secs)
            })
        });
    let from_expires = || {
        let expires = headers.get(header::EXPIRES)?.to_str().ok()?;
        let at = httpdate::parse_http_date(expires).ok()?;
        Some(
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    };
    from_cache_control
        .or_else(from_expires)
        .unwrap_or(DEFAULT_CACHE)
        .clamp(MIN_CACHE, MAX_CACHE)
}

/// Validates a well-known response and returns the delegated server name.
pub fn parse_response(status: StatusCode, body: &[u8]) -> Result<String, String> {
    if status != StatusCode::OK {
        return Err(format!("answered {status}"));
    }
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let server = json
        .get("m.server")
        .ok_or("no m.server property")?
        .as_str()
        .ok_or("m.server is not a string")?;
    let name = OwnedServerName::try_from(server)
        .map_err(|e| format!("m.server {server:?} is not a server name: {e}"))?;
    Ok(name.to_string())
}

/// What resolving a hostname's well-known gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delegation {
    /// `m.server`: resolution continues with this authority.
    To(String),
    /// Absent or invalid: resolution continues with the hostname (steps 4-6).
    None(String),
}

struct Entry {
    delegation: Delegation,
    expires: Instant,
    inserted: Instant,
    consecutive_failures: u32,
}

#[derive(Default)]
pub struct WellKnownCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl WellKnownCache {
    pub fn get(&self, host: &str) -> Option<Delegation> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(host)
            .filter(|e| e.expires > Instant::now())
            .map(|e| e.delegation.clone())
    }

    pub fn put_success(&self, host: &str, delegation: String, ttl: Duration) {
        self.insert(host, Delegation::To(delegation), ttl, 0);
    }

    /// Caches a failure; repeated failures back off exponentially.
    pub fn put_failure(&self, host: &str, reason: String) {
        let failures = {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.get(host).map_or(0, |e| e.consecutive_failures)
        };
        let ttl = FIRST_FAILURE_CACHE
            .saturating_mul(1 << failures.min(8))
            .min(MAX_FAILURE_CACHE);
        self.insert(host, Delegation::None(reason), ttl, failures + 1);
    }

    fn insert(&self, host: &str, delegation: Delegation, ttl: Duration, consecutive_failures: u32) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(host) {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= MAX_ENTRIES {
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.inserted)
                    .map(|(k, _)| k.clone())
                {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            host.to_owned(),
            Entry {
                delegation,
                expires: now + ttl,
                inserted: now,
                consecutive_failures,
            },
        );
    }
}

#[cfg(test)]
mod tests;
