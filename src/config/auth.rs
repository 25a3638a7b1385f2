//! `[auth]`: how long access tokens live.

use serde::{Deserialize, Serialize};

use super::Interval;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// The lifetime of an access token whose client asked for a refresh
    /// token (`refresh_token: true` at login or registration); clients
    /// that did not ask keep tokens that never expire.
    pub access_token_lifetime: Interval,
}

impl Default for Auth {
    fn default() -> Self {
        // Synapse's default for refreshable tokens.
        Self {
            access_token_lifetime: Interval(std::time::Duration::from_secs(300)),
        }
    }
}
