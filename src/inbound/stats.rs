//! How inbound transactions fare: a latency histogram of `PUT /send`
//! (from the authenticated request to the durable answer) and the PDUs
//! taken in, exported on `/metrics` in Prometheus' text format.

use std::{
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// Bucket upper bounds, in seconds.
const BOUNDS: [f64; 16] = [
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0,
    5.0,
];

#[derive(Default)]
pub struct InboundStats {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_micros: AtomicU64,
    pdus: AtomicU64,
    /// Transactions answered (or found staged at start) not yet taken in.
    staged: AtomicU64,
    /// Requests refused because their origin had too many in progress.
    limited: AtomicU64,
    /// Authenticated requests being handled, and waiting for a slot.
    running: AtomicU64,
    waiting: AtomicU64,
}

impl InboundStats {
    /// One answered transaction.
    pub fn answered(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// A transaction staged, to be taken in.
    pub fn staged(&self) {
        self.staged.fetch_add(1, Ordering::Relaxed);
    }

    /// Transactions answered and not yet taken in.
    pub fn staged_now(&self) -> u64 {
        self.staged.load(Ordering::Relaxed)
    }

    /// A staged transaction's `pdus` PDUs taken in (stored or refused).
    pub fn taken_in(&self, pdus: usize) {
        self.pdus.fetch_add(pdus as u64, Ordering::Relaxed);
        self.staged.fetch_sub(1, Ordering::Relaxed);
    }

    /// A request refused with 429: its origin had too many in progress.
    pub fn limited(&self) {
        self.limited.fetch_add(1, Ordering::Relaxed);
    }

    /// A request starts (`true`) or stops (`false`) being handled.
    pub fn running(&self, starts: bool) {
        gauge(&self.running, starts);
    }

    /// A request starts or stops waiting for its origin's slot.
    pub fn waiting(&self, starts: bool) {
        gauge(&self.waiting, starts);
    }

    pub fn to_prometheus(&self) -> String {
        let name = "hearth_federation_inbound_transaction_seconds";
        let mut out = format!(
            "# HELP {name} Time to answer an inbound transaction.\n# TYPE {name} histogram\n"
        );
        let mut cumulative = 0;
        let bounds = BOUNDS.iter().map(|b| b.to_string()).chain(["+Inf".into()]);
        for (bound, count) in bounds.zip(&self.buckets) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
        let pdus = "hearth_federation_inbound_pdus_total";
        let _ = writeln!(
            out,
            "# HELP {pdus} PDUs from transactions taken in (stored or refused).\n# TYPE {pdus} counter\n{pdus} {}",
            self.pdus.load(Ordering::Relaxed)
        );
        let staged = "hearth_federation_inbound_staged_transactions";
        let _ = writeln!(
            out,
            "# HELP {staged} Transactions answered but not yet taken in.\n# TYPE {staged} gauge\n{staged} {}",
            self.staged_now()
        );
        let limited = "hearth_federation_inbound_limited_total";
        let _ = writeln!(
            out,
            "# HELP {limited} Requests refused (429) because their server had too many in progress.\n# TYPE {limited} counter\n{limited} {}",
            self.limited.load(Ordering::Relaxed)
        );
        let requests = "hearth_federation_inbound_requests";
        let _ = writeln!(
            out,
            "# HELP {requests} Authenticated requests being handled or waiting for their server's slot (transactions aside).\n# TYPE {requests} gauge\n{requests}{{state=\"running\"}} {}\n{requests}{{state=\"waiting\"}} {}",
            self.running.load(Ordering::Relaxed),
            self.waiting.load(Ordering::Relaxed)
        );
        out
    }
}

fn gauge(value: &AtomicU64, up: bool) {
    if up {
        value.fetch_add(1, Ordering::Relaxed);
    } else {
        value.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
