//! Sync drift of an S3 source against its GCS destination, by a merge-join of the two
//! listings: both clouds list in lexicographic key order, so one pass over each stream finds
//! missing, extra and differing objects with O(1) memory (plus a bounded sample of keys).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::listing::{BoxError, ListedObject, Listing};

/// Keys in one category (counts and bytes exact, keys sampled).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySet {
    pub count: u64,
    pub bytes: u64,
    /// The first keys in key order, at most `REPORT_DRIFT_SAMPLE`.
    pub sample: Vec<String>,
}

impl KeySet {
    fn add(&mut self, key: String, size: u64, cap: usize) {
        self.count += 1;
        self.bytes += size;
        if self.sample.len() < cap {
            self.sample.push(key);
        }
    }
}

/// Why a key present on both sides differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Size,
    /// The copy's gcs-sync marker names another S3 ETag than S3 serves: a copy of
    /// another version.
    SourceEtag,
}

/// One differing key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub key: String,
    pub reason: Reason,
    pub source_size: u64,
    pub destination_size: u64,
    /// S3's ETag, when the reason is [`Reason::SourceEtag`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_etag: Option<String>,
    /// The ETag in the copy's marker, when the reason is [`Reason::SourceEtag`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_etag: Option<String>,
}

/// Differing keys (count exact, sampled details).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Differences {
    pub count: u64,
    pub sample: Vec<Difference>,
}

/// Drift of one sync pair. Keys are relative to the pair's prefixes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub source: String,
    pub destination: String,
    pub source_objects: u64,
    pub destination_objects: u64,
    /// Keys on both sides with equal size and no evidence of other content.
    pub in_sync: u64,
    /// Of the keys on both sides, how many were compared by content too: by gcs-sync's
    /// marker (the S3 ETag the copy was made from) or by equal MD5s.
    pub checksum_compared: u64,
    /// In the source, not in the destination.
    pub missing: KeySet,
    /// In the destination, not in the source.
    pub extra: KeySet,
    pub different: Differences,
    /// Keys on both sides with equal size whose content could not be compared: no gcs-sync
    /// marker on the copy, and S3's ETag differs from Cloud Storage's MD5 (an SSE-KMS or
    /// SSE-C ETag is not an MD5, and a listing cannot tell the encryption).
    #[serde(default)]
    pub unverified: u64,
    /// Objects in gcs-sync's own areas below the prefixes (`.crossfed-parts/`: parts of
    /// copies in progress, `.crossfed/`: backfill checkpoints), left out of the comparison.
    #[serde(default)]
    pub reserved: u64,
    /// Set when a listing failed part-way: the numbers are then incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Drift {
    fn new(source: String, destination: String) -> Self {
        Drift {
            source,
            destination,
            source_objects: 0,
            destination_objects: 0,
            in_sync: 0,
            checksum_compared: 0,
            missing: KeySet::default(),
            extra: KeySet::default(),
            different: Differences::default(),
            unverified: 0,
            reserved: 0,
            error: None,
        }
    }

    /// No missing, extra or differing keys, and the comparison completed.
    pub fn is_clean(&self) -> bool {
        self.error.is_none()
            && self.missing.count == 0
            && self.extra.count == 0
            && self.different.count == 0
    }
}

/// One side of the join, checking that keys strictly increase; gcs-sync's reserved areas
/// are counted apart.
struct Ordered<L> {
    listing: L,
    side: &'static str,
    last: Option<String>,
    count: u64,
    reserved: u64,
}

impl<L: Listing> Ordered<L> {
    async fn next(&mut self) -> Result<Option<ListedObject>, BoxError> {
        let object = loop {
            let Some(object) = self.listing.next().await? else {
                return Ok(None);
            };
            if crossfed_kit::sync_areas::reserved_area(&object.key).is_some() {
                self.reserved += 1;
                continue;
            }
            break object;
        };
        if let Some(last) = &self.last
            && object.key.as_str() <= last.as_str()
        {
            return Err(format!(
                "the {} listing is not in key order (`{}` after `{last}`); cannot compare",
                self.side, object.key
            )
            .into());
        }
        self.last = Some(object.key.clone());
        self.count += 1;
        Ok(Some(object))
    }
}

