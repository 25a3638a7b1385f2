//! Configuration: built-in defaults, then `config.toml`, then `HEARTH_*`
//! environment variables (nested keys split by `__`, e.g.
//! `HEARTH_LISTEN__FEDERATION`).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};
use ruma::OwnedServerName;
use serde::{Deserialize, Serialize};

pub mod appservices;
mod auth;
mod media;
mod push;
mod voip;
pub use auth::Auth;
pub use media::Media;
pub use push::Push;
pub use voip::Voip;

/// Published keys never expire sooner than this (the spec asks origin
/// servers not to serve keys that expire within an hour).
pub const MIN_KEY_VALIDITY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The name in user IDs and room aliases: `example.org`.
    pub server_name: OwnedServerName,
    /// Where every piece of state lives: back it up and you have backed up the server.
    pub data_dir: PathBuf,
    pub listen: Listen,
    pub tls: Tls,
    pub federation: Federation,
    pub keys: Keys,
    pub well_known: WellKnown,
    pub rooms: Rooms,
    pub metrics: Metrics,
    pub registration: Registration,
    pub limits: Limits,
    pub backup: Backup,
    pub media: Media,
    pub voip: Voip,
    pub auth: Auth,
    pub push: Push,
    pub appservice: appservices::AppserviceSection,
    /// Log filter in tracing's syntax: "info", "hearth=debug,warn".
    pub log: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Federation listener: HTTPS when `tls.cert` and `tls.key` are set.
    pub federation: SocketAddr,
    /// Client-server API and the loopback admin API, plain HTTP.
    pub client: SocketAddr,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Federation {
    pub verify_certificates: bool,
    /// PEM bundle trusted in addition to the system roots.
    pub extra_ca_file: Option<PathBuf>,
    /// Allow outbound connections to loopback and private ranges (tests, LANs).
    pub allow_private_addresses: bool,
    /// Notaries to ask for other servers' keys; empty means fetch directly.
    pub trusted_key_servers: Vec<OwnedServerName>,
    /// Upper bound on one outbound request, connect to last byte, in seconds.
    pub request_timeout_secs: u64,
    /// A destination whose oldest undelivered event is older than this
    /// (in seconds) gets only the newest event of each room, and fetches
    /// the gap itself with get_missing_events.
    pub catch_up_after_secs: u64,
    /// DNS servers (`ip:port`) for server discovery; empty means resolv.conf.
    pub nameservers: Vec<SocketAddr>,
    /// Addresses or CIDR ranges reachable even though they are not public.
    pub ip_allowlist: Vec<String>,
    /// Requests from one server handled at a time (but `/send`, which has
    /// its own limit).
    pub requests_per_server: usize,
    /// Requests from one server waiting for a slot; more get 429.
    pub waiting_per_server: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rooms {
    /// Room version for new rooms; the spec recommends "12".
    pub default_version: ruma::RoomVersionId,
    /// Join remote rooms with partial state (`omit_members`): the join
    /// returns once the room's non-member state is checked, and the
    /// member events follow in the background.
    #[serde(default = "yes")]
    pub partial_state_joins: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Serve Prometheus metrics at `GET /metrics` on the client listener.
    pub enabled: bool,
}

/// What a stranger may hold of this server: connections, time, memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Open connections on both listeners together; more are closed at once.
    pub max_connections: usize,
    /// Open connections from one address (an IPv6 /64 counts as one).
    pub connections_per_ip: usize,
    /// Addresses not capped per address (a reverse proxy on this machine).
    /// Their requests are attributed to the last `X-Forwarded-For` hop.
    pub proxy_addresses: Vec<std::net::IpAddr>,
    /// A connection with no request in progress and no bytes moving for
    /// this long is closed (seconds).
    pub idle_timeout_secs: u64,
    /// Longest wait for a request's headers, once they have begun (seconds).
    pub header_timeout_secs: u64,
    /// Longest time to receive a whole request body (seconds).
    pub body_timeout_secs: u64,
    /// Request body bytes being received at once, across all requests (MiB).
    pub body_mib_in_flight: usize,
    /// Logins allowed per address and per account in a burst, refilling at
    /// `login_per_minute`.
    pub login_burst: u32,
    pub login_per_minute: u32,
    /// Room messages one user may send in a burst, refilling per minute.
    pub messages_burst: u32,
    pub messages_per_minute: u32,
    /// Rooms one user may join in a burst, refilling per minute.
    pub joins_burst: u32,
    pub joins_per_minute: u32,
    /// Accounts one address may register in a burst, refilling per minute.
    pub registrations_burst: u32,
    pub registrations_per_minute: u32,
    /// MiB kept free on the data directory's disk: below it, writes are
    /// refused (reads go on) until space is freed.
    pub min_free_disk_mib: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            connections_per_ip: 64,
            proxy_addresses: vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()],
            idle_timeout_secs: 30,
            header_timeout_secs: 10,
            body_timeout_secs: 60,
            body_mib_in_flight: 64,
            login_burst: 5,
            login_per_minute: 6,
            messages_burst: 100,
            messages_per_minute: 600,
            joins_burst: 20,
            joins_per_minute: 30,
            registrations_burst: 3,
            registrations_per_minute: 1,
            min_free_disk_mib: 100,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Let anyone reach `POST /register`; off, accounts come from `hearth user add`.
    pub enabled: bool,
    /// When set, registering needs this token (`m.login.registration_token`).
    pub token: Option<String>,
}

