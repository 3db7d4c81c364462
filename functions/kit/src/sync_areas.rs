//! gcs-sync's own areas below a sync destination prefix: temporary parts of copies in
//! progress and backfill checkpoints. gcs-sync never replicates S3 keys there, and the
//! report leaves them out of its drift comparison.

/// Parts of copies in progress: `<prefix>.crossfed-parts/<key>/<etag>/<n>`.
pub const PARTS_DIR: &str = ".crossfed-parts/";
/// gcs-sync's bookkeeping, e.g. backfill checkpoints under `<prefix>.crossfed/backfill/`.
pub const CHECKPOINT_AREA: &str = ".crossfed/";
/// Both areas.
pub const RESERVED_AREAS: [&str; 2] = [PARTS_DIR, CHECKPOINT_AREA];

/// The reserved area `key` (relative to the prefix) is in, if any.
pub fn reserved_area(key: &str) -> Option<&'static str> {
    RESERVED_AREAS
        .into_iter()
        .find(|area| key.starts_with(area))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_inside_the_areas() {
        assert_eq!(reserved_area(".crossfed-parts/k/e/1"), Some(PARTS_DIR));
        assert_eq!(reserved_area(".crossfed/backfill/c"), Some(CHECKPOINT_AREA));
        for key in [".crossfed-partsx", ".crossfed", "x/.crossfed/", "a"] {
            assert_eq!(reserved_area(key), None, "{key}");
        }
    }
}
