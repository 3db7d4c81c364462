//! Which requests the metadata server answers at all, as Google's metadata server and the
//! AWS Parameters and Secrets extension do: `Metadata-Flavor: Google` required, anything
//! that went through a proxy (`X-Forwarded-For`) refused, GET only, bounded requests.

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

/// Checks a request before routing it.
pub fn check(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    let refuse = |status, message| Err(Refusal { status, message });
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

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
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
}
