//! Aggregate statistics of one bucket, computed while streaming its listing: memory is the
//! storage-class map plus the N largest objects, whatever the bucket size.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};

use crate::listing::{ListedObject, Listing};

/// Objects and bytes of one storage class.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassStats {
    pub objects: u64,
    pub bytes: u64,
}

/// One of the largest objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LargeObject {
    pub key: String,
    pub size: u64,
    pub storage_class: String,
}

/// Inventory of one bucket (or prefix).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketStats {
    /// `gs://bucket/prefix/` or `s3://bucket/prefix/`.
    pub location: String,
    pub object_count: u64,
    pub total_bytes: u64,
    pub by_storage_class: BTreeMap<String, ClassStats>,
    /// Largest first; keys relative to the location.
    pub largest: Vec<LargeObject>,
    /// Set when listing failed part-way: the numbers are then incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Heap entry: bigger is "larger"; equal sizes rank the smaller key first.
#[derive(PartialEq, Eq)]
struct Ranked(u64, Reverse<String>, String);

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0, &self.1).cmp(&(other.0, &other.1))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Accumulates stats one object at a time.
pub struct Accumulator {
    stats: BucketStats,
    top_n: usize,
    /// Min-heap of the `top_n` largest so far.
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl Accumulator {
    pub fn new(location: String, top_n: usize) -> Self {
        Accumulator {
            stats: BucketStats {
                location,
                object_count: 0,
                total_bytes: 0,
                by_storage_class: BTreeMap::new(),
                largest: Vec::new(),
                error: None,
            },
            top_n,
            heap: BinaryHeap::with_capacity(top_n + 1),
        }
    }

    pub fn add(&mut self, object: ListedObject) {
        let s = &mut self.stats;
        s.object_count += 1;
        s.total_bytes += object.size;
        let class = s
            .by_storage_class
            .entry(object.storage_class.clone())
            .or_default();
        class.objects += 1;
        class.bytes += object.size;
        if self.top_n == 0 {
            return;
        }
        let candidate = Ranked(object.size, Reverse(object.key), object.storage_class);
        if self.heap.len() < self.top_n {
            self.heap.push(Reverse(candidate));
        } else if self
            .heap
            .peek()
            .is_some_and(|Reverse(smallest)| candidate > *smallest)
        {
            self.heap.pop();
            self.heap.push(Reverse(candidate));
        }
    }

    pub fn finish(mut self, error: Option<String>) -> BucketStats {
        let mut ranked: Vec<Ranked> = self.heap.into_iter().map(|Reverse(r)| r).collect();
        ranked.sort_by(|a, b| b.cmp(a));
        self.stats.largest = ranked
            .into_iter()
            .map(|Ranked(size, Reverse(key), storage_class)| LargeObject {
                key,
                size,
                storage_class,
            })
            .collect();
        self.stats.error = error;
        self.stats
    }
}

/// Streams `listing` into stats. A listing error ends the stream and is recorded.
pub async fn collect(location: String, mut listing: impl Listing, top_n: usize) -> BucketStats {
    let mut acc = Accumulator::new(location, top_n);
    loop {
        match listing.next().await {
            Ok(Some(object)) => acc.add(object),
            Ok(None) => return acc.finish(None),
            Err(e) => {
                tracing::warn!(location = %acc.stats.location, error = %e, "listing failed");
                return acc.finish(Some(e.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::{VecListing, obj};

    fn classed(key: &str, size: u64, class: &str) -> ListedObject {
        ListedObject {
            storage_class: class.to_string(),
            ..obj(key, size)
        }
    }

    #[tokio::test]
    async fn aggregates_and_keeps_the_largest() {
        let listing = VecListing::new(vec![
            classed("a", 10, "STANDARD"),
            classed("b", 500, "NEARLINE"),
            classed("c", 30, "STANDARD"),
            classed("d", 500, "STANDARD"),
            classed("e", 0, "COLDLINE"),
            classed("f", 200, "NEARLINE"),
        ]);
        let s = collect("gs://b/".into(), listing, 3).await;
        assert_eq!(s.location, "gs://b/");
        assert_eq!((s.object_count, s.total_bytes), (6, 1240));
        assert_eq!(
            s.by_storage_class,
            BTreeMap::from([
                (
                    "COLDLINE".to_string(),
                    ClassStats {
                        objects: 1,
                        bytes: 0
                    }
                ),
                (
                    "NEARLINE".to_string(),
                    ClassStats {
                        objects: 2,
                        bytes: 700
                    }
                ),
                (
                    "STANDARD".to_string(),
                    ClassStats {
                        objects: 3,
                        bytes: 540
                    }
                ),
            ])
        );
        let largest: Vec<_> = s.largest.iter().map(|l| (l.key.as_str(), l.size)).collect();
        assert_eq!(largest, vec![("b", 500), ("d", 500), ("f", 200)]);
        assert_eq!(s.largest[0].storage_class, "NEARLINE");
        assert_eq!(s.error, None);
    }

    #[tokio::test]
    async fn empty_and_fewer_than_n() {
        let s = collect("s3://e/".into(), VecListing::new(vec![]), 5).await;
        assert_eq!((s.object_count, s.total_bytes, s.largest.len()), (0, 0, 0));
        let s = collect(
            "s3://e/".into(),
            VecListing::new(vec![obj("x", 1), obj("y", 2)]),
            5,
        )
        .await;
        assert_eq!(
            s.largest.iter().map(|l| l.size).collect::<Vec<_>>(),
            vec![2, 1]
        );
    }

    #[tokio::test]
    async fn error_keeps_partial_numbers() {
        let mut listing = VecListing::new(vec![obj("x", 4)]);
        listing.0.push_back(Err("AccessDenied".into()));
        listing.0.push_back(Ok(obj("never", 100)));
        let s = collect("s3://e/".into(), listing, 5).await;
        assert_eq!((s.object_count, s.total_bytes), (1, 4));
        assert_eq!(s.error.as_deref(), Some("AccessDenied"));
    }

    #[test]
    fn many_objects_bounded_heap() {
        let mut acc = Accumulator::new("x".into(), 4);
        for i in 0..10_000u64 {
            acc.add(obj(&format!("k{i:05}"), (i * 7919) % 10_007));
            assert!(acc.heap.len() <= 4);
        }
        let s = acc.finish(None);
        let sizes: Vec<_> = s.largest.iter().map(|l| l.size).collect();
        let mut all: Vec<u64> = (0..10_000u64).map(|i| (i * 7919) % 10_007).collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(sizes, all[..4].to_vec());
    }
}
