//! Summaries of repeated measurements, for benchmarks.

use std::time::Duration;

/// The middle value (the upper one of an even count).
///
/// # Panics
/// If `values` is empty.
pub fn median<T: Ord + Copy>(mut values: Vec<T>) -> T {
    assert!(!values.is_empty(), "median of no values");
    values.sort_unstable();
    values[values.len() / 2]
}

/// The `p`th percentile (nearest rank, `p` in 0..=100).
///
/// # Panics
/// If `values` is empty.
pub fn percentile(mut values: Vec<Duration>, p: usize) -> Duration {
    assert!(!values.is_empty(), "percentile of no values");
    values.sort_unstable();
    values[(values.len() * p / 100).min(values.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentile_pick_by_rank() {
        assert_eq!(median(vec![5, 1, 3]), 3);
        assert_eq!(median(vec![4, 1, 3, 2]), 3);
        let ms = |v: u64| Duration::from_millis(v);
        let v: Vec<_> = (1..=10).rev().map(ms).collect();
        assert_eq!(percentile(v.clone(), 50), ms(6));
        assert_eq!(percentile(v.clone(), 90), ms(10));
        assert_eq!(percentile(v, 100), ms(10));
    }
}
