//! The formats Google Cloud and AWS accept for each flag, checked before anything is planned:
//! a value that passes holds no shell, CEL or control character, so the script quotes it as
//! one word and its comments stay comments. Errors name the flag and show the value escaped.

/// The partitions of AWS ARNs.
pub const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

/// `value` for a message: quoted, with control characters, quotes and backslashes escaped.
pub fn shown(value: &str) -> String {
    format!("\"{}\"", value.escape_debug())
}

fn all(value: &str, allowed: impl Fn(u8) -> bool) -> bool {
    value.bytes().all(allowed)
}

fn lower_digit_hyphen(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

fn refuse(flag: &str, value: &str, expected: &str) -> String {
    format!("{flag} {}: expected {expected}", shown(value))
}

/// A Google Cloud project ID: 6-30 characters, lower-case letters, digits and hyphens,
/// starting with a letter and not ending with a hyphen.
pub fn project_id(value: &str) -> Result<(), String> {
    let ok = (6..=30).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && !value.ends_with('-')
        && all(value, lower_digit_hyphen);
    ok.then_some(()).ok_or_else(|| {
        refuse(
            "--project-id",
            value,
            "a Google Cloud project ID (6-30 characters: a-z, 0-9 and -, starting with a letter)",
        )
    })
}

/// A project number: digits.
pub fn project_number(value: &str, project_id: &str) -> Result<(), String> {
    let ok = (1..=20).contains(&value.len()) && all(value, |b| b.is_ascii_digit());
    ok.then_some(()).ok_or_else(|| {
        refuse(
            "--project-number",
            value,
            &format!(
                "digits (gcloud projects describe {project_id} --format='value(projectNumber)')"
            ),
        )
    })
}

/// A workload identity pool or provider ID: 4-32 characters of a-z, 0-9 and -, not
/// starting with `gcp-` (reserved by Google) nor with a hyphen.
pub fn pool_or_provider_id(flag: &str, value: &str) -> Result<(), String> {
    let ok = (4..=32).contains(&value.len())
        && all(value, lower_digit_hyphen)
        && !value.starts_with('-')
        && !value.starts_with("gcp-");
    ok.then_some(()).ok_or_else(|| {
        refuse(
            flag,
            value,
            "an ID of 4-32 characters: a-z, 0-9 and - (not starting with gcp-)",
        )
    })
}

/// A service account ID (6-30 characters of a-z, 0-9 and -, starting with a letter, not
/// ending with a hyphen) or an e-mail `ID@PROJECT.iam.gserviceaccount.com`.
pub fn service_account(value: &str) -> Result<(), String> {
    let id_ok = |id: &str| {
        (6..=30).contains(&id.len())
            && id.starts_with(|c: char| c.is_ascii_lowercase())
            && !id.ends_with('-')
            && all(id, lower_digit_hyphen)
    };
    let ok = match value.split_once('@') {
        None => id_ok(value),
        Some((id, domain)) => {
            id_ok(id)
                && domain.ends_with(".gserviceaccount.com")
                && all(domain, |b| lower_digit_hyphen(b) || b == b'.')
        }
    };
    ok.then_some(()).ok_or_else(|| {
        refuse(
            "--shared-service-account",
            value,
            "a service account ID (6-30 characters: a-z, 0-9 and -, starting with a letter) or its e-mail ID@PROJECT.iam.gserviceaccount.com",
        )
    })
}

/// A Cloud Storage bucket name: 3-63 characters (up to 222 with dots, 63 per dot-separated
/// part) of a-z, 0-9, -, _ and ., starting and ending with a letter or digit.
pub fn bucket(flag: &str, value: &str) -> Result<(), String> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let max = if value.contains('.') { 222 } else { 63 };
    let ok = (3..=max).contains(&value.len())
        && all(value, |b| lower_digit_hyphen(b) || b == b'_' || b == b'.')
        && value.starts_with(alnum)
        && value.ends_with(alnum)
        && value.split('.').all(|part| (1..=63).contains(&part.len()))
        && !value.starts_with("goog");
    ok.then_some(()).ok_or_else(|| {
        refuse(
            flag,
            value,
            "a Cloud Storage bucket name (3-63 characters: a-z, 0-9, -, _ and .)",
        )
    })
}

/// An object path (a prefix, a report location): printable, no control characters.
fn object_path(flag: &str, url: &str, path: &str) -> Result<(), String> {
    let ok = path.len() <= 1024 && !path.chars().any(char::is_control);
    ok.then_some(()).ok_or_else(|| {
        refuse(
            flag,
            url,
            "a path of at most 1024 bytes without control characters",
        )
    })
}

/// `gs://BUCKET[/PREFIX]`: the bucket checked as a bucket name, the prefix as an object path.
/// Returns the bucket name.
pub fn gcs_url<'a>(flag: &str, url: &'a str) -> Result<&'a str, String> {
    let rest = url
        .strip_prefix("gs://")
        .ok_or_else(|| refuse(flag, url, "gs://BUCKET[/PREFIX]"))?;
    let (bucket_name, path) = rest.split_once('/').unwrap_or((rest, ""));
    bucket(flag, bucket_name)?;
    object_path(flag, url, path)?;
    Ok(bucket_name)
}

