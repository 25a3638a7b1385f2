//! `[push]`: push gateways pushers name.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Push {
    /// Non-public addresses or CIDR ranges push gateways may be at (a
    /// UnifiedPush or ntfy server on the LAN), for pushers only; besides
    /// what `federation.allow_private_addresses` and
    /// `federation.ip_allowlist` open to everything outbound.
    pub ip_allowlist: Vec<String>,
}
