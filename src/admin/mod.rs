//! The admin API: on the client listener (loopback by default), under
//! `/_hearth/admin/v1/`, authenticated by the token in `data_dir/admin.token`.
//! The CLI uses it to change a running server, since only one process can
//! open the database; tests and benches use it to drive a server directly.

pub mod appservices;
pub mod client;
mod edus;
pub mod federation_check;
pub mod media;
pub mod push;
pub mod reports;
mod rooms;
pub mod routes;
mod token;
pub mod users;

pub use routes::routes;
pub use token::{load_or_create_token, read_token, tokens_match, TOKEN_FILE};
