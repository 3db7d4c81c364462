//! S3's checksum of a whole object (`HeadObject` / `GetObject` with `ChecksumMode::Enabled`),
//! and how to compute the same one from the bytes read, part by part: a copy in parts is
//! compared with it before it is composed. Only a checksum of the whole object's bytes
//! (`FULL_OBJECT`, which every single-request upload has) in a CRC that combines over parts
//! (CRC32, CRC32C, CRC64NVME) can be compared; a `COMPOSITE` one (a checksum of the parts'
//! checksums, per S3 part: other boundaries than ours) or a SHA cannot.

use aws_sdk_s3::types::ChecksumType;
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use crc_fast::CrcAlgorithm;

/// A CRC S3 can keep of an object's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crc {
    Crc32,
    Crc32c,
    Crc64Nvme,
}

impl Crc {
    /// S3's name of the algorithm.
    pub fn name(self) -> &'static str {
        match self {
            Crc::Crc32 => "CRC32",
            Crc::Crc32c => "CRC32C",
            Crc::Crc64Nvme => "CRC64NVME",
        }
    }

    fn algorithm(self) -> CrcAlgorithm {
        match self {
            Crc::Crc32 => CrcAlgorithm::Crc32IsoHdlc,
            Crc::Crc32c => CrcAlgorithm::Crc32Iscsi,
            Crc::Crc64Nvme => CrcAlgorithm::Crc64Nvme,
        }
    }

    /// The CRC of `data`.
    pub fn of(self, data: &[u8]) -> u64 {
        crc_fast::checksum(self.algorithm(), data)
    }

    /// The CRC of bytes whose first part has CRC `a` and whose next `b_len` bytes have `b`.
    pub fn combine(self, a: u64, b: u64, b_len: u64) -> u64 {
        crc_fast::checksum_combine(self.algorithm(), a, b, b_len)
    }

    /// Width in bytes of the value.
    fn width(self) -> usize {
        match self {
            Crc::Crc32 | Crc::Crc32c => 4,
            Crc::Crc64Nvme => 8,
        }
    }
}

/// A CRC of the whole object's bytes, as S3 reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FullObjectChecksum {
    pub crc: Crc,
    pub value: u64,
}

impl FullObjectChecksum {
    /// The value as S3 writes it (base64 of the big-endian bytes).
    pub fn encoded(crc: Crc, value: u64) -> String {
        BASE64_STANDARD.encode(&value.to_be_bytes()[8 - crc.width()..])
    }
}

/// What S3 says of an object's checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceChecksum {
    /// A CRC of the whole object: a copy's bytes can be compared with it.
    Full(FullObjectChecksum),
    /// None, or one that cannot be compared with bytes read in other parts: why.
    NotComparable(String),
}

/// The checksum headers of an S3 answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReportedChecksums<'a> {
    pub crc32: Option<&'a str>,
    pub crc32c: Option<&'a str>,
    pub crc64nvme: Option<&'a str>,
    pub sha: bool,
    pub checksum_type: Option<&'a ChecksumType>,
    /// The object's ETag (`-N` at the end: a multipart upload).
    pub etag: &'a str,
}

/// The [`ReportedChecksums`] of a `HeadObject` or `GetObject` answer (same accessors), of
/// an object whose ETag is `etag`.
macro_rules! reported_checksums {
    ($answer:expr, $etag:expr) => {
        $crate::s3::checksum::ReportedChecksums {
            crc32: $answer.checksum_crc32(),
            crc32c: $answer.checksum_crc32_c(),
            crc64nvme: $answer.checksum_crc64_nvme(),
            sha: $answer.checksum_sha1().is_some() || $answer.checksum_sha256().is_some(),
            checksum_type: $answer.checksum_type(),
            etag: $etag,
        }
    };
}
pub(crate) use reported_checksums;

