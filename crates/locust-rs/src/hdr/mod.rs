//! HDR histograms of response times: the histogram settings every part shares, and the
//! coordinated-omission correction.
//!
//! The statistics core (`crate::stats`) records them as Locust's `request` events arrive, on the
//! Python thread; `set` is a keyed collection of them that Python reads, merges and writes out (the
//! HDR outputs); `codec` is the wire format (HdrHistogram V2 + deflate). Values are microseconds,
//! 3 significant digits, clamped to 1 µs .. 1 h.

pub mod codec;
pub mod set;

pub use set::HistogramSet;

use hdrhistogram::Histogram;

/// Three significant digits: every reported value is within 0.1 % of the recorded one.
pub const SIGFIG: u8 = 3;
/// One hour in microseconds: the highest value kept; longer ones are recorded as one hour.
pub const MAX_MICROS: u64 = 3_600_000_000;

/// A new auto-resizing histogram: it starts small and grows to the largest value seen, so a
/// key that only sees fast requests costs a few KB instead of the 190 KB of a full 1 h range.
pub fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(SIGFIG).unwrap_or_else(|_| unreachable_histogram());
    h.auto(true);
    h
}

/// HdrHistogram's coordinated-omission correction (`record_correct`): `v`, then the samples a
/// request every `interval` would have seen while this one waited, `v - interval`, `v - 2 interval`,
/// ... down to `interval`. Recorded a bucket at a time, not a sample at a time, so a 1 h response
/// with a 1 µs interval costs a few thousand steps, not 3.6e9 (which held the GIL for 36 s).
pub fn record_corrected(h: &mut Histogram<u64>, v: u64, interval: u64) {
    let _ = h.record(v);
    if interval == 0 || v < interval.saturating_mul(2) {
        return;
    }
    let mut m = v - interval;
    while m >= interval {
        let floor = h.lowest_equivalent(m).max(interval);
        // The samples m, m - interval, ... that fall in m's bucket.
        let n = (m - floor) / interval + 1;
        let _ = h.record_n(m, n);
        match m.checked_sub(n * interval) {
            Some(next) => m = next,
            None => break,
        }
    }
}

// `Histogram::new(3)` only fails for sigfig > 5; this keeps clippy's no-unwrap rule without a
// panic path.
fn unreachable_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 2, 1).unwrap_or_else(|_| unreachable_histogram())
}

/// Converts milliseconds (Locust's unit) to whole microseconds, clamped to the kept range.
pub fn ms_to_micros(ms: f64) -> u64 {
    if ms.is_nan() || ms <= 0.0 {
        return 0;
    }
    ((ms * 1000.0).round() as u64).min(MAX_MICROS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_wise_correction_equals_hdrhistograms() {
        for (v, interval) in [
            (0, 10),
            (5, 10),
            (10, 10),
            (19, 10),
            (20, 10),
            (1_000, 7),
            (123_456, 10),
            (3_600_000, 1_000),
            (5_000_000, 1),
            (2_000_000, 3),
        ] {
            let (mut ours, mut theirs) = (new_histogram(), new_histogram());
            record_corrected(&mut ours, v, interval);
            theirs.record_correct(v, interval).unwrap();
            assert_eq!(ours, theirs, "v={v} interval={interval}");
            assert_eq!(ours.len(), theirs.len());
        }
    }

    #[test]
    fn an_hour_at_one_microsecond_counts_every_sample() {
        // 3.6e9 samples: one at a time this took 36 s; a bucket at a time it is a few thousand steps.
        let mut h = new_histogram();
        record_corrected(&mut h, 3_600_000_000, 1);
        assert_eq!(h.len(), 3_600_000_000);
        assert_eq!(h.min(), 1);
    }
}
