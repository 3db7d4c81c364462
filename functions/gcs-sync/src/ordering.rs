//! S3 event sequencers. They only order work within a batch (events of one key run one
//! after another, oldest first); they never decide what the copy holds, so a forged
//! sequencer cannot hold a key back.

use std::cmp::Ordering;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
