//! The gcs-sync event decoder (S3, SQS and EventBridge payloads, object keys): never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = gcs_sync::event::decode_key(text);
    let _ = gcs_sync::event::parse_body(text);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = gcs_sync::event::parse(value);
    }
});
