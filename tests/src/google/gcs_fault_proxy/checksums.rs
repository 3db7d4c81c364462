//! The checksums an upload declares and the running hashes of what arrived.

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use http::HeaderMap;
use md5::{Digest as _, Md5};
use serde_json::Value;

/// Checksums an upload declares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Declared {
    pub(super) crc32c: Option<u32>,
    pub(super) md5: Option<[u8; 16]>,
}

impl Declared {
    pub(super) fn is_empty(&self) -> bool {
        self.crc32c.is_none() && self.md5.is_none()
    }

    /// `crc32c` / `md5Hash` of a JSON object resource (or trailer).
    pub(super) fn from_json(value: &Value) -> Result<Self, String> {
        let mut declared = Declared::default();
        if let Some(text) = value.get("crc32c").and_then(Value::as_str) {
            declared.crc32c = Some(decode_crc32c(text)?);
        }
        if let Some(text) = value.get("md5Hash").and_then(Value::as_str) {
            declared.md5 = Some(decode_md5(text)?);
        }
        Ok(declared)
    }

    /// Values of `x-goog-hash: crc32c=...,md5=...` override.
    pub(super) fn with_headers(mut self, headers: &HeaderMap) -> Result<Self, String> {
        for value in headers.get_all("x-goog-hash") {
            let value = value
                .to_str()
                .map_err(|_| "invalid x-goog-hash".to_string())?;
            for item in value.split(',') {
                match item.trim().split_once('=') {
                    Some(("crc32c", v)) => self.crc32c = Some(decode_crc32c(v)?),
                    Some(("md5", v)) => self.md5 = Some(decode_md5(v)?),
                    _ => return Err(format!("invalid x-goog-hash entry {item:?}")),
                }
            }
        }
        Ok(self)
    }
}

pub(super) fn decode_crc32c(text: &str) -> Result<u32, String> {
    let bytes = BASE64_STANDARD
        .decode(text)
        .map_err(|_| format!("Invalid crc32c {text:?}."))?;
    let bytes: [u8; 4] = bytes
        .try_into()
        .map_err(|_| format!("Invalid crc32c {text:?}."))?;
    Ok(u32::from_be_bytes(bytes))
}

pub(super) fn decode_md5(text: &str) -> Result<[u8; 16], String> {
    let bytes = BASE64_STANDARD
        .decode(text)
        .map_err(|_| format!("Invalid md5Hash {text:?}."))?;
    bytes
        .try_into()
        .map_err(|_| format!("Invalid md5Hash {text:?}."))
}

/// Running CRC32C and MD5 of object data.
#[derive(Clone)]
pub(super) struct Hashers {
    pub(super) crc32c: u32,
    pub(super) md5: Md5,
    pub(super) len: u64,
}

impl Hashers {
    pub(super) fn new() -> Self {
        Self {
            crc32c: 0,
            md5: Md5::new(),
            len: 0,
        }
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        self.crc32c = crc32c::crc32c_append(self.crc32c, data);
        self.md5.update(data);
        self.len += data.len() as u64;
    }

    /// Cloud Storage's 400 message if a declared checksum does not match.
    pub(super) fn verify(&self, declared: &Declared) -> Result<(), String> {
        if let Some(crc) = declared.crc32c
            && crc != self.crc32c
        {
            return Err(format!(
                "Provided CRC32C \"{}\" doesn't match calculated CRC32C \"{}\".",
                BASE64_STANDARD.encode(crc.to_be_bytes()),
                BASE64_STANDARD.encode(self.crc32c.to_be_bytes())
            ));
        }
        if let Some(md5) = declared.md5 {
            let computed = self.md5.clone().finalize();
            if md5[..] != computed[..] {
                return Err(format!(
                    "Provided MD5 hash \"{}\" doesn't match calculated MD5 hash \"{}\".",
                    BASE64_STANDARD.encode(md5),
                    BASE64_STANDARD.encode(&computed[..])
                ));
            }
        }
        Ok(())
    }
}
