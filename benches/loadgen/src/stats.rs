//! Statistics over rounds and latency samples, and how figures are printed.

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
#[must_use]
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => sorted.get(mid).copied(),
        _ => Some((sorted.get(mid - 1)? + sorted.get(mid)?) / 2.0),
    }
}

/// Half the range of `values` in percent of their median: how far the rounds disagree.
/// `None` when empty or when the median is zero.
#[must_use]
pub(crate) fn spread_pct(values: &[f64]) -> Option<f64> {
    let mid = median(values)?;
    let finite = || values.iter().copied().filter(|v| v.is_finite());
    let lo = finite().fold(f64::INFINITY, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    (mid != 0.0).then(|| (hi - lo) / 2.0 / mid.abs() * 100.0)
}

/// The nearest-rank percentile `p` (0 < p ≤ 100) of `sorted` (ascending): the smallest sample
/// such that at least `p` % of the samples are at or below it. `None` when empty.
#[must_use]
pub(crate) fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    // Exact rank arithmetic in integers: rank = ceil(p/100 · n), with p given to 0.001 %.
    let n = sorted.len() as u128;
    let p_milli = (p * 1000.0).round() as u128;
    let rank = (p_milli * n).div_ceil(100_000).max(1);
    let index = usize::try_from(rank - 1).ok()?;
    sorted.get(index.min(sorted.len() - 1)).copied()
}

/// A rate with a metric suffix: `3.079M`, `61.3K`, `950.0`.
#[must_use]
pub(crate) fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.3}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}K", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

/// A plain number with about four significant digits: `1004`, `12.5`, `0.272`.
#[must_use]
pub(crate) fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[4.0]), Some(4.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[9.0, 1.0, 5.0, 3.0]), Some(4.0));
        assert_eq!(median(&[f64::NAN, 2.0]), Some(2.0));
    }

    #[test]
    fn spread_is_half_the_range_over_the_median() {
        assert_eq!(spread_pct(&[]), None);
        assert_eq!(spread_pct(&[0.0, 0.0]), None);
        assert_eq!(spread_pct(&[10.0]), Some(0.0));
        // Range 8..12, median 10: half the range is 2, 20 % of the median.
        assert_eq!(spread_pct(&[12.0, 8.0, 10.0]), Some(20.0));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&samples, 50.0), Some(500));
        assert_eq!(percentile(&samples, 99.0), Some(990));
        assert_eq!(percentile(&samples, 99.9), Some(999));
        assert_eq!(percentile(&samples, 100.0), Some(1000));
        assert_eq!(percentile(&samples, 0.01), Some(1));
        // Few samples: p99.9 of 10 is the largest, p50 of 10 is the 5th.
        let ten: Vec<u64> = (10..20).collect();
        assert_eq!(percentile(&ten, 99.9), Some(19));
        assert_eq!(percentile(&ten, 50.0), Some(14));
        assert_eq!(percentile(&[7], 50.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&samples, 0.0), None);
        assert_eq!(percentile(&samples, 100.5), None);
    }

    #[test]
    fn numbers_are_printed_with_four_digits() {
        assert_eq!(fmt_rate(3_079_123.0), "3.079M");
        assert_eq!(fmt_rate(61_300.0), "61.3K");
        assert_eq!(fmt_rate(950.0), "950.0");
        assert_eq!(fmt_num(1004.4), "1004");
        assert_eq!(fmt_num(12.46), "12.5");
        assert_eq!(fmt_num(2.704), "2.70");
        assert_eq!(fmt_num(0.2718), "0.272");
    }
}
