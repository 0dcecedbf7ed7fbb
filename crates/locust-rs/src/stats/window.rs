//! The histogram of the last `SECONDS` seconds, for Locust's "current" percentiles: a ring of
//! per-second histograms, summed when read.

use hdrhistogram::Histogram;

use crate::hdr::new_histogram;

/// Locust's `CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW`.
pub const SECONDS: i64 = 10;

pub struct Window {
    slots: Vec<(i64, Histogram<u64>)>,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            slots: (0..SECONDS).map(|_| (i64::MIN, new_histogram())).collect(),
        }
    }
}

impl Window {
    pub fn record(&mut self, second: i64, micros: u64, n: u64) {
        let (s, h) = &mut self.slots[second.rem_euclid(SECONDS) as usize];
        if *s != second {
            if *s > second {
                return;
            }
            h.reset();
            *s = second;
        }
        let _ = h.record_n(micros, n);
    }

    /// Everything recorded in the `SECONDS` seconds up to and including `now`.
    pub fn sum(&self, now: i64) -> Histogram<u64> {
        let mut out = new_histogram();
        for (s, h) in &self.slots {
            if *s > now - SECONDS && *s <= now {
                let _ = out.add(h);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_last_ten_seconds_only() {
        let mut w = Window::default();
        for sec in 0..30 {
            w.record(sec, 1000 + sec as u64, 1);
        }
        let h = w.sum(29);
        assert_eq!(h.len(), 10);
        assert!(h.min() >= 1020);
        assert_eq!(w.sum(45).len(), 0);
    }
}
