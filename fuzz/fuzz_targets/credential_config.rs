//! The credential configuration parser (the SSM parameter is untrusted): never panics, and
//! whatever it accepts stays inside the allow-list.
#![no_main]

use crossfed::google::{ExternalAccountConfig, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    for allow_local in [false, true] {
        let options = ParseOptions::default().with_allow_local(allow_local);
        if let Ok(config) = ExternalAccountConfig::from_json_with(json, &options) {
            // Without an out-of-band allowance only the default universe passes.
            assert_eq!(config.universe_domain, "googleapis.com");
            let host = config.token_url.host_str().unwrap_or_default();
            let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]")
                || host.starts_with("127.");
            if !(allow_local && loopback) {
                assert_eq!(config.token_url.scheme(), "https");
                assert!(host.ends_with(".googleapis.com"), "{host}");
            }
        }
    }
});
