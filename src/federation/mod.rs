//! The server-server API as served: inbound routes, request
//! authentication (X-Matrix), per-server admission, and the receiver that
//! takes in other servers' transactions.

pub mod admission;
pub mod auth;
pub mod inbound;
pub mod receiver;
pub mod routes;
