//! What kind of upload a request is, and the headers that say so.

use http::{Method, Request};
use hyper::body::Incoming;

use crate::server::{self};

/// How a request uploads data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `POST /upload/...?uploadType=resumable`: starts a session.
    ResumableStart,
    /// `PUT` to a session with data (or finalizing `bytes */N`).
    ResumableChunk {
        upload_id: String,
        range: ContentRange,
    },
    /// `POST /upload/...?uploadType=multipart`.
    Multipart {
        boundary: String,
    },
    /// `POST /upload/...?uploadType=media`.
    Media,
    Other,
}

impl Kind {
    pub(super) fn carries_data(&self) -> bool {
        match self {
            Kind::ResumableChunk { range, .. } => range.first.is_some(),
            Kind::Multipart { .. } | Kind::Media => true,
            Kind::ResumableStart | Kind::Other => false,
        }
    }
}

/// `Content-Range: bytes A-B/T` (`*` for unknown parts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ContentRange {
    /// `(A, B)`, or `None` for `bytes */T`.
    pub(super) first: Option<(u64, u64)>,
    pub(super) total: Option<u64>,
}

impl ContentRange {
    pub(super) fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix("bytes ")?;
        let (range, total) = rest.split_once('/')?;
        let total = match total {
            "*" => None,
            t => Some(t.parse().ok()?),
        };
        let first = match range {
            "*" => None,
            r => {
                let (a, b) = r.split_once('-')?;
                let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
                (a <= b).then_some((a, b))?;
                Some((a, b))
            }
        };
        Some(Self { first, total })
    }

    pub(super) fn start(&self) -> u64 {
        self.first.map_or(self.total.unwrap_or(0), |(a, _)| a)
    }

    /// Whether this request completes the object.
    pub(super) fn is_final(&self) -> bool {
        match (self.first, self.total) {
            (Some((_, b)), Some(t)) => b + 1 == t,
            (None, Some(_)) => true,
            _ => false,
        }
    }
}

pub(super) fn query_param(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

pub(super) fn classify(req: &Request<Incoming>) -> Kind {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or_default();
    if !path.starts_with("/upload/") {
        return Kind::Other;
    }
    let upload_type = query_param(query, "uploadType");
    let upload_id = query_param(query, "upload_id");
    match (req.method(), upload_id) {
        // Chunks of a resumable session: `PUT` (Google's Rust, Python, Node clients) or
        // `POST` to the session URL (Go's google-api-go-client, hence rclone).
        (&Method::PUT | &Method::POST, Some(upload_id)) => {
            let range =
                server::header_str(req.headers(), "content-range").and_then(ContentRange::parse);
            match range {
                // `bytes */*`: a status query.
                Some(range) if range.first.is_some() || range.total.is_some() => {
                    Kind::ResumableChunk { upload_id, range }
                }
                _ => Kind::Other,
            }
        }
        (&Method::POST, None) => match upload_type.as_deref() {
            Some("resumable") => Kind::ResumableStart,
            Some("multipart") => server::header_str(req.headers(), "content-type")
                .and_then(multipart_boundary)
                .map_or(Kind::Other, |boundary| Kind::Multipart { boundary }),
            Some("media") => Kind::Media,
            _ => Kind::Other,
        },
        _ => Kind::Other,
    }
}

pub(super) fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/related")
    {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_string())
    })
}
