//! One page of a backfill: both listings after the checkpoint (S3's source keys, Cloud
//! Storage's copies), merge-joined in key order into the keys to look at.

use crate::backfill::checkpoint::Checkpoint;
use crate::backfill::error::BackfillError;
use crate::destination;
use crate::gcs::DestinationBucket;
use crate::reconcile::{SOURCE, SOURCE_ETAG, source_marker};
use crate::s3::{Listed, SourceBucket};

/// Why a key is looked at (the decision is [`crate::replicate::Replicator::sync_key`]'s,
/// on S3's answer now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Listed in S3 and not (or not with this ETag) in Cloud Storage.
    Copy { key: String },
    /// Listed in Cloud Storage only.
    Delete { key: String },
    /// An object gcs-sync did not write as this key's copy: counted, never touched.
    Foreign { key: String },
}

/// One listed object under the destination prefix: its key (name without the prefix),
/// recorded ETag, and whether gcs-sync wrote it as that key's copy.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CopyEntry {
    key: String,
    etag: Option<String>,
    ours: bool,
}

/// One page's work.
pub struct Page {
    pub actions: Vec<Action>,
    /// Source keys covered.
    pub examined: u64,
    /// The last key covered (the next checkpoint).
    pub through: Option<String>,
    /// Nothing after this page.
    pub last: bool,
}

/// Merge-joins two sorted pages; returns the actions for keys up to `limit` (all keys if
/// `None`).
fn join(source: &[Listed], copies: &[CopyEntry], limit: Option<&str>) -> Vec<Action> {
    let within = |k: &str| limit.is_none_or(|l| k <= l);
    let (mut s, mut c) = (source.iter().peekable(), copies.iter().peekable());
    let mut actions = Vec::new();
    loop {
        let a = s.peek().filter(|e| within(&e.key));
        let b = c.peek().filter(|e| within(&e.key));
        match (a, b) {
            (None, None) => return actions,
            (_, Some(y)) if !y.ours && a.is_none_or(|x| x.key >= y.key) => {
                if a.is_some_and(|x| x.key == y.key) {
                    s.next();
                }
                actions.push(Action::Foreign { key: y.key.clone() });
                c.next();
            }
            (Some(x), Some(y)) if x.key == y.key => {
                if y.etag.as_deref() != Some(x.etag.as_str()) {
                    actions.push(Action::Copy { key: x.key.clone() });
                }
                s.next();
                c.next();
            }
            (Some(x), y) if y.is_none_or(|y| x.key < y.key) => {
                actions.push(Action::Copy { key: x.key.clone() });
                s.next();
            }
            (_, Some(y)) => {
                actions.push(Action::Delete { key: y.key.clone() });
                c.next();
            }
            (Some(_), None) => unreachable!("handled above"),
        }
    }
}

/// Whether a key (relative to the prefixes) is one of crossfed's own objects.
fn reserved(key: &str) -> bool {
    destination::reserved_area(key).is_some()
}

/// The next page of both listings after `state`'s position, up to `page_size` keys each.
pub async fn page(
    source: &SourceBucket,
    destination: &DestinationBucket,
    state: &Checkpoint,
    page_size: i32,
) -> Result<Page, BackfillError> {
    let listed = source
        .list(&state.prefix, state.after.as_deref(), page_size)
        .await?;
    let source_last = listed.objects.last().map(|o| o.key.clone());
    let mut source_entries = Vec::new();
    for object in listed.objects {
        if reserved(&object.key) {
            tracing::warn!(
                key = %object.key,
                "not replicated: the key is in an area gcs-sync reserves for its own objects"
            );
            continue;
        }
        source_entries.push(object);
    }
    let dest_prefix = destination.destination().prefix();
    let (objects, copies_truncated) = destination
        .list_page(
            &format!("{dest_prefix}{}", state.prefix),
            state
                .after
                .as_ref()
                .map(|after| format!("{dest_prefix}{after}")),
            page_size,
        )
        .await?;
    let mut copies = Vec::new();
    let mut copies_last = None;
    for object in objects {
        let Some(key) = object.name.strip_prefix(dest_prefix) else {
            continue;
        };
        if state.after.as_deref().is_some_and(|a| key <= a) {
            continue;
        }
        copies_last = Some(key.to_string());
        if reserved(key) {
            continue;
        }
        let marker = source_marker(&state.bucket, key);
        copies.push(CopyEntry {
            key: key.to_string(),
            etag: object.metadata.get(SOURCE_ETAG).cloned(),
            ours: object.metadata.get(SOURCE) == Some(&marker),
        });
    }
    // Only keys both listings have fully covered are decided now.
    let limit = match (listed.truncated, copies_truncated) {
        (false, false) => None,
        (true, false) => source_last.clone(),
        (false, true) => copies_last.clone(),
        (true, true) => source_last.clone().min(copies_last.clone()),
    };
    let examined = source_entries
        .iter()
        .filter(|e| limit.as_deref().is_none_or(|l| e.key.as_str() <= l))
        .count() as u64;
    let actions = join(&source_entries, &copies, limit.as_deref());
    let through = limit.clone().or_else(|| source_last.max(copies_last));
    Ok(Page {
        actions,
        examined,
        through,
        last: limit.is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(key: &str, etag: &str) -> Listed {
        Listed {
            key: key.into(),
            etag: etag.into(),
        }
    }

    fn copy(key: &str, etag: Option<&str>) -> CopyEntry {
        CopyEntry {
            key: key.into(),
            etag: etag.map(str::to_string),
            ours: true,
        }
    }

    fn foreign(key: &str) -> CopyEntry {
        CopyEntry {
            ours: false,
            ..copy(key, None)
        }
    }

    fn keys(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Copy { key, .. } => format!("copy {key}"),
                Action::Delete { key } => format!("delete {key}"),
                Action::Foreign { key } => format!("foreign {key}"),
            })
            .collect()
    }

    #[test]
    fn join_finds_missing_different_and_extra() {
        let source = [src("a", "1"), src("b", "2"), src("d", "4"), src("f", "6")];
        let copies = [
            copy("b", Some("2")),
            copy("c", Some("3")),
            copy("d", Some("x")),
            copy("e", None),
        ];
        assert_eq!(
            keys(&join(&source, &copies, None)),
            ["copy a", "delete c", "copy d", "delete e", "copy f"]
        );
        // Up to a limit only (the rest is decided with the next page).
        assert_eq!(
            keys(&join(&source, &copies, Some("c"))),
            ["copy a", "delete c"]
        );
        assert!(join(&source[1..2], &copies[..1], None).is_empty());
    }

    #[test]
    fn objects_gcs_sync_did_not_write_are_only_counted() {
        let source = [src("a", "1"), src("b", "2")];
        let copies = [foreign("a"), copy("b", Some("x")), foreign("c")];
        assert_eq!(
            keys(&join(&source, &copies, None)),
            ["foreign a", "copy b", "foreign c"]
        );
    }

    #[test]
    fn reserved_names() {
        assert!(reserved(".crossfed-parts/k/e/000001"));
        assert!(reserved(".crossfed/backfill/r"));
        assert!(!reserved("a/.crossfed/x"));
    }
}
