//! One Locust `StatsEntry` worth of statistics: the counters Locust keeps, with an HDR histogram
//! in place of its rounded `response_times` dict.

use hdrhistogram::Histogram;

use super::hist::Hist;
use super::seconds::Seconds;
use super::window::Window;
use crate::hdr::{ms_to_micros, new_histogram, record_corrected, MAX_MICROS};

pub struct Entry {
    pub num_requests: u64,
    pub num_none_requests: u64,
    pub num_failures: u64,
    pub total_response_time: f64,
    pub min_response_time: Option<f64>,
    pub max_response_time: f64,
    pub total_content_length: i64,
    pub start_time: f64,
    pub last_request_timestamp: Option<f64>,
    pub reqs_per_sec: Seconds,
    pub fails_per_sec: Seconds,
    /// Every response time since the last reset, in microseconds.
    pub hist: Hist,
    /// Coordinated-omission corrected, for requests sent with an expected interval.
    pub corrected: Option<Histogram<u64>>,
    /// The last seconds, for the "current" percentiles; None until someone asks for them.
    pub window: Option<Window>,
    /// What the next interval of the `.hlog` gets (raw, corrected); None unless it is written.
    pub interval: Option<(Hist, Option<Histogram<u64>>)>,
    /// Whether the core's list of entries with something in the interval has this one.
    pub interval_listed: bool,
    /// Where the core's creation order has this entry.
    pub order_index: usize,
}

/// How a response time also goes into the corrected histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Correction {
    /// Not at all (a closed-model user without an expected interval).
    None,
    /// HdrHistogram's correction for a user paced at this interval (µs).
    Interval(u64),
    /// An arrival-rate iteration's request sent this long (µs) after the iteration was due:
    /// measured from when it was due, the time a user arriving on schedule would have waited.
    Lead(u64),
}

impl Correction {
    fn record(self, h: &mut Option<Histogram<u64>>, v: u64) {
        match self {
            Correction::None => {}
            Correction::Interval(i) => record_corrected(h.get_or_insert_with(new_histogram), v, i),
            Correction::Lead(l) => {
                let _ = h
                    .get_or_insert_with(new_histogram)
                    .record(v.saturating_add(l).min(MAX_MICROS));
            }
        }
    }
}

