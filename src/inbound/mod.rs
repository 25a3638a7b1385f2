//! What other servers send us, as a service below the federation routes:
//! each server's requests admitted a few at a time (`admission`), its
//! transactions checked, staged, answered and then taken in, in order
//! (`receiver`), and the numbers an operator watches (`stats`).
//! Spec: server-server-api.md "Transactions".

pub mod admission;
pub mod receiver;
pub mod stats;
