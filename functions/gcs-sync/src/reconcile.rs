//! The rule: the copy follows what S3 serves now. What the copy records about its source
//! (custom metadata), and what to do given the copy and S3's current state. Events play no
//! part here: they only say which key to look at. Only a copy whose source marker names
//! `s3://SYNC_SOURCE_BUCKET/<key>` is ever overwritten or deleted: any other object at its
//! name is foreign and left alone.

use std::collections::HashMap;

use crate::s3::{SourceState, SourceVersion};

/// The marker's keys (one definition, shared with the report). Every metadata key this
/// function writes starts with [`RESERVED_PREFIX`]; source metadata keys that do are dropped
/// from copies so that nobody can spoof the bookkeeping.
pub use crossfed_kit::copy_marker::{RESERVED_PREFIX, SOURCE, SOURCE_ETAG, SOURCE_VERSION};

/// `SYNC_DELETE_MODE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeleteMode {
    /// Remove the copy when S3 has no current object for the key.
    #[default]
    Delete,
    /// Keep copies of removed objects.
    Keep,
}

/// Whether a source metadata key collides with the bookkeeping (case-insensitive).
pub fn is_reserved(key: &str) -> bool {
    key.get(..RESERVED_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_PREFIX))
}

/// The source marker of the copy of `bucket`/`key`: `s3://bucket/key`.
pub fn source_marker(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// What the current copy says about where it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyState {
    pub generation: i64,
    /// The source marker ([`SOURCE`]), if any.
    pub source: Option<String>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

impl CopyState {
    /// From the copy's generation and custom metadata.
    pub fn from_metadata(generation: i64, metadata: &HashMap<String, String>) -> Self {
        let get = |k: &str| metadata.get(k).filter(|v| !v.is_empty()).cloned();
        CopyState {
            generation,
            source: get(SOURCE),
            etag: get(SOURCE_ETAG),
            version_id: get(SOURCE_VERSION),
        }
    }

    /// The object was written by gcs-sync as the copy whose source marker is `marker`.
    pub fn is_copy_of(&self, marker: &str) -> bool {
        self.source.as_deref() == Some(marker)
    }

    /// The copy records exactly `version` (ETag and version id).
    pub fn records(&self, version: &SourceVersion) -> bool {
        self.etag.as_deref() == Some(version.etag.as_str()) && self.version_id == version.version_id
    }
}

/// The metadata to record on a copy of `bucket`/`key` made from the object S3 returned with
/// `etag` and `version_id`.
pub fn copy_metadata(
    bucket: &str,
    key: &str,
    etag: Option<&str>,
    version_id: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut m = vec![(SOURCE, source_marker(bucket, key))];
    if let Some(e) = etag {
        m.push((SOURCE_ETAG, e.to_string()));
    }
    if let Some(v) = version_id {
        m.push((SOURCE_VERSION, v.to_string()));
    }
    m
}

/// The custom metadata of a copy: the source's user metadata without reserved keys, then
/// the bookkeeping (`ours`, from [`copy_metadata`]).
pub fn merged_metadata(
    user: HashMap<String, String>,
    ours: Vec<(&'static str, String)>,
) -> Vec<(String, String)> {
    user.into_iter()
        .filter(|(k, _)| !is_reserved(k))
        .chain(ours.into_iter().map(|(k, v)| (k.to_string(), v)))
        .collect()
}

/// Why a change needs no action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The copy already records what S3 serves (redelivery, older or duplicate event).
    AlreadyCurrent,
    /// S3 has no current object and there is no copy.
    NothingToDelete,
    /// S3 has no current object; `SYNC_DELETE_MODE=keep` keeps the copy.
    DeletesKept,
    /// Not a create or remove event.
    NotReplicated,
    /// The object at the copy's name was not written by gcs-sync as this key's copy (its
    /// source marker does not name `s3://SYNC_SOURCE_BUCKET/<key>`): never overwritten or
    /// deleted.
    Foreign,
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Copy `source`, on condition that the destination's generation is still this
    /// (0: absent).
    Write {
        source: SourceVersion,
        if_generation_match: i64,
    },
    /// Delete this generation.
    Delete {
        generation: i64,
    },
    Skip(SkipReason),
}

/// Decides from S3's current state (`source`, confirmed with S3) and the current object at
/// the copy's name (`None`: no object), whose source marker must be `marker` for it to be
/// touched. The copy must have been read before S3 was asked, and every action is
/// conditioned on its generation: whoever acts on an older picture loses and decides again.
pub fn decide(
    source: &SourceState,
    copy: Option<&CopyState>,
    mode: DeleteMode,
    marker: &str,
) -> Decision {
    match (source, copy) {
        (_, Some(copy)) if !copy.is_copy_of(marker) => Decision::Skip(SkipReason::Foreign),
        (SourceState::Absent, None) => Decision::Skip(SkipReason::NothingToDelete),
        (SourceState::Absent, Some(_)) if mode == DeleteMode::Keep => {
            Decision::Skip(SkipReason::DeletesKept)
        }
        (SourceState::Absent, Some(copy)) => Decision::Delete {
            generation: copy.generation,
        },
        (SourceState::Present { version, .. }, Some(copy)) if copy.records(version) => {
            Decision::Skip(SkipReason::AlreadyCurrent)
        }
        (SourceState::Present { version, .. }, copy) => Decision::Write {
            source: version.clone(),
            if_generation_match: copy.map_or(0, |c| c.generation),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(etag: &str, id: Option<&str>) -> SourceVersion {
        SourceVersion {
            etag: etag.into(),
            version_id: id.map(str::to_string),
        }
    }

    fn present(etag: &str, id: Option<&str>) -> SourceState {
        SourceState::Present {
            version: version(etag, id),
            size: 1,
            checksum: crate::s3::SourceChecksum::NotComparable(String::new()),
        }
    }

    const MARKER: &str = "s3://src/k";

    /// A copy of `s3://src/k` made by gcs-sync.
    fn copy(etag: Option<&str>, id: Option<&str>) -> CopyState {
        CopyState {
            generation: 7,
            source: Some(MARKER.into()),
            etag: etag.map(str::to_string),
            version_id: id.map(str::to_string),
        }
    }

    const DELETE: DeleteMode = DeleteMode::Delete;

    #[test]
    fn present_in_s3() {
        let s3 = present("e2", Some("v2"));
        let write = |g| Decision::Write {
            source: version("e2", Some("v2")),
            if_generation_match: g,
        };
        assert_eq!(decide(&s3, None, DELETE, MARKER), write(0));
        assert_eq!(
            decide(&s3, Some(&copy(Some("e2"), Some("v2"))), DELETE, MARKER),
            Decision::Skip(SkipReason::AlreadyCurrent)
        );
        // The previous version is current again (its successor was deleted), or the same
        // bytes were written as a new version: the copy records another version.
        assert_eq!(
            decide(&s3, Some(&copy(Some("e2"), Some("v1"))), DELETE, MARKER),
            write(7)
        );
        assert_eq!(
            decide(&s3, Some(&copy(Some("e1"), Some("v2"))), DELETE, MARKER),
            write(7)
        );
        // An object gcs-sync did not write as this key's copy (no marker, or another
        // source's) is foreign: never overwritten.
        for source in [None, Some("s3://other/k"), Some("s3://src/k2")] {
            let foreign = CopyState {
                source: source.map(str::to_string),
                ..copy(Some("e1"), None)
            };
            assert_eq!(
                decide(&s3, Some(&foreign), DELETE, MARKER),
                Decision::Skip(SkipReason::Foreign)
            );
        }
        // Keep mode only keeps copies of removed objects.
        assert_eq!(decide(&s3, None, DeleteMode::Keep, MARKER), write(0));
        // Unversioned.
        let s3 = present("e1", None);
        assert_eq!(
            decide(&s3, Some(&copy(Some("e1"), None)), DELETE, MARKER),
            Decision::Skip(SkipReason::AlreadyCurrent)
        );
    }

    #[test]
    fn absent_in_s3() {
        let s3 = SourceState::Absent;
        assert_eq!(
            decide(&s3, None, DELETE, MARKER),
            Decision::Skip(SkipReason::NothingToDelete)
        );
        assert_eq!(
            decide(&s3, Some(&copy(Some("e1"), None)), DELETE, MARKER),
            Decision::Delete { generation: 7 }
        );
        assert_eq!(
            decide(&s3, Some(&copy(Some("e1"), None)), DeleteMode::Keep, MARKER),
            Decision::Skip(SkipReason::DeletesKept)
        );
        // Never deleted: an object gcs-sync did not write as this key's copy.
        let foreign = CopyState {
            source: None,
            ..copy(Some("e1"), None)
        };
        assert_eq!(
            decide(&s3, Some(&foreign), DELETE, MARKER),
            Decision::Skip(SkipReason::Foreign)
        );
    }

    #[test]
    fn reserved_keys() {
        assert!(is_reserved("x-crossfed-source-etag"));
        assert!(is_reserved("X-Crossfed-Anything"));
        assert!(!is_reserved("x-crossfe"));
        assert!(!is_reserved("origin"));
        assert!(!is_reserved("ü"));
    }

    #[test]
    fn metadata_round_trip() {
        let m: HashMap<String, String> = copy_metadata("src", "dir/ü x", Some("e3"), Some("v9"))
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(m[SOURCE], "s3://src/dir/ü x");
        assert!(m.keys().all(|k| is_reserved(k)));
        let state = CopyState::from_metadata(3, &m);
        assert_eq!(
            state,
            CopyState {
                generation: 3,
                source: Some("s3://src/dir/ü x".into()),
                etag: Some("e3".into()),
                version_id: Some("v9".into())
            }
        );
        assert!(state.records(&version("e3", Some("v9"))));
        assert!(state.is_copy_of(&source_marker("src", "dir/ü x")));
        assert!(!state.is_copy_of(&source_marker("src", "dir/ü")));
        assert!(!state.records(&version("e3", None)));
        let user = HashMap::from(
            [
                ("origin", "s3"),
                ("x-crossfed-source-etag", "spoof"),
                ("X-CROSSFED-X", "y"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut merged = merged_metadata(user, copy_metadata("b", "k", Some("e"), None));
        merged.sort();
        assert_eq!(
            merged,
            [
                ("origin", "s3"),
                ("x-crossfed-source", "s3://b/k"),
                ("x-crossfed-source-etag", "e")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }
}
