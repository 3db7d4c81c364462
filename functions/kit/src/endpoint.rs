//! Endpoint overrides for Google services (emulators, private endpoints). The service-account
//! token is sent to them, so an override must be https, or plain-http loopback with the
//! explicit opt-in `CROSSFED_ALLOW_LOCAL_ENDPOINTS=1` (local emulators).

use std::net::IpAddr;

use url::{Host, Url};

use crate::env::EnvReader;

/// `STORAGE_EMULATOR_HOST`: the Cloud Storage JSON/HTTP endpoint.
pub const STORAGE_HTTP_ENV: &str = "STORAGE_EMULATOR_HOST";
/// `STORAGE_EMULATOR_HOST_GRPC`: the Cloud Storage gRPC (control) endpoint.
pub const STORAGE_GRPC_ENV: &str = "STORAGE_EMULATOR_HOST_GRPC";
/// `GOOGLE_VERTEX_BASE_URL`: the Vertex AI endpoint.
pub const VERTEX_BASE_URL_ENV: &str = "GOOGLE_VERTEX_BASE_URL";
/// The opt-in for plain-http loopback endpoints (`1`).
pub const ALLOW_LOCAL_ENV: &str = crossfed::ALLOW_LOCAL_ENV;

/// The endpoint `var` overrides, as a URL without a trailing slash; `None` when unset.
///
/// Accepts `host:port` (meaning `http://host:port`, the emulator convention) or an http(s)
/// URL. A problem (not a URL, plain http to a non-loopback host, plain http without the
/// opt-in) is recorded on `reader`, naming `var`.
pub fn google_override(reader: &mut EnvReader<'_>, var: &str) -> Option<String> {
    let raw = reader.optional(var)?;
    let allow_local = reader.env().flag(ALLOW_LOCAL_ENV);
    let checked = check(var, &raw, allow_local);
    reader.check(checked)
}

/// Checks one override value (see [`google_override`]).
pub fn check(var: &str, raw: &str, allow_local: bool) -> Result<String, String> {
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let url = Url::parse(&with_scheme)
        .ok()
        .filter(|u| u.host().is_some() && !raw.contains(char::is_whitespace))
        .ok_or_else(|| {
            format!("{var} `{raw}` is not `host:port` or an http(s) URL: use e.g. `https://storage.example.com` or, for a local emulator, `127.0.0.1:4443`")
        })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{var} `{raw}` contains user information: remove it from the URL"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{var} `{raw}` has a query or fragment: give only scheme, host, port and path"
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if !is_loopback(&url) => {
            return Err(format!(
                "{var} `{raw}` uses plain http to a non-loopback host, which would send the \
                 Google access token unencrypted: use https (plain http is only for local \
                 emulators on 127.0.0.1/localhost with {ALLOW_LOCAL_ENV}=1)"
            ));
        }
        "http" if !allow_local => {
            return Err(format!(
                "{var} `{raw}` is a plain-http local endpoint: set {ALLOW_LOCAL_ENV}=1 to use \
                 a local emulator, or use an https endpoint"
            ));
        }
        "http" => {}
        other => {
            return Err(format!(
                "{var} `{raw}` is not an http(s) URL (scheme `{other}`): use an https URL \
                 (or http to a local emulator with {ALLOW_LOCAL_ENV}=1)"
            ));
        }
    }
    // As given (a default port stays), without a trailing slash.
    Ok(with_scheme.trim_end_matches('/').to_string())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Env;

    fn read(vars: &[(&str, &str)]) -> Result<Option<String>, String> {
        let env = Env::from_pairs(vars.iter().copied());
        let mut r = env.reader();
        let url = google_override(&mut r, STORAGE_GRPC_ENV);
        r.finish(url).map_err(|e| e.to_string())
    }

    const LOCAL: (&str, &str) = (ALLOW_LOCAL_ENV, "1");

    #[test]
    fn unset_is_none() {
        assert_eq!(read(&[]), Ok(None));
        assert_eq!(read(&[(STORAGE_GRPC_ENV, " ")]), Ok(None));
    }

    #[test]
    fn https_is_accepted_without_the_opt_in() {
        assert_eq!(
            read(&[(STORAGE_GRPC_ENV, "https://storage.example.com:8443/")]),
            Ok(Some("https://storage.example.com:8443".into()))
        );
    }

    #[test]
    fn loopback_http_needs_the_opt_in() {
        for value in [
            "127.0.0.1:9000",
            "http://127.0.0.22:80",
            "localhost:4443",
            "[::1]:9",
        ] {
            let e = read(&[(STORAGE_GRPC_ENV, value)]).unwrap_err();
            assert!(
                e.contains(STORAGE_GRPC_ENV) && e.contains("CROSSFED_ALLOW_LOCAL_ENDPOINTS=1"),
                "{value}: {e}"
            );
        }
        assert_eq!(
            read(&[(STORAGE_GRPC_ENV, "127.0.0.1:9000"), LOCAL]),
            Ok(Some("http://127.0.0.1:9000".into()))
        );
        assert_eq!(
            read(&[(STORAGE_GRPC_ENV, "127.0.0.22:80"), LOCAL]),
            Ok(Some("http://127.0.0.22:80".into()))
        );
        assert_eq!(
            read(&[(STORAGE_GRPC_ENV, "http://localhost:4443/"), LOCAL]),
            Ok(Some("http://localhost:4443".into()))
        );
        // only exactly `1` opts in
        assert!(read(&[(STORAGE_GRPC_ENV, "127.0.0.1:9"), (ALLOW_LOCAL_ENV, "true")]).is_err());
    }

    #[test]
    fn http_to_other_hosts_is_refused_even_with_the_opt_in() {
        for value in [
            "10.0.0.5:4443",
            "http://storage.example.com",
            "http://127.0.0.1.nip.io",
        ] {
            let e = read(&[(STORAGE_GRPC_ENV, value), LOCAL]).unwrap_err();
            assert!(
                e.contains(STORAGE_GRPC_ENV) && e.contains("non-loopback"),
                "{value}: {e}"
            );
        }
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for value in [
            "a b",
            "ftp://x",
            "https://user:pw@storage.example.com",
            "https://x/?a=1",
            "http://",
        ] {
            let e = read(&[(STORAGE_GRPC_ENV, value), LOCAL]).unwrap_err();
            assert!(e.contains(STORAGE_GRPC_ENV), "{value}: {e}");
        }
    }
}
