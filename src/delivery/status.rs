//! What `hearth federation status` shows for each destination: its queue,
//! when it last took a transaction, and its failures and next retry.

use std::collections::{BTreeMap, HashMap};

use ruma::{EventId, OwnedServerName};
use serde::{Deserialize, Serialize};

use crate::{
    error::Result,
    store::{
        destinations::Failing,
        outbound::{OutboundTree, Queued},
    },
};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DestinationStatus {
    pub destination: String,
    pub queued: usize,
    /// `origin_server_ts` of the oldest queued PDU (Unix ms).
    pub oldest_queued_ms: Option<u64>,
    /// Known only to a running server.
    pub last_success_ms: Option<u64>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub next_retry_ms: Option<u64>,
}

/// Every destination with something queued, a failure on record, or
/// (for a running server) a success since it started.
pub fn collect(
    queue: &OutboundTree,
    failing: Vec<(OwnedServerName, Failing)>,
    last_success: &HashMap<OwnedServerName, u64>,
    ts_of: impl Fn(&EventId) -> Option<u64>,
) -> Result<Vec<DestinationStatus>> {
    let mut all: BTreeMap<OwnedServerName, DestinationStatus> = BTreeMap::new();
    for name in queue.destinations()? {
        let oldest = queue.first(&name)?;
        let status = all.entry(name.clone()).or_default();
        status.queued = queue.depth(&name);
        status.oldest_queued_ms = oldest.and_then(|item| match item {
            Queued::Pdu { event_id } => ts_of(&event_id),
            _ => None,
        });
    }
    for (name, failing) in failing {
        let status = all.entry(name).or_default();
        status.consecutive_failures = failing.consecutive_failures;
        status.last_error = Some(failing.last_error);
        status.next_retry_ms = Some(failing.retry_at_ms);
    }
    for (name, ms) in last_success {
        all.entry(name.clone()).or_default().last_success_ms = Some(*ms);
    }
    for (name, status) in &mut all {
        status.destination = name.to_string();
    }
    Ok(all.into_values().collect())
}

/// A table for people: one line per destination.
pub fn to_text(statuses: &[DestinationStatus], now_ms: u64) -> String {
    if statuses.is_empty() {
        return "no destination has anything queued or a recent failure".into();
    }
    let ago = |ms: Option<u64>| match ms {
        Some(ms) => format!("{}s ago", now_ms.saturating_sub(ms) / 1000),
        None => "-".into(),
    };
    let mut lines = vec![format!(
        "{:<32} {:>7} {:>12} {:>12} {:>8} {:>10}  last error",
        "destination", "queued", "oldest", "last ok", "failures", "retry in"
    )];
    for s in statuses {
        let retry = match s.next_retry_ms {
            Some(ms) => format!("{}s", ms.saturating_sub(now_ms) / 1000),
            None => "-".into(),
        };
        lines.push(format!(
            "{:<32} {:>7} {:>12} {:>12} {:>8} {:>10}  {}",
            s.destination,
            s.queued,
            ago(s.oldest_queued_ms),
            ago(s.last_success_ms),
            s.consecutive_failures,
            retry,
            s.last_error.as_deref().unwrap_or("-")
        ));
    }
    lines.join("\n")
}

/// One metric's value for a destination at a time (Unix ms).
type Gauge = fn(&DestinationStatus, u64) -> Option<f64>;

/// The same numbers in Prometheus' text format.
pub fn to_prometheus(statuses: &[DestinationStatus], now_ms: u64) -> String {
    let gauges: [(&str, &str, Gauge); 5] = [
        (
            "hearth_federation_queued",
            "Events and EDUs waiting for the destination.",
            |s, _| Some(s.queued as f64),
        ),
        (
            "hearth_federation_consecutive_failures",
            "Failed attempts since the last success.",
            |s, _| Some(f64::from(s.consecutive_failures)),
        ),
        (
            "hearth_federation_oldest_queued_age_seconds",
            "Age of the oldest queued event.",
            |s, now| {
                s.oldest_queued_ms
                    .map(|ms| now.saturating_sub(ms) as f64 / 1000.0)
            },
        ),
        (
            "hearth_federation_last_success_timestamp_seconds",
            "When the destination last took a transaction.",
            |s, _| s.last_success_ms.map(|ms| ms as f64 / 1000.0),
        ),
        (
            "hearth_federation_next_retry_timestamp_seconds",
            "When a failing destination is tried again.",
            |s, _| s.next_retry_ms.map(|ms| ms as f64 / 1000.0),
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in gauges {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for status in statuses {
            if let Some(v) = value(status, now_ms) {
                let label = status
                    .destination
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"");
                out.push_str(&format!("{name}{{destination=\"{label}\"}} {v}\n"));
            }
        }
    }
    out
}
