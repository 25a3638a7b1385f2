use super::*;

#[test]
fn buckets_are_cumulative_and_bounded_by_inf() {
    let stats = InboundStats::default();
    stats.answered(Duration::from_micros(1500));
    stats.answered(Duration::from_millis(4));
    stats.answered(Duration::from_secs(9));
    for _ in 0..3 {
        stats.staged();
    }
    stats.taken_in(50);
    stats.taken_in(10);
    let text = stats.to_prometheus();
    for line in [
        "hearth_federation_inbound_transaction_seconds_bucket{le=\"0.001\"} 0",
        "hearth_federation_inbound_transaction_seconds_bucket{le=\"0.002\"} 1",
        "hearth_federation_inbound_transaction_seconds_bucket{le=\"0.005\"} 2",
        "hearth_federation_inbound_transaction_seconds_bucket{le=\"5\"} 2",
        "hearth_federation_inbound_transaction_seconds_bucket{le=\"+Inf\"} 3",
        "hearth_federation_inbound_transaction_seconds_count 3",
        "hearth_federation_inbound_pdus_total 60",
        "hearth_federation_inbound_staged_transactions 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}
