use super::*;

fn sample(len: usize) -> Vec<u8> {
    (0..)
        .map(|n| format!("{{\"body\":\"message {n}\",\"msgtype\":\"m.text\"}}"))
        .flat_map(String::into_bytes)
        .take(len)
        .collect()
}

#[test]
fn frames_round_trip_small_and_large() {
    for len in [0, 1, 1000, REUSED_UP_TO, REUSED_UP_TO + 1, 300_000] {
        let data = sample(len);
        let frame = block::compress(&data, 5).expect("compress");
        assert!(
            len < 1000 || frame.len() < len / 2,
            "{len} -> {}",
            frame.len()
        );
        assert_eq!(stream::decode_all(frame.as_slice()).expect("decode"), data);
        assert_eq!(block::decompress(&frame, len).expect("decompress"), data);
    }
}

#[test]
fn damaged_frames_are_errors() {
    let frame = block::compress(&sample(5000), 5).expect("compress");
    assert!(
        stream::decode_all(&frame[..frame.len() / 2]).is_err(),
        "cut short"
    );
    assert!(
        block::decompress(&frame, 100).is_err(),
        "too small a capacity"
    );
    assert!(stream::decode_all(&b"not a zstd frame"[..]).is_err());
    // A header that declares 2^40 bytes is refused before allocating them.
    let mut huge = vec![0x28, 0xB5, 0x2F, 0xFD, 0xC0];
    huge.extend((1u64 << 40).to_le_bytes());
    assert!(stream::decode_all(huge.as_slice()).is_err());
}
