//! Deterministic test data and Cloud Storage's checksum notation.

/// Deterministic pseudo-random bytes: `len` bytes of stream `seed` starting at `offset`
/// (random access, so large data can be produced and compared chunk by chunk).
pub fn data_at(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut block = offset / 8;
    let skip = (offset % 8) as usize;
    while out.len() < len + skip {
        out.extend_from_slice(
            &splitmix(seed ^ block.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes(),
        );
        block += 1;
    }
    out.drain(..skip);
    out.truncate(len);
    out
}

pub fn data(seed: u64, len: usize) -> Vec<u8> {
    data_at(seed, 0, len)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Cloud Storage's base64 big-endian CRC32C.
pub fn crc32c_b64(crc: u32) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = crc.to_be_bytes();
    let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
    let m = u32::from(b[3]) << 16;
    [
        T[(n >> 18) as usize & 63],
        T[(n >> 12) as usize & 63],
        T[(n >> 6) as usize & 63],
        T[n as usize & 63],
        T[(m >> 18) as usize & 63],
        T[(m >> 12) as usize & 63],
        b'=',
        b'=',
    ]
    .iter()
    .map(|&c| c as char)
    .collect()
}

#[test]
fn helpers() {
    use super::s3_encode_key;
    assert_eq!(s3_encode_key("a b/ü+x.txt"), "a+b/%C3%BC%2Bx.txt");
    assert_eq!(
        gcs_sync::event::decode_key(&s3_encode_key("日本 😀%")).unwrap(),
        "日本 😀%"
    );
    let all = data(7, 100);
    assert_eq!(data_at(7, 13, 50), all[13..63]);
    assert_eq!(crc32c_b64(crc32c::crc32c(b"hello")), "mnG7TA==");
}
