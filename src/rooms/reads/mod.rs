//! What clients and other servers read of rooms: current state, timeline
//! ranges, events and the state at them, who shares rooms with whom, and
//! room summaries.

pub mod access;
pub mod power;
pub mod query;
mod sharing;
pub mod summary;
pub mod sync_state;
mod views;
