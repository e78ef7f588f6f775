//! Telling inference inputs apart by content: the magic bytes of JPEG, PNG, MP4 and WebM, and a
//! base64 reader that decodes only the first bytes of a string and counts the rest.

use crate::macros::wire_enum;

/// How many leading bytes of a file [`detect_file_type`] wants: enough for every signature,
/// including WebM's `DocType`, which sits inside the EBML header.
pub const SNIFF_LEN: usize = 64;

wire_enum! {
    /// A file type inference accepts.
    pub enum FileType ("file type") {
        /// A JPEG image (`FF D8 FF`).
        Jpeg => "jpeg",
        /// A PNG image (`89 50 4E 47 0D 0A 1A 0A`).
        Png => "png",
        /// An MP4 video (an ISO-BMFF `ftyp` box at offset 4).
        Mp4 => "mp4",
        /// A WebM video (EBML header `1A 45 DF A3` with `DocType` `webm`).
        Webm => "webm",
    }
}

impl FileType {
    /// Whether this is a still image.
    pub const fn is_image(self) -> bool {
        matches!(self, Self::Jpeg | Self::Png)
    }

    /// Whether this is a video.
    pub const fn is_video(self) -> bool {
        matches!(self, Self::Mp4 | Self::Webm)
    }

    /// The MIME type.
    pub const fn mime_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Mp4 => "video/mp4",
            Self::Webm => "video/webm",
        }
    }
}

const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];
const PNG_MAGIC: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
const EBML_MAGIC: &[u8] = &[0x1A, 0x45, 0xDF, 0xA3];
const EBML_DOC_TYPE: &[u8] = &[0x42, 0x82];

/// ISO-BMFF major brands that are not MP4 video: HEIF/HEIC and AVIF still images, QuickTime.
const NON_MP4_BRANDS: &[&[u8; 4]] = &[
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis",
    b"qt  ",
];

/// The type of a file from its first bytes (pass at least [`SNIFF_LEN`] of them, or the whole
/// file when it is shorter). `None` when the content is none of JPEG, PNG, MP4 or WebM — the
/// name or extension of a file plays no part.
///
/// ```
/// use kiln_entities::{FileType, detect_file_type};
///
/// assert_eq!(detect_file_type(b"\x89PNG\r\n\x1a\n...."), Some(FileType::Png));
/// assert_eq!(detect_file_type(b"GIF89a"), None);
/// ```
pub fn detect_file_type(head: &[u8]) -> Option<FileType> {
    if head.starts_with(JPEG_MAGIC) {
        return Some(FileType::Jpeg);
    }
    if head.starts_with(PNG_MAGIC) {
        return Some(FileType::Png);
    }
    if head.get(4..8) == Some(b"ftyp") {
        let brand = head.get(8..12)?;
        return (!NON_MP4_BRANDS.iter().any(|b| b[..] == *brand)).then_some(FileType::Mp4);
    }
    if head.starts_with(EBML_MAGIC) {
        return (ebml_doc_type(head)? == b"webm").then_some(FileType::Webm);
    }
    None
}

/// Reads an EBML variable-length integer: its value (marker bit removed) and the rest.
fn read_vint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let first = *bytes.first()?;
    let len = usize::try_from(first.leading_zeros()).ok()? + 1;
    if len > 8 {
        return None;
    }
    let (raw, rest) = bytes.split_at_checked(len)?;
    let mut value = u64::from(first) & (0xFF_u64 >> len);
    for &b in &raw[1..] {
        value = value << 8 | u64::from(b);
    }
    Some((value, rest))
}

/// The `DocType` of an EBML header, found by walking the header's child elements.
fn ebml_doc_type(head: &[u8]) -> Option<&[u8]> {
    let rest = head.strip_prefix(EBML_MAGIC)?;
    let (header_len, rest) = read_vint(rest)?;
    let header_len = usize::try_from(header_len).unwrap_or(usize::MAX);
    let mut body = &rest[..header_len.min(rest.len())];
    while !body.is_empty() {
        let id_len = usize::try_from(body[0].leading_zeros()).ok()? + 1;
        let (id, rest) = body.split_at_checked(id_len)?;
        let (len, rest) = read_vint(rest)?;
        let len = usize::try_from(len).ok()?;
        if id == EBML_DOC_TYPE {
            return rest.get(..len);
        }
        body = rest.get(len..)?;
    }
    None
}

