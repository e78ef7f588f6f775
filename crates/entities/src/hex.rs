//! Lowercase hex for bytes on the wire (inline model data, file heads, digests).

use std::fmt;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Why a string is not hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HexError {
    OddLength(usize),
    InvalidChar { ch: char, at: usize },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OddLength(len) => write!(f, "odd number of hex digits ({len})"),
            Self::InvalidChar { ch, at } => write!(f, "{ch:?} at {at} is not a hex digit"),
        }
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn nibble(c: u8, at: usize, text: &str) -> Result<u8, HexError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(HexError::InvalidChar {
            ch: text[at..]
                .chars()
                .next()
                .unwrap_or(char::REPLACEMENT_CHARACTER),
            at,
        }),
    }
}

/// The bytes of a hex string (either case).
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, HexError> {
    let bytes = text.as_bytes();
    if let Some(at) = bytes.iter().position(|b| !b.is_ascii_hexdigit()) {
        nibble(bytes[at], at, text)?;
    }
    if !bytes.len().is_multiple_of(2) {
        return Err(HexError::OddLength(bytes.len()));
    }
    bytes
        .chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| Ok(nibble(pair[0], 2 * i, text)? << 4 | nibble(pair[1], 2 * i + 1, text)?))
        .collect()
}

/// `#[serde(with = "crate::hex::bytes")]`: a `Vec<u8>` as one lowercase hex string.
pub(crate) mod bytes {
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::decode(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes() {
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (&[0x00, 0xff, 0x1a], "00ff1a"),
            (b"kiln", "6b696c6e"),
        ];
        for (bytes, text) in cases {
            assert_eq!(encode(bytes), *text);
            assert_eq!(decode(text).as_deref(), Ok(*bytes));
            assert_eq!(decode(&text.to_uppercase()).as_deref(), Ok(*bytes));
        }
    }

    #[test]
    fn rejects_bad_hex() {
        assert_eq!(decode("abc"), Err(HexError::OddLength(3)));
        assert_eq!(decode("0g"), Err(HexError::InvalidChar { ch: 'g', at: 1 }));
        assert_eq!(decode("é0"), Err(HexError::InvalidChar { ch: 'é', at: 0 }));
    }
}
