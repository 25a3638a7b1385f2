//! The one encoder of composite keys (and the few composite values): parts
//! joined by 0xFF, a byte that never occurs in UTF-8 text, so no text part
//! holds the separator and a prefix of whole parts selects exactly the keys
//! under it. Numbers go last, big-endian, so keys sort by them.

pub const SEP: u8 = 0xFF;

/// `parts` joined by [`SEP`].
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    let len = parts.iter().map(|part| part.len() + 1).sum();
    let mut key = Vec::with_capacity(len);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(SEP);
        }
        key.extend_from_slice(part);
    }
    key
}

/// `parts` each followed by [`SEP`]: where the keys under them start.
pub fn prefix(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = join(parts);
    key.push(SEP);
    key
}

/// The bytes before and after the first [`SEP`], if there is one.
pub fn split(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|b| *b == SEP)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

#[cfg(test)]
mod tests;
