//! Which requests the metadata server answers at all: as Google's metadata server does,
//! `Metadata-Flavor: Google` required and anything that went through a proxy
//! (`X-Forwarded-For`) refused; `Host` must name this server (so a page that a headless
//! browser in the function loads cannot reach it through DNS rebinding); GET only, bounded
//! requests.

use std::net::SocketAddr;

use http::{HeaderMap, Method, StatusCode};

/// Longest accepted query string.
pub const MAX_QUERY: usize = 4096;
/// Longest accepted path.
pub const MAX_PATH: usize = 1024;

/// A refused request: status and a short text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: StatusCode,
    /// Short explanation for the caller.
    pub message: &'static str,
}

/// The `Host` values the server answers to: `127.0.0.1`, `localhost` and `[::1]` with its
/// port, `metadata.google.internal` (with or without it), and the address it listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hosts(Vec<String>);

impl Hosts {
    /// The names of a server listening on `addr`.
    pub fn of(addr: SocketAddr) -> Self {
        let port = addr.port();
        let mut names = vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
            "metadata.google.internal".to_string(),
            format!("metadata.google.internal:{port}"),
            addr.to_string(),
        ];
        names.sort();
        names.dedup();
        Hosts(names)
    }

    fn admit(&self, host: &str) -> bool {
        self.0.iter().any(|name| name.eq_ignore_ascii_case(host))
    }
}

/// Checks a request before routing it.
pub fn check(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    hosts: &Hosts,
) -> Result<(), Refusal> {
    let refuse = |status, message| Err(Refusal { status, message });
    let host = headers
        .get_all(http::header::HOST)
        .iter()
        .collect::<Vec<_>>();
    let admitted = match host.as_slice() {
        [one] => one.to_str().is_ok_and(|h| hosts.admit(h.trim())),
        _ => false,
    };
    if !admitted {
        return refuse(
            StatusCode::FORBIDDEN,
            "Missing or foreign Host header: reach the metadata server by the address in GCE_METADATA_HOST (e.g. 127.0.0.1:8173).",
        );
    }
    if headers.contains_key("x-forwarded-for") {
        return refuse(
            StatusCode::FORBIDDEN,
            "Request had an X-Forwarded-For header: the metadata server does not answer proxied requests.",
        );
    }
    let flavor = headers
        .get_all("metadata-flavor")
        .iter()
        .collect::<Vec<_>>();
    if flavor.len() != 1 || flavor[0] != "Google" {
        return refuse(
            StatusCode::FORBIDDEN,
            "Missing or invalid Metadata-Flavor header: send `Metadata-Flavor: Google`.",
        );
    }
    if method != Method::GET && method != Method::HEAD {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "Only GET is supported.");
    }
    if path.len() > MAX_PATH || query.is_some_and(|q| q.len() > MAX_QUERY) {
        return refuse(StatusCode::URI_TOO_LONG, "Request URI too long.");
    }
    let has_body = headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The metadata server takes no request body.",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Hosts {
        Hosts::of("127.0.0.1:8173".parse().unwrap())
    }

    fn check(
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<(), Refusal> {
        super::check(method, path, query, headers, &hosts())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        if !pairs.iter().any(|(k, _)| *k == "host") {
            h.append("host", "127.0.0.1:8173".parse().unwrap());
        }
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn requires_flavor_and_refuses_proxies() {
        let ok = headers(&[("metadata-flavor", "Google")]);
        assert_eq!(check(&Method::GET, "/", None, &ok), Ok(()));
        assert_eq!(check(&Method::HEAD, "/", Some("a=b"), &ok), Ok(()));
        for h in [
            headers(&[]),
            headers(&[("metadata-flavor", "google")]),
            headers(&[("metadata-flavor", "Google"), ("metadata-flavor", "Google")]),
            headers(&[
                ("metadata-flavor", "Google"),
                ("x-forwarded-for", "1.2.3.4"),
            ]),
            headers(&[("x-google-metadata-request", "True")]),
        ] {
            assert_eq!(
                check(&Method::GET, "/", None, &h).unwrap_err().status,
                StatusCode::FORBIDDEN,
                "{h:?}"
            );
        }
        assert_eq!(
            check(&Method::POST, "/", None, &ok).unwrap_err().status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let long = "a".repeat(MAX_QUERY + 1);
        assert_eq!(
            check(&Method::GET, "/", Some(&long), &ok)
                .unwrap_err()
                .status,
            StatusCode::URI_TOO_LONG
        );
        let body = headers(&[("metadata-flavor", "Google"), ("content-length", "10")]);
        assert_eq!(
            check(&Method::GET, "/", None, &body).unwrap_err().status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    /// DNS rebinding: a page on `evil.example` resolved to 127.0.0.1 sends its own name.
    #[test]
    fn only_this_servers_names_as_host() {
        for host in [
            "127.0.0.1:8173",
            "localhost:8173",
            "LOCALHOST:8173",
            "[::1]:8173",
            "metadata.google.internal",
            "metadata.google.internal:8173",
        ] {
            let h = headers(&[("metadata-flavor", "Google"), ("host", host)]);
            assert_eq!(check(&Method::GET, "/", None, &h), Ok(()), "{host}");
        }
        for host in [
            "evil.example:8173",
            "evil.example",
            "127.0.0.1",
            "127.0.0.1:80",
            "localhost",
            "127.0.0.1:8173.evil.example",
            "",
        ] {
            let h = headers(&[("metadata-flavor", "Google"), ("host", host)]);
            let refusal = check(&Method::GET, "/", None, &h).unwrap_err();
            assert_eq!(refusal.status, StatusCode::FORBIDDEN, "{host}");
        }
        let mut none = HeaderMap::new();
        none.append("metadata-flavor", "Google".parse().unwrap());
        assert!(check(&Method::GET, "/", None, &none).is_err(), "no Host");
        let two = headers(&[
            ("metadata-flavor", "Google"),
            ("host", "127.0.0.1:8173"),
            ("host", "127.0.0.1:8173"),
        ]);
        assert!(check(&Method::GET, "/", None, &two).is_err(), "two Hosts");
        let other = Hosts::of("127.0.0.2:9000".parse().unwrap());
        let h = headers(&[("metadata-flavor", "Google"), ("host", "127.0.0.2:9000")]);
        assert_eq!(super::check(&Method::GET, "/", None, &h, &other), Ok(()));
    }
}
