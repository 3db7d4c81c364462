//! Ordering and idempotency: what the copy in Cloud Storage records about its source (custom
//! metadata), how S3 sequencers compare, and what to do with an event given the current copy.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::event::{ChangeKind, ObjectChange};

/// `s3://bucket/key` of the source.
pub const SOURCE: &str = "x-crossfed-source";
/// The source object's ETag (no quotes).
pub const SOURCE_ETAG: &str = "x-crossfed-source-etag";
/// The source object's version id, for versioned buckets.
pub const SOURCE_VERSION: &str = "x-crossfed-source-version-id";
/// The sequencer of the event that produced the copy.
pub const SEQUENCER: &str = "x-crossfed-sequencer";

/// Compares two S3 event sequencers as S3 documents: hex strings, the shorter padded on the
/// right with zeros, then compared lexicographically (case-insensitively).
pub fn compare_sequencers(a: &str, b: &str) -> Ordering {
    let len = a.len().max(b.len());
    let padded = |s: &str| {
        s.bytes()
            .map(|c| c.to_ascii_uppercase())
            .chain(std::iter::repeat(b'0'))
            .take(len)
            .collect::<Vec<u8>>()
    };
    padded(a).cmp(&padded(b))
}

/// What the current copy says about where it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyState {
    pub generation: i64,
    pub sequencer: Option<String>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

impl CopyState {
    pub fn from_metadata(generation: i64, metadata: &HashMap<String, String>) -> Self {
        let get = |k: &str| metadata.get(k).filter(|v| !v.is_empty()).cloned();
        CopyState {
            generation,
            sequencer: get(SEQUENCER),
            etag: get(SOURCE_ETAG),
            version_id: get(SOURCE_VERSION),
        }
    }
}

/// The metadata to record on a copy made for `change` from an object with `etag` and
/// `version_id` (as S3 returned them).
pub fn copy_metadata(
    change: &ObjectChange,
    etag: Option<&str>,
    version_id: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut m = vec![(SOURCE, format!("s3://{}/{}", change.bucket, change.key))];
    if let Some(e) = etag.or(change.etag.as_deref()) {
        m.push((SOURCE_ETAG, e.to_string()));
    }
    if let Some(v) = version_id.or(change.version_id.as_deref()) {
        m.push((SOURCE_VERSION, v.to_string()));
    }
    if let Some(s) = &change.sequencer {
        m.push((SEQUENCER, s.clone()));
    }
    m
}

/// Why an event needs no action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The copy already reflects this event (redelivery).
    AlreadyCurrent,
    /// The copy reflects a newer event.
    Stale,
    /// Removal, but there is no copy.
    NothingToDelete,
    /// Removal of a version other than the one copied.
    OtherVersion,
    /// `SYNC_DELETE_MODE=keep`.
    DeletesKept,
    /// The source object no longer exists (deleted before we copied it).
    SourceMissing,
    /// The source object changed since the event (a newer event will copy it).
    SourceChanged,
    /// Not a create or remove event.
    NotReplicated,
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Copy, on condition that the destination's generation is still this (0: absent).
    Write {
        if_generation_match: i64,
    },
    /// Delete this generation.
    Delete {
        generation: i64,
    },
    Skip(SkipReason),
}

