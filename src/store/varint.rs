//! LEB128 unsigned integers, for compact binary records: seven bits a
//! byte, low first, the high bit set on every byte but the last (short
//! ids and gaps between sorted ids mostly take one to three bytes).

/// Appends `value`.
pub(super) fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads one value from the front of `input`, advancing it; `None` when
/// `input` ends inside a value or it does not fit a u64.
pub(super) fn take(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (n, byte) in input.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7F);
        if n == 9 && bits > 1 {
            return None;
        }
        value |= bits << (7 * n);
        if byte & 0x80 == 0 {
            *input = &input[n + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests;
