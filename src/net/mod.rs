//! The network: the outbound HTTPS client and the server discovery it
//! dials through (well-known, DNS), the address policy judged on each
//! address dialled, web pages fetched for URL previews, per-destination backoff, and TLS configuration for
//! both directions. Knows nothing of Matrix requests above the wire: the
//! signed, typed calls are in `peers`.

pub mod backoff;
pub mod dns;
pub mod https;
pub mod ip_policy;
pub mod tls;
pub mod web;
pub mod well_known;
