use super::token;

#[test]
fn tokens_round_trip_and_sync_positions_start_past_their_events() {
    let position = (42, "$abc_def-1".to_owned());
    assert_eq!(
        token::parse(&token::format(&position)).expect("ours"),
        position
    );
    assert_eq!(token::parse("s7_1_2").expect("sync"), (8, String::new()));
    for bad in ["r", "r12", "rx_$a", "r1_nope", "b12", ""] {
        let error = token::parse(bad).expect_err(bad);
        assert_eq!(error.errcode, "M_INVALID_PARAM", "{bad}");
    }
}
