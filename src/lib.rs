//! hearth: a lean Matrix homeserver. One binary, one `config.toml`, one
//! `data/` directory.

pub mod accounts;
pub mod admin;
pub mod alloc;
pub mod blocking;
pub mod client;
pub mod config;
pub mod delivery;
pub mod e2ee;
pub mod edus;
pub mod error;
pub mod federation;
pub mod http_util;
pub mod inbound;
pub mod keys;
pub mod listener;
pub mod metrics;
pub mod net;
pub mod peers;
pub mod request;
pub mod rooms;
pub mod server;
pub mod services;
pub mod store;
pub mod sync;
pub mod time;
