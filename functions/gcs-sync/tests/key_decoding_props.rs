//! Property tests for S3 notification key decoding: keys arrive form-encoded.

use proptest::prelude::*;

proptest! {
    /// Any key S3 could name round-trips through the notification encoding.
    #[test]
    fn form_encoded_keys_round_trip(key in "\\PC{0,64}") {
        let encoded: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
        prop_assert_eq!(gcs_sync::event::decode_key(&encoded), Ok(key));
    }

    /// Arbitrary input never panics; what decodes is valid UTF-8 without `+`-spaces left.
    #[test]
    fn arbitrary_input_is_an_error_or_a_key(raw in "[ -~]{0,64}") {
        if let Ok(key) = gcs_sync::event::decode_key(&raw) {
            prop_assert!(key.chars().count() <= raw.len());
        }
    }
}
