//! `[voip]`: the TURN server clients use for calls through NAT.

use serde::{Deserialize, Serialize};

use super::Interval;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Voip {
    /// `turn:`/`turns:` URIs of the TURN server; none: no TURN offered.
    pub turn_uris: Vec<String>,
    /// The secret shared with the TURN server (coturn's
    /// `static-auth-secret`), from which each user's credentials are made.
    pub turn_shared_secret: Option<String>,
    /// How long the credentials handed out stay valid.
    pub turn_ttl: Interval,
}

impl Default for Voip {
    fn default() -> Self {
        Self {
            turn_uris: Vec::new(),
            turn_shared_secret: None,
            turn_ttl: Interval(std::time::Duration::from_secs(86_400)),
        }
    }
}
