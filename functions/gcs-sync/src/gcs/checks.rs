//! What Cloud Storage stored, checked against what was sent: the client library trusts the
//! service's word on what it persisted, this function does not.

use google_cloud_storage::model::Object;

/// The finished object must hold every byte read from S3, with the same CRC32C: guards
/// against an upload finalized early. `streamed`: `(bytes, crc32c)` if the whole object
/// was read.
pub fn verify_upload(
    object: &Object,
    expected_size: u64,
    streamed: Option<(u64, u32)>,
) -> Result<(), String> {
    let Some((bytes, crc32c)) = streamed else {
        return Err(format!(
            "upload finished after {} of {expected_size} bytes were read from S3",
            object.size
        ));
    };
    if bytes != expected_size || object.size != expected_size as i64 {
        return Err(format!(
            "object has {} bytes, S3 had {expected_size}, {bytes} were streamed",
            object.size
        ));
    }
    match object.checksums.as_ref().and_then(|c| c.crc32c) {
        Some(stored) if stored != crc32c => Err(format!(
            "stored CRC32C {stored:08x} differs from the streamed {crc32c:08x}"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_storage::model::ObjectChecksums;

    #[test]
    fn finished_objects_are_checked_against_the_stream() {
        let object = Object::new()
            .set_size(5)
            .set_checksums(ObjectChecksums::new().set_crc32c(crc32c::crc32c(b"hello")));
        let crc = crc32c::crc32c(b"hello");
        assert_eq!(verify_upload(&object, 5, Some((5, crc))), Ok(()));
        assert!(
            verify_upload(&object, 5, None)
                .unwrap_err()
                .contains("finished after")
        );
        assert!(verify_upload(&object, 6, Some((6, crc))).is_err());
        assert!(
            verify_upload(&object, 5, Some((5, crc ^ 1)))
                .unwrap_err()
                .contains("CRC32C")
        );
        let truncated = Object::new().set_size(3);
        assert!(verify_upload(&truncated, 5, Some((5, crc))).is_err());
    }
}
