//! The metrics core: HDR histograms of response times, recorded on the tokio side.
//!
//! `set` is a keyed collection of histograms that Python reads, merges and writes out (the
//! statistics core, `crate::stats`, records them); `codec` is the wire format (HdrHistogram
//! V2 + deflate). Values are
//! microseconds, 3 significant digits, clamped to 1 µs .. 1 h.

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