/// What we publish under `/.well-known/matrix/` for a reverse-proxy setup.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WellKnown {
    /// `m.server` for `/.well-known/matrix/server`, e.g. "matrix.example.org:443".
    pub server: Option<String>,
    /// `m.homeserver.base_url` for `/.well-known/matrix/client`.
    pub client: Option<String>,
}

/// Scheduled backups (`hearth backup DIR` takes one by hand).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// Where scheduled backups go, one directory each; none: no schedule.
    pub dir: Option<PathBuf>,
    /// How often: "24h", "6h", "30m" or seconds.
    pub every: Interval,
    /// How many to keep; the oldest beyond it are removed.
    pub keep: usize,
    /// KiB read and written per second at most (0: as fast as the disk goes).
    pub kib_per_sec: u64,
}

impl Default for Backup {
    fn default() -> Self {
        Self {
            dir: None,
            every: Interval(Duration::from_secs(86_400)),
            keep: 7,
            kib_per_sec: 0,
        }
    }
}

/// A period written as `"24h"`, `"30m"`, `"90s"` or seconds; at least a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DurationText", into = "DurationText")]
pub struct Interval(pub Duration);

impl TryFrom<DurationText> for Interval {
    type Error = String;

    fn try_from(value: DurationText) -> Result<Self, String> {
        let duration = value.duration()?;
        if duration.is_zero() {
            return Err("must be at least 1s".into());
        }
        Ok(Interval(duration))
    }
}

impl From<Interval> for DurationText {
    fn from(value: Interval) -> Self {
        DurationText::Seconds(value.0.as_secs())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// How long a published key response stays valid: "7d", "12h", "90m" or seconds.
    pub validity: KeyValidity,
}

/// A duration written as `"7d"`, `"12h"`, `"30m"`, `"3600s"` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DurationText", into = "DurationText")]
pub struct KeyValidity(pub Duration);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum DurationText {
    Seconds(u64),
    Text(String),
}

impl DurationText {
    fn duration(self) -> Result<Duration, String> {
        match self {
            DurationText::Seconds(s) => Ok(Duration::from_secs(s)),
            DurationText::Text(text) => parse_duration(&text),
        }
    }
}

impl TryFrom<DurationText> for KeyValidity {
    type Error = String;