/// `s3://BUCKET[/PREFIX]` (an S3 bucket name: 3-63 characters of a-z, 0-9, - and .).
pub fn s3_url(flag: &str, url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| refuse(flag, url, "s3://BUCKET[/PREFIX] or gs://BUCKET[/PREFIX]"))?;
    let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = (3..=63).contains(&name.len())
        && all(name, |b| lower_digit_hyphen(b) || b == b'.')
        && name.starts_with(alnum)
        && name.ends_with(alnum);
    if !ok {
        return Err(refuse(
            flag,
            url,
            "s3://BUCKET[/PREFIX] with an S3 bucket name",
        ));
    }
    object_path(flag, url, path)
}

/// An SSM parameter name as the template accepts it: `/` then a-z, A-Z, 0-9, _, ., - and
/// `/`, at most 1011 characters.
pub fn ssm_name(value: &str) -> Result<(), String> {
    let ok = value.len() >= 2
        && value.len() <= 1011
        && value.starts_with('/')
        && all(value, |b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b));
    ok.then_some(()).ok_or_else(|| {
        refuse(
            "--config-parameter",
            value,
            "a fully qualified SSM parameter name: /, then a-z, A-Z, 0-9, _ . - and / (the template's GoogleCredentialConfigParameterName pattern)",
        )
    })
}

/// An AWS region such as `eu-west-1` or `us-gov-west-1`.
pub fn aws_region(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split('-').collect();
    let ok = value.len() <= 32
        && parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && all(p, |b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && all(n, |b| b.is_ascii_digit()));
    ok.then_some(())
        .ok_or_else(|| refuse("--region", value, "an AWS region such as eu-west-1"))
}

/// A Google Cloud location such as `us-central1`, `europe-west4` or `global`.
pub fn google_location(value: &str) -> Result<(), String> {
    let ok = (2..=40).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && !value.ends_with('-')
        && all(value, lower_digit_hyphen);
    ok.then_some(()).ok_or_else(|| {
        refuse(
            "--vertex-location",
            value,
            "a Google Cloud location such as us-central1",
        )
    })
}

/// A KMS key ID, alias (`alias/NAME`) or ARN.
pub fn kms_key(value: &str) -> Result<(), String> {
    let ok = (1..=2048).contains(&value.len())
        && all(value, |b| {
            b.is_ascii_alphanumeric() || b"/_-:.".contains(&b)
        });
    ok.then_some(())
        .ok_or_else(|| refuse("--kms-key-id", value, "a KMS key ID, alias/NAME or key ARN"))
}

/// A CloudFormation stack name (a letter, then letters, digits and -, at most 128
/// characters) or stack ID (an ARN).
pub fn stack(value: &str) -> Result<(), String> {
    let name_ok = (1..=128).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_alphabetic())
        && all(value, |b| b.is_ascii_alphanumeric() || b == b'-');
    let arn_ok = value.starts_with("arn:")
        && value.len() <= 1024
        && all(value, |b| b.is_ascii_alphanumeric() || b"-:/".contains(&b));
    (name_ok || arn_ok).then_some(()).ok_or_else(|| {
        refuse(
            "--stack",
            value,
            "a CloudFormation stack name (a letter, then letters, digits and -)",
        )
    })
}

/// A 12-digit AWS account ID.
pub fn aws_account(flag: &str, value: &str) -> Result<(), String> {
    let ok = value.len() == 12 && all(value, |b| b.is_ascii_digit());
    ok.then_some(())
        .ok_or_else(|| refuse(flag, value, "a 12-digit AWS account ID"))
}

/// An IAM role name: 1-64 characters of letters, digits and `+=,.@_-`.
pub fn role_name(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && all(value, |b| {
            b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clouds_formats() {
        assert!(project_id("my-project").is_ok());
        for bad in [
            "My-project",
            "proj",
            "my-project-",
            "1project",
            "my_project",
            "a\nb-cdef",
        ] {
            assert!(project_id(bad).is_err(), "{bad:?}");
        }
        assert!(pool_or_provider_id("--pool", "aws-lambda").is_ok());
        for bad in [
            "abc",
            "gcp-pool",
            "Pool",
            "-pool",
            "pool'x",
            &"a".repeat(33),
        ] {
            assert!(pool_or_provider_id("--pool", bad).is_err(), "{bad:?}");
        }
        assert!(service_account("crossfed").is_ok());
        assert!(service_account("crossfed@my-project.iam.gserviceaccount.com").is_ok());
        for bad in ["short", "crossfed@example.com", "Crossfed", "a@b@c"] {
            assert!(service_account(bad).is_err(), "{bad:?}");
        }
        assert_eq!(gcs_url("--f", "gs://my-bucket/a/b c"), Ok("my-bucket"));
        assert!(gcs_url("--f", "gs://my-bucket/a\nrm -rf").is_err());
        assert!(gcs_url("--f", "gs://Bucket").is_err());
        assert!(gcs_url("--f", "s3://bucket").is_err());
        assert!(ssm_name("/crossfed/google-credential-config").is_ok());
        assert!(ssm_name("crossfed").is_err());
        assert!(ssm_name("/a b").is_err());
        assert!(aws_region("eu-west-1").is_ok());
        assert!(aws_region("us-gov-west-1").is_ok());
        assert!(aws_region("eu-west").is_err());
        assert!(google_location("us-central1").is_ok());
        assert!(google_location("us central1").is_err());
        assert!(stack("crossfed").is_ok());
        assert!(stack("crossfed;ls").is_err());
        assert!(aws_account("--aws-account", "111122223333").is_ok());
        assert!(aws_account("--aws-account", "1111").is_err());
        let message = project_id("a\nb").unwrap_err();
        assert!(message.starts_with("--project-id \"a\\nb\""), "{message}");
        assert!(!message.chars().any(char::is_control));
    }
}
