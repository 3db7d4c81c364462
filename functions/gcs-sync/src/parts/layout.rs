//! Where the parts of one source object (key and ETag) go and which bytes each holds:
//! `<prefix>.crossfed-parts/<key>/<etag>/<n>`, fixed-size ranges of the S3 object.

use crate::destination::Destination;

/// Marks temporary objects below the destination prefix.
pub use crossfed_kit::sync_areas::PARTS_DIR;
/// Cloud Storage object names are at most 1024 bytes.
const MAX_NAME: usize = 1024;

/// The parts of one source object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    dir: String,
    size: u64,
    part_bytes: u64,
}

/// A part stored in Cloud Storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub generation: i64,
    pub len: u64,
    pub crc32c: u32,
}

impl Layout {
    /// The layout for `key` with `etag`, or `None` if part names would be too long for
    /// Cloud Storage (such objects are copied in one stream instead).
    pub fn new(
        destination: &Destination,
        key: &str,
        etag: &str,
        size: u64,
        part_bytes: u64,
    ) -> Option<Self> {
        let dir = format!("{}{PARTS_DIR}{key}/{etag}/", destination.prefix());
        // Room for the longest part / intermediate name suffix.
        (dir.len() + 16 <= MAX_NAME && part_bytes > 0).then_some(Layout {
            dir,
            size,
            part_bytes,
        })
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn count(&self) -> usize {
        self.size.div_ceil(self.part_bytes) as usize
    }

    /// `(offset, length)` of part `n`.
    pub fn range(&self, n: usize) -> (u64, u64) {
        let start = n as u64 * self.part_bytes;
        (start, self.part_bytes.min(self.size - start))
    }

    pub fn part_name(&self, n: usize) -> String {
        format!("{}{n:06}", self.dir)
    }

    /// Name of intermediate `i` of compose level `depth`.
    pub fn intermediate_name(&self, depth: usize, i: usize) -> String {
        format!("{}c{depth}-{i:06}", self.dir)
    }

    /// Whether `name` is one this layout produces: a part or a compose intermediate. Only
    /// such names are ever removed as leftovers; anything else below the directory is not
    /// gcs-sync's.
    pub fn produces(&self, name: &str) -> bool {
        self.part_number(name).is_some()
            || name.strip_prefix(&self.dir).is_some_and(|rest| {
                let Some((level, index)) = rest.strip_prefix('c').and_then(|r| r.split_once('-'))
                else {
                    return false;
                };
                !level.is_empty()
                    && level.bytes().all(|b| b.is_ascii_digit())
                    && index.len() == 6
                    && index.bytes().all(|b| b.is_ascii_digit())
            })
    }

    /// Part number of `name`, if it is one of this layout's parts.
    pub fn part_number(&self, name: &str) -> Option<usize> {
        let n = name.strip_prefix(&self.dir)?;
        (n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()))
            .then(|| n.parse().ok())
            .flatten()
            .filter(|n| *n < self.count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn layout(size: u64, part: u64) -> Layout {
        let d: Destination = "gs://bucket/mirror".parse().unwrap();
        Layout::new(&d, "dir/a b.bin", "abc-3", size, part).unwrap()
    }

    #[test]
    fn ranges_cover_the_object() {
        let l = layout(10 * MIB + 5, 4 * MIB);
        assert_eq!(l.count(), 3);
        assert_eq!(l.range(0), (0, 4 * MIB));
        assert_eq!(l.range(2), (8 * MIB, 2 * MIB + 5));
        assert_eq!(
            l.part_name(2),
            "mirror/.crossfed-parts/dir/a b.bin/abc-3/000002"
        );
        assert_eq!(l.part_number(&l.part_name(2)), Some(2));
        assert_eq!(l.part_number(&l.part_name(3)), None);
        assert_eq!(l.part_number(&l.intermediate_name(1, 0)), None);
        assert_eq!(
            l.intermediate_name(1, 0),
            "mirror/.crossfed-parts/dir/a b.bin/abc-3/c1-000000"
        );
        assert_eq!(layout(8 * MIB, 4 * MIB).count(), 2);
    }

    #[test]
    fn only_its_own_names_are_produced() {
        let l = layout(10 * MIB + 5, 4 * MIB);
        assert!(l.produces(&l.part_name(0)) && l.produces(&l.part_name(2)));
        assert!(l.produces(&l.intermediate_name(1, 0)));
        assert!(l.produces(&l.intermediate_name(12, 31)));
        for foreign in [
            l.part_name(3),
            format!("{}notes.txt", l.dir()),
            format!("{}00001", l.dir()),
            format!("{}c-000001", l.dir()),
            format!("{}c1-00001", l.dir()),
            format!("{}c1x-000001", l.dir()),
            format!("{}sub/000001", l.dir()),
            "mirror/other".to_string(),
        ] {
            assert!(!l.produces(&foreign), "{foreign}");
        }
    }

    #[test]
    fn long_keys_have_no_layout() {
        let d: Destination = "gs://bucket/p".parse().unwrap();
        assert!(Layout::new(&d, &"k".repeat(990), "e", 1, 1).is_none());
        assert!(Layout::new(&d, &"k".repeat(900), "e", 1, 1).is_some());
    }
}
