//! Rooms: the event pipeline, state and timeline. So far: the per-PDU
//! checks every received or created event goes through.

pub mod client_event;
pub mod directory;
pub mod event;
pub mod hierarchy;
pub mod history;
pub mod ingest;
pub mod membership;
pub mod partial_join;
pub mod pdu;
mod servers;
pub mod service;
mod shorts;
pub mod state_res;
pub mod third_party_invite;
pub mod user_directory;