/// Decides what `change` means given the current copy (`None`: no object).
pub fn decide(change: &ObjectChange, current: Option<&CopyState>) -> Decision {
    let newer = |copy: &CopyState| match (&copy.sequencer, &change.sequencer) {
        (Some(have), Some(event)) => Some(compare_sequencers(have, event)),
        _ => None,
    };
    match change.kind {
        ChangeKind::Other => Decision::Skip(SkipReason::NotReplicated),
        ChangeKind::Created => match current {
            None => Decision::Write {
                if_generation_match: 0,
            },
            Some(copy) => match newer(copy) {
                Some(Ordering::Greater) => Decision::Skip(SkipReason::Stale),
                Some(Ordering::Equal) => Decision::Skip(SkipReason::AlreadyCurrent),
                Some(Ordering::Less) => Decision::Write {
                    if_generation_match: copy.generation,
                },
                // Without sequencers, the same ETag (and version) means the same content.
                None if change.etag.is_some()
                    && copy.etag == change.etag
                    && copy.version_id == change.version_id =>
                {
                    Decision::Skip(SkipReason::AlreadyCurrent)
                }
                None => Decision::Write {
                    if_generation_match: copy.generation,
                },
            },
        },
        ChangeKind::Removed { delete_marker } => match current {
            None => Decision::Skip(SkipReason::NothingToDelete),
            Some(copy) => {
                if newer(copy) == Some(Ordering::Greater) {
                    return Decision::Skip(SkipReason::Stale);
                }
                // Permanently deleting an old version leaves the current object in place.
                let other_version = !delete_marker
                    && matches!((&change.version_id, &copy.version_id), (Some(a), Some(b)) if a != b);
                if other_version {
                    return Decision::Skip(SkipReason::OtherVersion);
                }
                Decision::Delete {
                    generation: copy.generation,
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: ChangeKind, seq: Option<&str>) -> ObjectChange {
        ObjectChange {
            kind,
            event_name: String::new(),
            bucket: "src".into(),
            key: "k".into(),
            size: Some(1),
            etag: Some("e2".into()),
            version_id: None,
            sequencer: seq.map(str::to_string),
        }
    }

    fn copy(seq: Option<&str>) -> CopyState {
        CopyState {
            generation: 7,
            sequencer: seq.map(str::to_string),
            etag: Some("e1".into()),
            version_id: None,
        }
    }

    const REMOVED: ChangeKind = ChangeKind::Removed {
        delete_marker: false,
    };

    #[test]
    fn sequencers_compare_as_s3_documents() {
        use Ordering::*;
        assert_eq!(
            compare_sequencers("0055AED6DCD90281E5", "0055AED6DCD90281E6"),
            Less
        );
        // Shorter padded with zeros on the right: "0A" == "0A00".
        assert_eq!(compare_sequencers("0A", "0A00"), Equal);
        assert_eq!(compare_sequencers("0A", "0A01"), Less);
        assert_eq!(compare_sequencers("0B", "0A0F"), Greater);
        assert_eq!(compare_sequencers("00ff", "00FF"), Equal);
        // Not numeric comparison: "1" (=1000..) is greater than "0FFF".
        assert_eq!(compare_sequencers("1", "0FFF"), Greater);
    }

    #[test]
    fn creates() {
        let c = change(ChangeKind::Created, Some("0B"));
        assert_eq!(
            decide(&c, None),
            Decision::Write {
                if_generation_match: 0
            }
        );
        assert_eq!(
            decide(&c, Some(&copy(Some("0A")))),
            Decision::Write {
                if_generation_match: 7
            }
        );
        assert_eq!(
            decide(&c, Some(&copy(Some("0B0")))),
            Decision::Skip(SkipReason::AlreadyCurrent)
        );
        assert_eq!(
            decide(&c, Some(&copy(Some("0C")))),
            Decision::Skip(SkipReason::Stale)
        );
        // No sequencer on the copy (made by someone else): overwrite.
        assert_eq!(
            decide(&c, Some(&copy(None))),
            Decision::Write {
                if_generation_match: 7
            }
        );
        // No sequencer on the event: ETag decides.
        let c = change(ChangeKind::Created, None);
        assert_eq!(
            decide(&c, Some(&copy(Some("0A")))),
            Decision::Write {
                if_generation_match: 7
            }
        );
        let same = CopyState {
            etag: Some("e2".into()),
            ..copy(None)
        };
        assert_eq!(
            decide(&c, Some(&same)),
            Decision::Skip(SkipReason::AlreadyCurrent)
        );
    }

    #[test]
    fn removes() {
        let r = change(REMOVED, Some("0B"));
        assert_eq!(
            decide(&r, None),
            Decision::Skip(SkipReason::NothingToDelete)
        );
        assert_eq!(
            decide(&r, Some(&copy(Some("0A")))),
            Decision::Delete { generation: 7 }
        );
        assert_eq!(
            decide(&r, Some(&copy(Some("0C")))),
            Decision::Skip(SkipReason::Stale)
        );
        assert_eq!(
            decide(&r, Some(&copy(None))),
            Decision::Delete { generation: 7 }
        );
        let mut versioned = r.clone();
        versioned.version_id = Some("v1".into());
        let held = CopyState {
            version_id: Some("v2".into()),
            ..copy(Some("0A"))
        };
        assert_eq!(
            decide(&versioned, Some(&held)),
            Decision::Skip(SkipReason::OtherVersion)
        );
        versioned.kind = ChangeKind::Removed {
            delete_marker: true,
        };
        assert_eq!(
            decide(&versioned, Some(&held)),
            Decision::Delete { generation: 7 }
        );
        assert_eq!(
            decide(&change(ChangeKind::Other, None), None),
            Decision::Skip(SkipReason::NotReplicated)
        );
    }

    #[test]
    fn metadata_round_trip() {
        let mut c = change(ChangeKind::Created, Some("0B"));
        c.key = "dir/ü x".into();
        let m: HashMap<String, String> = copy_metadata(&c, Some("e3"), Some("v9"))
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(m[SOURCE], "s3://src/dir/ü x");
        assert_eq!(
            CopyState::from_metadata(3, &m),
            CopyState {
                generation: 3,
                sequencer: Some("0B".into()),
                etag: Some("e3".into()),
                version_id: Some("v9".into())
            }
        );
    }
}