/// Compares `source` with `destination` in one merge pass.
pub async fn compare(
    source_name: String,
    destination_name: String,
    source: impl Listing,
    destination: impl Listing,
    sample: usize,
) -> Drift {
    let mut drift = Drift::new(source_name, destination_name);
    let mut src = Ordered {
        listing: source,
        side: "source",
        last: None,
        count: 0,
        reserved: 0,
    };
    let mut dst = Ordered {
        listing: destination,
        side: "destination",
        last: None,
        count: 0,
        reserved: 0,
    };
    let result = merge(&mut drift, &mut src, &mut dst, sample).await;
    drift.source_objects = src.count;
    drift.destination_objects = dst.count;
    drift.reserved = src.reserved + dst.reserved;
    if let Err(e) = result {
        tracing::warn!(source = %drift.source, destination = %drift.destination, error = %e, "drift comparison failed");
        drift.error = Some(e.to_string());
    }
    drift
}

async fn merge<S: Listing, D: Listing>(
    drift: &mut Drift,
    src: &mut Ordered<S>,
    dst: &mut Ordered<D>,
    sample: usize,
) -> Result<(), BoxError> {
    let mut s = src.next().await?;
    let mut d = dst.next().await?;
    loop {
        let order = match (&s, &d) {
            (None, None) => return Ok(()),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => a.key.cmp(&b.key),
        };
        match order {
            Ordering::Less => {
                let a = s.take().expect("source present");
                drift.missing.add(a.key, a.size, sample);
                s = src.next().await?;
            }
            Ordering::Greater => {
                let b = d.take().expect("destination present");
                drift.extra.add(b.key, b.size, sample);
                d = dst.next().await?;
            }
            Ordering::Equal => {
                let (a, b) = (s.take().expect("source"), d.take().expect("destination"));
                match_pair(drift, a, b, sample);
                s = src.next().await?;
                d = dst.next().await?;
            }
        }
    }
}

