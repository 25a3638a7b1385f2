use super::*;

#[test]
fn delays_double_with_jitter_up_to_a_day() {
    for (failures, base) in [
        (1, 5),
        (2, 10),
        (3, 20),
        (10, 2560),
        (15, 81920),
        (16, 86400),
        (40, 86400),
    ] {
        let delay = delay_after(failures).as_secs_f64();
        assert!(
            delay >= base as f64 * 0.8 && delay <= base as f64 * 1.2,
            "{failures}: {delay}"
        );
    }
}

#[test]
fn failures_hold_off_and_success_clears() {
    let backoff = Backoff::default();
    let name = <&ServerName>::try_from("down.example").expect("name");
    assert!(backoff.check(name).is_ok());
    backoff.record_failure(name, "refused");
    backoff.record_failure(name, "refused again");
    let state = backoff.check(name).expect_err("backing off");
    assert_eq!(
        (state.consecutive_failures, state.last_error.as_str()),
        (2, "refused again")
    );
    backoff.record_success(name);
    assert!(backoff.check(name).is_ok());
    assert!(backoff.state(name).is_none());
}
