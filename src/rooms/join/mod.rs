//! Joins, from both sides: as the resident server, answering `send_join`
//! with the room's state (`resident`) and vouching for joins to
//! restricted rooms (`restricted`); as the joining server, importing the
//! room from the answer (`import`), asked for through `membership`'s
//! handshake.
//! Spec: server-server-api.md "Joining Rooms", "Restricted rooms".

mod import;
mod remote;
mod resident;
mod restricted;

pub use resident::JoinAnswer;
