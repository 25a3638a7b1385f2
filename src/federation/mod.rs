//! The server-server API: inbound routes and request authentication, and
//! the outbound client.

pub mod auth;
pub mod client;
pub mod ip_policy;
pub mod routes;