/// Compares a key on both sides. Content evidence, strongest first: gcs-sync's marker (the
/// S3 ETag the copy was made from) against S3's ETag, whatever the encryption or upload;
/// else equal MD5s. Two differing "MD5s" without a marker prove nothing: an SSE-KMS or SSE-C
/// ETag looks like an MD5 and is not one, so such a key is compared by size only.
fn match_pair(drift: &mut Drift, a: ListedObject, b: ListedObject, sample: usize) {
    let marked = a.etag.as_ref().zip(b.etag.as_ref());
    let md5s = a.md5.zip(b.md5);
    let reason = if a.size != b.size {
        Some(Reason::Size)
    } else if let Some((source, copy)) = marked {
        drift.checksum_compared += 1;
        (source != copy).then_some(Reason::SourceEtag)
    } else {
        match md5s {
            Some((x, y)) if x == y => drift.checksum_compared += 1,
            Some(_) => {
                drift.unverified += 1;
                return;
            }
            None => {}
        }
        None
    };
    let Some(reason) = reason else {
        drift.in_sync += 1;
        return;
    };
    drift.different.count += 1;
    if drift.different.sample.len() < sample {
        let etags = reason == Reason::SourceEtag;
        drift.different.sample.push(Difference {
            key: a.key,
            reason,
            source_size: a.size,
            destination_size: b.size,
            source_etag: a.etag.filter(|_| etags),
            destination_etag: b.etag.filter(|_| etags),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::{VecListing, obj};

    fn md5(key: &str, size: u64, byte: u8) -> ListedObject {
        ListedObject {
            md5: Some([byte; 16]),
            ..obj(key, size)
        }
    }

    async fn run(src: Vec<ListedObject>, dst: Vec<ListedObject>, sample: usize) -> Drift {
        compare(
            "s3://src/".into(),
            "gs://dst/".into(),
            VecListing::new(src),
            VecListing::new(dst),
            sample,
        )
        .await
    }

    #[tokio::test]
    async fn gcs_sync_areas_are_not_drift() {
        let d = run(
            vec![obj(".crossfed/backfill/x", 1), obj("a", 1)],
            vec![
                obj(".crossfed-parts/a/etag/000001", 8),
                obj(".crossfed/backfill/checkpoint.json", 2),
                obj(".crossfed-partsx", 3),
                obj("a", 1),
            ],
            10,
        )
        .await;
        assert_eq!(d.reserved, 3);
        assert_eq!((d.source_objects, d.destination_objects), (1, 2));
        assert_eq!(
            d.extra.sample,
            vec![".crossfed-partsx"],
            "only the areas themselves"
        );
        assert_eq!(d.missing.count, 0);
        assert_eq!(d.in_sync, 1);
    }

    fn marked(key: &str, size: u64, etag: &str) -> ListedObject {
        ListedObject {
            etag: Some(etag.into()),
            // An S3 ETag that looks like an MD5 and is not one (SSE-KMS), against GCS's MD5.
            md5: Some([etag.len() as u8; 16]),
            ..obj(key, size)
        }
    }

    #[tokio::test]
    async fn finds_missing_extra_and_different() {
        let d = run(
            vec![
                obj("a", 1),
                md5("b", 2, 1),
                md5("c", 3, 1),
                obj("d", 4),
                obj("e/1", 5),
                marked("f", 6, "e1"),
                marked("g", 7, "e2"),
                obj("z", 9),
            ],
            vec![
                obj("0-extra", 100),
                obj("a", 1),
                md5("b", 2, 1),
                md5("c", 3, 2),
                obj("d", 40),
                obj("e/0", 6),
                ListedObject {
                    md5: Some([9; 16]),
                    ..marked("f", 6, "e1")
                },
                marked("g", 7, "e1"),
                obj("y", 7),
            ],
            10,
        )
        .await;
        assert_eq!((d.source_objects, d.destination_objects), (8, 9));
        assert_eq!(
            d.in_sync, 3,
            "a (size only), b (same MD5), f (marker = S3 ETag, MD5s differ: SSE-KMS)"
        );
        assert_eq!(d.checksum_compared, 3, "b, f and g");
        assert_eq!(
            d.unverified, 1,
            "c: MD5s differ and no marker: not evidence"
        );
        assert_eq!(d.missing.sample, vec!["e/1", "z"]);
        assert_eq!((d.missing.count, d.missing.bytes), (2, 14));
        assert_eq!(d.extra.sample, vec!["0-extra", "e/0", "y"]);
        assert_eq!((d.extra.count, d.extra.bytes), (3, 113));
        assert_eq!(d.different.count, 2);
        assert_eq!(d.different.sample[0].key, "d");
        assert_eq!(d.different.sample[0].reason, Reason::Size);
        assert_eq!(
            (
                d.different.sample[0].source_size,
                d.different.sample[0].destination_size
            ),
            (4, 40)
        );
        assert_eq!(d.different.sample[1].key, "g");
        assert_eq!(d.different.sample[1].reason, Reason::SourceEtag);
        assert_eq!(
            (
                d.different.sample[1].source_etag.as_deref(),
                d.different.sample[1].destination_etag.as_deref()
            ),
            (Some("e2"), Some("e1"))
        );
        assert!(!d.is_clean());
    }

    #[tokio::test]
    async fn identical_and_empty() {
        let objs = vec![obj("a", 1), obj("b", 2)];
        let d = run(objs.clone(), objs, 10).await;
        assert!(d.is_clean());
        assert_eq!(d.in_sync, 2);
        let d = run(vec![], vec![], 10).await;
        assert!(d.is_clean());
        let d = run(vec![obj("a", 1)], vec![], 10).await;
        assert_eq!(d.missing.count, 1);
        let d = run(vec![], vec![obj("a", 1)], 10).await;
        assert_eq!(d.extra.count, 1);
    }

    #[tokio::test]
    async fn samples_are_capped_but_counts_exact() {
        let src: Vec<_> = (0..100).map(|i| obj(&format!("k{i:03}"), 1)).collect();
        let d = run(src, vec![], 5).await;
        assert_eq!(d.missing.count, 100);
        assert_eq!(d.missing.sample.len(), 5);
        assert_eq!(d.missing.sample[4], "k004");
    }

    #[tokio::test]
    async fn byte_order_not_locale_order() {
        // 'B' (0x42) < 'a' (0x61) < 'é' (0xc3..): what both clouds use.
        let keys = ["B", "a", "b", "é"];
        let src: Vec<_> = keys.iter().map(|k| obj(k, 1)).collect();
        let d = run(src.clone(), src, 10).await;
        assert!(d.is_clean(), "{d:?}");
    }

    #[tokio::test]
    async fn out_of_order_listing_is_an_error() {
        let d = run(
            vec![obj("b", 1), obj("a", 1)],
            vec![obj("a", 1), obj("b", 1)],
            10,
        )
        .await;
        let e = d.error.unwrap();
        assert!(e.contains("source listing is not in key order"), "{e}");
    }

    #[tokio::test]
    async fn listing_error_is_recorded() {
        let mut dst = VecListing::new(vec![obj("a", 1)]);
        dst.0.push_back(Err("PERMISSION_DENIED".into()));
        let d = compare(
            "s".into(),
            "d".into(),
            VecListing::new(vec![obj("a", 1), obj("b", 1)]),
            dst,
            10,
        )
        .await;
        assert_eq!(d.error.as_deref(), Some("PERMISSION_DENIED"));
        assert!(!d.is_clean());
    }
}
