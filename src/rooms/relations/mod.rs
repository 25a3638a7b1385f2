//! Relations between events: a parent's children paged (`/relations`),
//! a room's threads by latest reply (`/threads`), the aggregations
//! bundled into a parent as clients read it (`bundle.rs`), and the checks
//! a new relation passes before it is sent (`checks.rs`). Remote events
//! are indexed as they arrive, so this feature has no remote half: a
//! thread joined over federation reads like one started here.
//! Spec: client-server-api "Forming relationships between events",
//! "Threading", "Event replacements", "Reference relations",
//! "Event annotations and reactions"; relations.yaml, threads_list.yaml.

mod bundle;
mod checks;
mod query;

pub use bundle::Bundler;
pub use query::{RelationsPage, RelationsQuery, ThreadsPage, ThreadsQuery};

/// The index's positions, as clients hold them: `r{stream}_{event ID}`.
pub mod token {
    use crate::{
        error::{Error, Result},
        store::rooms::relations::Position,
        sync::Token,
    };

    pub fn format((stream, id): &Position) -> String {
        format!("r{stream}_{id}")
    }

    /// A token of ours, or a `/sync` or `/messages` position (what the
    /// spec lets clients start from): before every event after it.
    pub fn parse(text: &str) -> Result<Position> {
        let bad = || Error::invalid_param(format!("{text:?} is not a pagination token"));
        if let Some(rest) = text.strip_prefix('r') {
            let (stream, id) = rest.split_once('_').ok_or_else(bad)?;
            let stream = stream.parse().map_err(|_| bad())?;
            ruma::EventId::parse(id).map_err(|_| bad())?;
            return Ok((stream, id.to_owned()));
        }
        let position = Token::parse(text).map_err(|_| bad())?.position;
        Ok((position.saturating_add(1), String::new()))
    }
}

#[cfg(test)]
mod tests;
