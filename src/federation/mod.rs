//! The server-server API as served: one route file per endpoint and
//! request authentication (X-Matrix). What the routes hand on goes to
//! the services, transactions to `inbound`.

pub mod auth;
pub mod routes;