/// What [`read_base64`] learns from a base64 string without decoding all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Base64Summary {
    /// The first decoded bytes (at most [`SNIFF_LEN`]).
    pub(crate) head: Vec<u8>,
    /// The decoded size in bytes.
    pub(crate) size: u64,
}

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Checks a base64 string (standard or URL-safe alphabet, padding optional, no whitespace),
/// decodes its first [`SNIFF_LEN`] bytes and computes its decoded size. The whole string is
/// scanned once; only the head is decoded.
pub(crate) fn read_base64(text: &str) -> Result<Base64Summary, String> {
    let bytes = text.as_bytes();
    let data = bytes
        .strip_suffix(b"==")
        .or_else(|| bytes.strip_suffix(b"="))
        .unwrap_or(bytes);
    let padded = data.len() != bytes.len();
    if let Some(at) = data.iter().position(|&c| sextet(c).is_none()) {
        let ch = text[at..]
            .chars()
            .next()
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        return Err(format!("{ch:?} at {at} is not a base64 character"));
    }
    if data.len() % 4 == 1 || (padded && !bytes.len().is_multiple_of(4)) {
        return Err(format!(
            "length {} is not a valid base64 length",
            bytes.len()
        ));
    }
    let size =
        u64::try_from(data.len() / 4 * 3 + (data.len() % 4).saturating_sub(1)).unwrap_or(u64::MAX);
    let take = SNIFF_LEN.div_ceil(3) * 4;
    let mut head = Vec::with_capacity(SNIFF_LEN + 2);
    for chunk in data[..take.min(data.len())].chunks(4) {
        let mut acc = 0_u32;
        for &c in chunk {
            acc = acc << 6 | u32::from(sextet(c).unwrap_or(0));
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let decoded = acc.to_be_bytes();
        head.extend_from_slice(&decoded[1..chunk.len()]);
    }
    head.truncate(SNIFF_LEN);
    Ok(Base64Summary { head, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain base64 encoder, for the tests only.
    fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let mut acc = 0_u32;
            for (i, &b) in chunk.iter().enumerate() {
                acc |= u32::from(b) << (16 - 8 * i);
            }
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[(acc >> (18 - 6 * i) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn base64_heads_and_sizes() {
        for len in [0, 1, 2, 3, 4, 5, 63, 64, 65, 66, 100, 1000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let padded = encode(&bytes);
            let unpadded = padded.trim_end_matches('=');
            let url_safe = padded.replace('+', "-").replace('/', "_");
            for text in [padded.as_str(), unpadded, url_safe.as_str()] {
                let summary = read_base64(text).expect("valid base64");
                assert_eq!(summary.size, len as u64, "{text}");
                assert_eq!(summary.head, bytes[..len.min(SNIFF_LEN)], "{text}");
            }
        }
    }

    #[test]
    fn base64_rejects_garbage() {
        for text in [
            "A",
            "AAAAA",
            "AA=A",
            "AAA*",
            "A===",
            "AB=",
            "AAAA AAAA",
            "ééé",
            "AAAAA===",
        ] {
            assert!(read_base64(text).is_err(), "{text}");
        }
    }

    #[test]
    fn vints() {
        assert_eq!(read_vint(&[0x84, 9]), Some((4, &[9][..])));
        assert_eq!(read_vint(&[0x40, 0x02]), Some((2, &[][..])));
        assert_eq!(read_vint(&[0x01, 0, 0, 0, 0, 0, 0, 4]), Some((4, &[][..])));
        assert_eq!(read_vint(&[0x00]), None);
        assert_eq!(read_vint(&[0x40]), None);
        assert_eq!(read_vint(&[]), None);
    }
}
