//! Timestamp and duration formats of the AWS and Google wire protocols (`x-amz-date`,
//! RFC 3339, protobuf JSON durations), parsed and written by the fakes.

use std::time::{Duration, SystemTime};

use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

/// `x-amz-date` format: `20240101T123456Z`.
fn amz_date_format() -> Vec<BorrowedFormatItem<'static>> {
    time::format_description::parse_borrowed::<2>("[year][month][day]T[hour][minute][second]Z")
        .expect("valid format description")
}

/// Parses an `x-amz-date` value.
pub fn parse_amz_date(value: &str) -> Option<SystemTime> {
    PrimitiveDateTime::parse(value, &amz_date_format())
        .ok()
        .map(|t| t.assume_utc().into())
}

/// Formats a time as an `x-amz-date` value.
pub fn format_amz_date(at: SystemTime) -> String {
    OffsetDateTime::from(at)
        .format(&amz_date_format())
        .unwrap_or_default()
}

/// RFC 3339 UTC with whole seconds, as Google returns it:
/// `2026-11-28T12:34:56Z`.
pub fn format_rfc3339(at: SystemTime) -> String {
    let at = OffsetDateTime::from(at);
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp.
pub fn parse_rfc3339(value: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(value, &Rfc3339).ok().map(Into::into)
}

/// Parses a protobuf JSON duration restricted to whole seconds (`"3600s"`).
pub fn parse_seconds(value: &str) -> Option<Duration> {
    let digits = value.strip_suffix('s')?;
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_round_trip() {
        let t = parse_amz_date("20240229T235959Z").unwrap();
        assert_eq!(format_amz_date(t), "20240229T235959Z");
        assert_eq!(format_rfc3339(t), "2024-02-29T23:59:59Z");
        assert_eq!(parse_rfc3339("2024-02-29T23:59:59Z"), Some(t));
        assert!(parse_amz_date("20240229T235959").is_none());
        assert!(parse_amz_date("2024-02-29T23:59:59Z").is_none());
    }

    #[test]
    fn rfc3339_drops_fraction() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(format_rfc3339(t), "1970-01-01T00:00:01Z");
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("3600s"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_seconds("0s"), Some(Duration::ZERO));
        for bad in [
            "3600",
            "s",
            "1.5s",
            "-1s",
            " 1s",
            "1 s",
            "1m",
            "99999999999999s",
        ] {
            assert_eq!(parse_seconds(bad), None, "{bad}");
        }
    }
}
