//! ID tokens as the metadata server or generateIdToken return them: decoding the claims and
//! their expiry never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = crossfed::aws::IdToken::parse(text) {
        let _ = token.claims.expires_at();
    }
});
