//! Where copies go: `SYNC_DESTINATION=gs://bucket[/prefix]`, the S3 key kept below the prefix.

use std::fmt;
use std::str::FromStr;

pub use crossfed_kit::sync_areas::{RESERVED_AREAS, reserved_area};

/// Cloud Storage object names are at most 1024 bytes of UTF-8.
const MAX_OBJECT_NAME_BYTES: usize = 1024;

/// A parsed `gs://bucket[/prefix]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    bucket: String,
    /// Empty, or ends with `/`.
    prefix: String,
}

/// Why `SYNC_DESTINATION` is not usable.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "SYNC_DESTINATION={value:?} is invalid: {reason}; set it to gs://BUCKET or gs://BUCKET/PREFIX"
)]
pub struct DestinationError {
    value: String,
    reason: &'static str,
}

impl FromStr for Destination {
    type Err = DestinationError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let fail = |reason| DestinationError {
            value: value.to_string(),
            reason,
        };
        let rest = value
            .trim()
            .strip_prefix("gs://")
            .ok_or_else(|| fail("it must start with gs://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        crossfed_kit::bucket_name::gcs(bucket).map_err(fail)?;
        let prefix = prefix.trim_start_matches('/');
        if prefix.contains(['\r', '\n']) {
            return Err(fail("the prefix must not contain line breaks"));
        }
        let prefix = match prefix {
            "" => String::new(),
            p if p.ends_with('/') => p.to_string(),
            p => format!("{p}/"),
        };
        if prefix.len() >= MAX_OBJECT_NAME_BYTES {
            return Err(fail("the prefix is longer than an object name may be"));
        }
        Ok(Destination {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

impl Destination {
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `projects/_/buckets/{bucket}`, the resource name the clients expect.
    pub fn bucket_resource(&self) -> String {
        format!("projects/_/buckets/{}", self.bucket)
    }

    /// The object name for an S3 key, or why the key cannot be stored.
    pub fn object_name(&self, key: &str) -> Result<String, String> {
        if key.is_empty() {
            return Err("empty S3 key".into());
        }
        if let Some(area) = reserved_area(key) {
            return Err(format!(
                "keys under {area:?} are not replicated: gcs-sync keeps its temporary parts \
                 and backfill checkpoints there in the destination; rename the S3 object"
            ));
        }
        let name = format!("{}{key}", self.prefix);
        if name.len() > MAX_OBJECT_NAME_BYTES {
            return Err(format!(
                "object name would be {} bytes, over Cloud Storage's {MAX_OBJECT_NAME_BYTES}",
                name.len()
            ));
        }
        if name.contains(['\r', '\n']) {
            return Err("Cloud Storage object names cannot contain CR or LF".into());
        }
        if name.starts_with(".well-known/acme-challenge/") || name == "." || name == ".." {
            return Err(format!("{name:?} is a reserved Cloud Storage object name"));
        }
        Ok(name)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gs://{}/{}", self.bucket, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix() {
        let d: Destination = "gs://my-bucket".parse().unwrap();
        assert_eq!((d.bucket(), d.prefix()), ("my-bucket", ""));
        assert_eq!(d.object_name("a/b.txt").unwrap(), "a/b.txt");
        let d: Destination = "gs://my-bucket/".parse().unwrap();
        assert_eq!(d.prefix(), "");
        let d: Destination = "gs://my-bucket/mirror/s3".parse().unwrap();
        assert_eq!(d.prefix(), "mirror/s3/");
        assert_eq!(d.object_name("k").unwrap(), "mirror/s3/k");
        assert_eq!(d.bucket_resource(), "projects/_/buckets/my-bucket");
        assert_eq!(d.to_string(), "gs://my-bucket/mirror/s3/");
        let d: Destination = " gs://b.c-d_e/p/ ".parse().unwrap();
        assert_eq!((d.bucket(), d.prefix()), ("b.c-d_e", "p/"));
    }

    #[test]
    fn rejects_bad_destinations_with_a_fix() {
        for bad in [
            "",
            "my-bucket",
            "s3://my-bucket",
            "gs://",
            "gs:///prefix",
            "gs://My-Bucket",
            "gs://ab",
            "gs://-bucket",
            "gs://bucket-",
            "gs://bu cket",
        ] {
            let err = bad.parse::<Destination>().unwrap_err().to_string();
            assert!(
                err.contains("SYNC_DESTINATION") && err.contains("gs://BUCKET"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn object_name_limits() {
        let d: Destination = "gs://bucket/p".parse().unwrap();
        assert!(d.object_name("").is_err());
        assert!(d.object_name("a\nb").is_err());
        assert!(d.object_name(&"x".repeat(1022)).is_ok());
        assert!(d.object_name(&"x".repeat(1023)).is_err());
        assert_eq!(d.object_name("ünï cødé ✓").unwrap(), "p/ünï cødé ✓");
    }

    #[test]
    fn keys_in_reserved_areas_have_no_name() {
        let d: Destination = "gs://bucket/p".parse().unwrap();
        for key in [
            ".crossfed-parts/k/e/000001",
            ".crossfed/backfill/r",
            ".crossfed/x",
        ] {
            let err = d.object_name(key).unwrap_err();
            assert!(err.contains("not replicated"), "{key}: {err}");
        }
        for key in [
            "a/.crossfed/x",
            ".crossfed-partsx",
            ".crossfed",
            "x.crossfed-parts/1",
        ] {
            assert!(d.object_name(key).is_ok(), "{key}");
        }
    }
}
