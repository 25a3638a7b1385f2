//! The server-server API: inbound routes and request authentication, and
//! the outbound client.

pub mod admission;
pub mod auth;
pub mod backoff;
pub mod check;
pub mod client;
mod coalesce;
pub mod dns;
pub mod inbound;
pub mod ip_policy;
pub mod receiver;
pub mod requester;
pub mod routes;
pub mod sender;
pub mod status;
pub mod well_known;
