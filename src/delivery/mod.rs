//! Delivery to other servers: the outbox services queue EDUs in, and the
//! sender, the background task that drains each destination's durable
//! queue (PDUs queued with the events that made them, EDUs through the
//! outbox) into transactions, with backoff and catch-up.

mod coalesce;
pub mod outbox;
pub mod sender;
pub mod status;
