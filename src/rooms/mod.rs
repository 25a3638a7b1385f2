//! Rooms: the event pipeline, state and timeline. So far: the per-PDU
//! checks every received or created event goes through.

pub mod event;
pub mod pdu;
pub mod service;
pub mod state_res;