impl SourceChecksum {
    /// From S3's answer. Without a `ChecksumType` (older answers, emulators), an object
    /// uploaded in one request has a full-object checksum; a multipart one is not compared.
    pub fn from_reported(r: ReportedChecksums<'_>) -> Self {
        let reported = [
            (Crc::Crc64Nvme, r.crc64nvme),
            (Crc::Crc32c, r.crc32c),
            (Crc::Crc32, r.crc32),
        ]
        .into_iter()
        .find_map(|(crc, value)| value.filter(|v| !v.is_empty()).map(|v| (crc, v)));
        let Some((crc, text)) = reported else {
            return SourceChecksum::NotComparable(if r.sha {
                "S3 keeps a SHA checksum, which does not combine over parts".into()
            } else {
                "S3 reports no checksum".into()
            });
        };
        let multipart = r.etag.trim_matches('"').contains('-');
        let full = match r.checksum_type {
            Some(ChecksumType::FullObject) => true,
            Some(ChecksumType::Composite) => false,
            Some(_) => false,
            None => !multipart && !text.contains('-'),
        };
        if !full {
            return SourceChecksum::NotComparable(format!(
                "S3's {} is a checksum of its upload's parts (COMPOSITE or multipart without a \
                 type), not of the object's bytes",
                crc.name()
            ));
        }
        match decode(crc, text) {
            Some(value) => SourceChecksum::Full(FullObjectChecksum { crc, value }),
            None => SourceChecksum::NotComparable(format!(
                "S3's {} {text:?} is not a base64 {}-byte value",
                crc.name(),
                crc.width()
            )),
        }
    }
}

fn decode(crc: Crc, text: &str) -> Option<u64> {
    let bytes = BASE64_STANDARD.decode(text).ok()?;
    (bytes.len() == crc.width()).then(|| bytes.iter().fold(0u64, |v, b| v << 8 | u64::from(*b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported<'a>(crc64nvme: Option<&'a str>, etag: &'a str) -> ReportedChecksums<'a> {
        ReportedChecksums {
            crc64nvme,
            etag,
            ..ReportedChecksums::default()
        }
    }

    #[test]
    fn crcs_combine_over_parts() {
        for crc in [Crc::Crc32, Crc::Crc32c, Crc::Crc64Nvme] {
            let whole = crc.of(b"hello world");
            assert_eq!(crc.combine(crc.of(b"hello "), crc.of(b"world"), 5), whole);
        }
        assert_eq!(
            Crc::Crc32c.of(b"hello world"),
            u64::from(crc32c::crc32c(b"hello world"))
        );
        // The check values of the catalogue (`123456789`).
        assert_eq!(Crc::Crc32.of(b"123456789"), 0xcbf4_3926);
        assert_eq!(Crc::Crc64Nvme.of(b"123456789"), 0xae8b_1486_0a79_9888);
    }

    #[test]
    fn full_object_checksums_are_read() {
        let value = Crc::Crc64Nvme.of(b"hello");
        let text = FullObjectChecksum::encoded(Crc::Crc64Nvme, value);
        let full = SourceChecksum::Full(FullObjectChecksum {
            crc: Crc::Crc64Nvme,
            value,
        });
        assert_eq!(
            SourceChecksum::from_reported(reported(Some(&text), "\"abc\"")),
            full
        );
        let typed = ReportedChecksums {
            checksum_type: Some(&ChecksumType::FullObject),
            ..reported(Some(&text), "abc-3")
        };
        assert_eq!(SourceChecksum::from_reported(typed), full);
        let crc32c = ReportedChecksums {
            crc32c: Some("yZRlqg=="),
            ..reported(None, "abc")
        };
        assert_eq!(
            SourceChecksum::from_reported(crc32c),
            SourceChecksum::Full(FullObjectChecksum {
                crc: Crc::Crc32c,
                value: u64::from(crc32c::crc32c(b"hello world"))
            })
        );
        assert_eq!(
            FullObjectChecksum::encoded(Crc::Crc32c, u64::from(crc32c::crc32c(b"hello world"))),
            "yZRlqg=="
        );
    }

    #[test]
    fn composite_and_unusable_checksums_are_not_compared() {
        let not = |r| {
            matches!(
                SourceChecksum::from_reported(r),
                SourceChecksum::NotComparable(_)
            )
        };
        let composite = ReportedChecksums {
            crc32c: Some("yZRlqg==-3"),
            checksum_type: Some(&ChecksumType::Composite),
            ..reported(None, "abc-3")
        };
        assert!(not(composite));
        // Multipart without a type: could be either.
        assert!(not(ReportedChecksums {
            crc32c: Some("yZRlqg=="),
            ..reported(None, "abc-3")
        }));
        assert!(not(reported(None, "abc")));
        assert!(not(ReportedChecksums {
            sha: true,
            ..reported(None, "abc")
        }));
        assert!(
            not(reported(Some("yZRlqg=="), "abc")),
            "4 bytes for a CRC64"
        );
        assert!(not(reported(Some("not base64!"), "abc")));
    }
}
