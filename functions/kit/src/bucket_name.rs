//! Bucket-name rules, checked at init so a typo fails with what to fix.

/// Checks a Cloud Storage bucket name; the error says which rule it breaks.
pub fn gcs(bucket: &str) -> Result<(), &'static str> {
    check(bucket, 222, "-_.")
}

/// Checks an S3 (general purpose) bucket name; the error says which rule it breaks.
pub fn s3(bucket: &str) -> Result<(), &'static str> {
    check(bucket, 63, "-.")
}

fn check(bucket: &str, max: usize, extra: &str) -> Result<(), &'static str> {
    if bucket.is_empty() {
        return Err("the bucket name is missing");
    }
    if !(3..=max).contains(&bucket.len()) {
        return Err(if max == 63 {
            "a bucket name has 3 to 63 characters"
        } else {
            "a bucket name has 3 to 222 characters"
        });
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c);
    if !bucket.chars().all(allowed) {
        return Err(if extra.contains('_') {
            "a bucket name has only lowercase letters, digits, '-', '_' and '.'"
        } else {
            "a bucket name has only lowercase letters, digits, '-' and '.'"
        });
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(bucket.chars().next()) || !edge_ok(bucket.chars().last()) {
        return Err("a bucket name starts and ends with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(gcs("b.c-d_e"), Ok(()));
        assert_eq!(s3("b.c-d"), Ok(()));
        assert_eq!(gcs(""), Err("the bucket name is missing"));
        assert!(gcs("ab").unwrap_err().contains("3 to 222"));
        assert!(s3(&"a".repeat(64)).unwrap_err().contains("3 to 63"));
        assert!(gcs(&"a".repeat(222)).is_ok());
        assert!(s3("under_score").unwrap_err().contains("'-' and '.'"));
        assert!(gcs("My-Bucket").unwrap_err().contains("lowercase"));
        assert!(gcs("-bucket").unwrap_err().contains("starts and ends"));
        assert!(gcs("bucket-").unwrap_err().contains("starts and ends"));
    }
}
