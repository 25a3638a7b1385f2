//! Sync and pagination tokens.

use crate::error::{Error, Result};

/// Where a client is: the stream position, the ephemeral counter and the
/// last to-device message it was given (acknowledged by syncing past it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Token {
    pub position: u64,
    pub ephemeral: u64,
    pub to_device: u64,
}

impl Token {
    /// `s{position}_{ephemeral}_{to_device}`; missing parts read as 0
    /// (pagination tokens carry only the position).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::invalid_param(format!("{text:?} is not a sync token of this server"));
        let rest = text.strip_prefix('s').ok_or_else(bad)?;
        let mut parts = rest.split('_').map(|p| p.parse::<u64>().map_err(|_| bad()));
        let token = Self {
            position: parts.next().ok_or_else(bad)??,
            ephemeral: parts.next().transpose()?.unwrap_or(0),
            to_device: parts.next().transpose()?.unwrap_or(0),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(token)
    }

    /// A pagination token: just a position.
    pub fn at(position: u64) -> Self {
        Self {
            position,
            ..Self::default()
        }
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "s{}_{}_{}",
            self.position, self.ephemeral, self.to_device
        )
    }
}