fn second(t: f64) -> i64 {
    t.floor() as i64
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

impl Entry {
    pub fn new(now: f64, window: bool, interval: bool) -> Self {
        Entry {
            num_requests: 0,
            num_none_requests: 0,
            num_failures: 0,
            total_response_time: 0.0,
            min_response_time: None,
            max_response_time: 0.0,
            total_content_length: 0,
            start_time: now,
            last_request_timestamp: None,
            reqs_per_sec: Seconds::default(),
            fails_per_sec: Seconds::default(),
            hist: Hist::default(),
            corrected: None,
            window: window.then(Window::default),
            interval: interval.then(|| (Hist::default(), None)),
            interval_listed: false,
            order_index: usize::MAX,
        }
    }

    /// Locust's `StatsEntry.reset`: zero, with the start time now. The window and the `.hlog`
    /// interval keep running (they are about time, not about the totals).
    pub fn reset(&mut self, now: f64) {
        self.num_requests = 0;
        self.num_none_requests = 0;
        self.num_failures = 0;
        self.total_response_time = 0.0;
        self.min_response_time = None;
        self.max_response_time = 0.0;
        self.total_content_length = 0;
        self.start_time = now;
        self.last_request_timestamp = None;
        self.reqs_per_sec = Seconds::default();
        self.fails_per_sec = Seconds::default();
        self.hist.reset();
        self.corrected = None;
    }

    /// Locust's `StatsEntry.log`, plus the corrected histogram as `correction` says.
    pub fn log(
        &mut self,
        now: f64,
        response_time: Option<f64>,
        content_length: i64,
        correction: Correction,
    ) {
        self.num_requests += 1;
        self.reqs_per_sec.add(second(now), 1);
        self.last_request_timestamp = Some(now);
        self.total_content_length = self.total_content_length.saturating_add(content_length);
        let Some(rt) = response_time else {
            self.num_none_requests += 1;
            return;
        };
        self.total_response_time += rt;
        self.min_response_time = Some(self.min_response_time.map_or(rt, |m| m.min(rt)));
        self.max_response_time = self.max_response_time.max(rt);
        let v = ms_to_micros(rt);
        self.hist.record(v);
        correction.record(&mut self.corrected, v);
        if let Some(w) = self.window.as_mut() {
            w.record(second(now), v, 1);
        }
        if let Some((raw, cor)) = self.interval.as_mut() {
            raw.record(v);
            correction.record(cor, v);
        }
    }

    /// Whether the `.hlog` interval has anything recorded.
    pub fn interval_has_data(&self) -> bool {
        self.interval.as_ref().is_some_and(|(raw, cor)| {
            !raw.is_empty() || cor.as_ref().is_some_and(|c| !c.is_empty())
        })
    }

    pub fn log_error(&mut self, now: f64) {
        self.num_failures += 1;
        self.fails_per_sec.add(second(now), 1);
    }

    /// The value (ms) below which `q` of the response times fall, within HDR precision and never
    /// outside the exact min and max; 0 without any.
    pub fn percentile(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        clamp(
            ms(self.hist.value_at_quantile(q.clamp(0.0, 1.0))),
            self.min_response_time,
            self.max_response_time,
        )
    }

    /// The percentile over the last `window::SECONDS` seconds; None when not tracked (the
    /// window starts on first use).
    pub fn current_percentile(&mut self, now: f64, q: f64) -> Option<f64> {
        match &self.window {
            None => {
                self.window = Some(Window::default());
                None
            }
            Some(w) => {
                let h = w.sum(second(now));
                if h.is_empty() {
                    return Some(0.0);
                }
                Some(ms(h.value_at_quantile(q.clamp(0.0, 1.0))))
            }
        }
    }

    /// Adds another entry's figures (a worker's delta, or a merge): Locust's `StatsEntry.extend`.
    pub fn extend(&mut self, other: &Entry) {
        self.extend_counters(other);
        self.hist.add(&other.hist);
        if let Some(c) = &other.corrected {
            let _ = self.corrected.get_or_insert_with(new_histogram).add(c);
        }
        if let Some(w) = self.window.as_mut() {
            if let Some(t) = other.last_request_timestamp {
                // A delta's values land in the second it was last recorded in: the window is
                // Locust's approximation of "recent" too.
                for (v, n) in other.hist.recorded() {
                    w.record(second(t), v, n);
                }
            }
        }
        if let Some((raw, cor)) = self.interval.as_mut() {
            raw.add(&other.hist);
            if let Some(c) = &other.corrected {
                let _ = cor.get_or_insert_with(new_histogram).add(c);
            }
        }
    }

    pub fn extend_counters(&mut self, other: &Entry) {
        self.last_request_timestamp =
            match (self.last_request_timestamp, other.last_request_timestamp) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        self.start_time = self.start_time.min(other.start_time);
        self.num_requests += other.num_requests;
        self.num_none_requests += other.num_none_requests;
        self.num_failures += other.num_failures;
        self.total_response_time += other.total_response_time;
        self.max_response_time = self.max_response_time.max(other.max_response_time);
        self.min_response_time = match (self.min_response_time, other.min_response_time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.total_content_length = self
            .total_content_length
            .saturating_add(other.total_content_length);
        for (s, n) in other.reqs_per_sec.items() {
            self.reqs_per_sec.add(s, n);
        }
        for (s, n) in other.fails_per_sec.items() {
            self.fails_per_sec.add(s, n);
        }
    }

    /// (value ms, count) of every recorded bucket: Locust's `response_times` dict shape, exact
    /// to HDR precision (each value records back into its own bucket).
    pub fn response_times(&self) -> Vec<(f64, u64)> {
        self.hist
            .recorded()
            .into_iter()
            .map(|(v, n)| (ms(v), n))
            .collect()
    }
}

/// Within the exact min and max: a bucket's top can pass the largest value recorded in it.
fn clamp(v: f64, min: Option<f64>, max: f64) -> f64 {
    let v = v.min(max);
    match min {
        Some(m) => v.max(m),
        None => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_as_locust_does() {
        let mut e = Entry::new(100.0, false, false);
        e.log(100.2, Some(1.5), 10, Correction::None);
        e.log(100.7, Some(0.25), 5, Correction::None);
        e.log(101.1, None, 0, Correction::None);
        e.log_error(101.1);
        assert_eq!(e.num_requests, 3);
        assert_eq!(e.num_none_requests, 1);
        assert_eq!(e.num_failures, 1);
        assert_eq!(e.total_content_length, 15);
        assert_eq!(e.min_response_time, Some(0.25));
        assert_eq!(e.max_response_time, 1.5);
        assert_eq!(e.reqs_per_sec.get(100), 2);
        assert_eq!(e.fails_per_sec.get(101), 1);
        assert_eq!(e.hist.len(), 2);
        assert_eq!(e.percentile(1.0), 1.5);
        assert_eq!(e.percentile(0.0), 0.25);
    }

    #[test]
    fn percentiles_are_exact_to_three_digits() {
        let mut e = Entry::new(0.0, false, false);
        for i in 1..=1000 {
            e.log(0.5, Some(i as f64 * 0.123), 0, Correction::None);
        }
        let p = e.percentile(0.95);
        assert!((p - 116.85).abs() / 116.85 < 0.001, "{p}");
    }

    #[test]
    fn extend_adds_counters_and_histograms() {
        let mut a = Entry::new(10.0, false, false);
        a.log(11.0, Some(2.0), 1, Correction::None);
        let mut b = Entry::new(5.0, false, false);
        b.log(12.0, Some(8.0), 2, Correction::None);
        b.log_error(12.0);
        a.extend(&b);
        assert_eq!(a.num_requests, 2);
        assert_eq!(a.num_failures, 1);
        assert_eq!(a.start_time, 5.0);
        assert_eq!(a.last_request_timestamp, Some(12.0));
        assert_eq!(a.hist.len(), 2);
        assert_eq!(a.max_response_time, 8.0);
    }
}