    fn try_from(value: DurationText) -> Result<Self, String> {
        let duration = value.duration()?;
        if duration < MIN_KEY_VALIDITY {
            return Err(format!(
                "{}s is less than the minimum of 1h",
                duration.as_secs()
            ));
        }
        Ok(KeyValidity(duration))
    }
}

impl From<KeyValidity> for DurationText {
    fn from(value: KeyValidity) -> Self {
        DurationText::Seconds(value.0.as_secs())
    }
}

/// `"7d"`, `"12h"`, `"30m"`, `"90s"` or seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like \"7d\", \"12h\" or \"3600s\""))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit {unit:?} (use s, m, h or d)"
            ))
        }
    };
    number
        .checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server_name: OwnedServerName::try_from("localhost").expect("static server name"),
            data_dir: PathBuf::from("data"),
            listen: Listen {
                federation: SocketAddr::from(([0, 0, 0, 0], 8448)),
                client: SocketAddr::from(([127, 0, 0, 1], 8008)),
            },
            tls: Tls::default(),
            federation: Federation {
                verify_certificates: true,
                extra_ca_file: None,
                allow_private_addresses: false,
                trusted_key_servers: Vec::new(),
                request_timeout_secs: 30,
                catch_up_after_secs: 3600,
                nameservers: Vec::new(),
                ip_allowlist: Vec::new(),
                requests_per_server: 3,
                waiting_per_server: 50,
            },
            well_known: WellKnown::default(),
            rooms: Rooms {
                default_version: ruma::RoomVersionId::V12,
                partial_state_joins: true,
            },
            metrics: Metrics::default(),
            registration: Registration::default(),
            limits: Limits::default(),
            backup: Backup::default(),
            media: Media::default(),
            voip: Voip::default(),
            auth: Auth::default(),
            push: Push::default(),
            appservice: Default::default(),
            keys: Keys {
                validity: KeyValidity(Duration::from_secs(7 * 86_400)),
            },
            log: "info".to_owned(),
        }
    }
}

impl Config {
    /// Loads defaults < `path` < `HEARTH_*`. A missing file at the default
    /// path is fine (defaults apply); a missing file the user named is not.
    pub fn load(path: &Path, path_was_given: bool) -> Result<Self, String> {
        if path_was_given && !path.exists() {
            return Err(format!("config file {} does not exist", path.display()));
        }
        let figment = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(path))
            .merge(Env::prefixed("HEARTH_").split("__"));
        let config: Config = figment.extract().map_err(describe_figment_error)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => return Err("tls.cert is set but tls.key is not".to_owned()),
            (None, Some(_)) => return Err("tls.key is set but tls.cert is not".to_owned()),
            _ => {}
        }
        if let Some(server) = &self.well_known.server {
            OwnedServerName::try_from(server.as_str())
                .map_err(|e| format!("well_known.server: {server:?} is not a server name: {e}"))?;
        }
        if self.rooms.default_version.rules().is_none() {
            return Err(format!(
                "rooms.default_version: {} is not a supported room version",
                self.rooms.default_version
            ));
        }
        if self.federation.request_timeout_secs == 0 {
            return Err("federation.request_timeout_secs must be at least 1".into());
        }
        if self.federation.requests_per_server == 0 {
            return Err("federation.requests_per_server must be at least 1".into());
        }
        if self.media.max_upload_size == 0 || self.media.max_remote_size == 0 {
            return Err(
                "media.max_upload_size and media.max_remote_size must be at least 1".into(),
            );
        }
        let limits = &self.limits;
        for (name, value) in [
            ("limits.max_connections", limits.max_connections as u64),
            (
                "limits.connections_per_ip",
                limits.connections_per_ip as u64,
            ),
            ("limits.idle_timeout_secs", limits.idle_timeout_secs),
            ("limits.header_timeout_secs", limits.header_timeout_secs),
            ("limits.body_timeout_secs", limits.body_timeout_secs),
            (
                "limits.body_mib_in_flight",
                limits.body_mib_in_flight as u64,
            ),
            ("limits.login_burst", limits.login_burst.into()),
            ("limits.login_per_minute", limits.login_per_minute.into()),
            ("limits.messages_burst", limits.messages_burst.into()),
            (
                "limits.messages_per_minute",
                limits.messages_per_minute.into(),
            ),
            ("limits.joins_burst", limits.joins_burst.into()),
            ("limits.joins_per_minute", limits.joins_per_minute.into()),
            (
                "limits.registrations_burst",
                limits.registrations_burst.into(),
            ),
            (
                "limits.registrations_per_minute",
                limits.registrations_per_minute.into(),
            ),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        Ok(())
    }

    pub fn key_validity(&self) -> Duration {
        self.keys.validity.0
    }
}

/// One line naming the offending key, e.g.
/// `config: listen.federation: invalid socket address syntax (from config.toml)`.
fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                "(top level)".to_string()
            } else {
                e.path.join(".")
            };
            let source = e
                .metadata
                .as_ref()
                .and_then(|m| m.source.as_ref().map(|s| format!(" (from {s})")))
                .unwrap_or_default();
            format!("{key}: {}{source}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;
