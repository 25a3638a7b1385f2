use super::*;

#[test]
fn values_round_trip_in_few_bytes() {
    let values = [
        0,
        1,
        127,
        128,
        300,
        16_383,
        16_384,
        u32::MAX as u64,
        u64::MAX,
    ];
    let mut out = Vec::new();
    for value in values {
        put(&mut out, value);
    }
    assert_eq!(out.len(), 1 + 1 + 1 + 2 + 2 + 2 + 3 + 5 + 10);
    let mut input = out.as_slice();
    for value in values {
        assert_eq!(take(&mut input), Some(value));
    }
    assert!(input.is_empty());
}

#[test]
fn cut_or_oversized_values_are_refused() {
    let mut out = Vec::new();
    put(&mut out, 1 << 40);
    assert_eq!(take(&mut &out[..out.len() - 1]), None, "cut short");
    let oversized = [0xFF; 9].into_iter().chain([0x02]).collect::<Vec<u8>>();
    assert_eq!(take(&mut oversized.as_slice()), None, "more than 64 bits");
    assert_eq!(take(&mut [0x80; 11].as_slice()), None, "no last byte");
}
