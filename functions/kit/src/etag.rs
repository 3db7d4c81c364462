//! S3 ETags as content MD5s.

/// The MD5 in a single-part upload's ETag (`"<32 hex>"`, quotes optional). Multipart ETags
/// (`"<hex>-<parts>"`) are not content MD5s: `None`. (SSE-KMS and SSE-C ETags are not MD5s
/// either but look alike; callers that know the encryption must skip those.)
pub fn md5(etag: &str) -> Option<[u8; 16]> {
    md5_hex(etag.trim().trim_matches('"'))
}

/// 32 hex digits as 16 bytes.
pub fn md5_hex(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_part_etags_only() {
        let md5_of_hello = [
            0x5d, 0x41, 0x40, 0x2a, 0xbc, 0x4b, 0x2a, 0x76, 0xb9, 0x71, 0x9d, 0x91, 0x10, 0x17,
            0xc5, 0x92,
        ];
        assert_eq!(
            md5("\"5d41402abc4b2a76b9719d911017c592\""),
            Some(md5_of_hello)
        );
        assert_eq!(md5("5d41402abc4b2a76b9719d911017c592"), Some(md5_of_hello));
        assert_eq!(md5("\"9b2cf535f27731c974343645a3985328-2\""), None);
        assert_eq!(md5("zz41402abc4b2a76b9719d911017c592"), None);
        assert_eq!(md5("5d41402abc4b2a76b9719d911017c59é"), None);
        assert_eq!(md5(""), None);
    }
}
