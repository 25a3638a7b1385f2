//! Rooms: the event pipeline, state and timeline, and the features built
//! on them, each in its own folder with both its local half (what this
//! server does with its store) and its remote half (what it asks of other
//! servers through `peers`).

pub mod activity;
mod appservices;
pub mod checks;
pub mod client_event;
pub mod directory;
pub mod event;
pub mod hierarchy;
pub mod history;
pub mod ingest;
pub mod join;
pub mod membership;
pub mod notify;
pub mod outliers;
pub mod partial;
pub mod pipeline;
pub mod reads;
pub mod relations;
pub mod search;
mod servers;
mod shorts;
pub mod state_res;
pub mod upgrade;
pub mod user_directory;

pub use pipeline::RoomService;
