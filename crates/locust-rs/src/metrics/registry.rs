//! The live histograms that request tasks record into.
//!
//! A `MetricKey` names one (request type, name) entry and carries the user's expected interval
//! for coordinated-omission correction. Python interns one per (type, name, interval) and passes
//! it with each request; the task records when the request completes. Each entry has its own
//! uncontended lock (one tokio worker by default; with several, two workers collide only on the
//! same key at the same instant) and recording never allocates once a histogram has grown to
//! its range. Readers `drain` the entries into a `HistogramSet` (add, then reset in place), the
//! HdrHistogram "interval recorder" pattern: the hot path touches one histogram per value.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use pyo3::prelude::*;

use super::{ms_to_micros, new_histogram, HistogramSet, MAX_MICROS};

pub(crate) struct Pair {
    pub raw: Histogram<u64>,
    /// Only for keys recorded with an expected interval.
    pub corrected: Option<Histogram<u64>>,
}

pub struct Entry {
    pub request_type: String,
    pub name: String,
    hist: Mutex<Pair>,
}

impl Entry {
    fn new(request_type: &str, name: &str) -> Self {
        Entry {
            request_type: request_type.to_string(),
            name: name.to_string(),
            hist: Mutex::new(Pair {
                raw: new_histogram(),
                corrected: None,
            }),
        }
    }

    /// Records one value in microseconds; with `interval > 0` also into the corrected
    /// histogram, filling in the samples a stalled user could not send (HdrHistogram's
    /// `record_correct`).
    pub fn record(&self, micros: u64, interval: u64) {
        let v = micros.min(MAX_MICROS);
        let mut p = self.hist.lock();
        let _ = p.raw.record(v);
        if interval > 0 {
            let c = p.corrected.get_or_insert_with(new_histogram);
            // Auto-resizing histograms only fail to record when memory runs out; a lost
            // correction then is better than a failed request.
            let _ = c.record_correct(v, interval);
        }
    }
}

type Interned = HashMap<(String, String), Arc<Entry>>;

struct Registry {
    entries: Mutex<Interned>,
}

static REGISTRY: OnceLock<Mutex<Arc<Registry>>> = OnceLock::new();

fn registry() -> Arc<Registry> {
    REGISTRY
        .get_or_init(|| {
            Mutex::new(Arc::new(Registry {
                entries: Mutex::new(HashMap::new()),
            }))
        })
        .lock()
        .clone()
}

fn entry(request_type: &str, name: &str) -> Arc<Entry> {
    let reg = registry();
    let mut map = reg.entries.lock();
    map.entry((request_type.to_string(), name.to_string()))
        .or_insert_with(|| Arc::new(Entry::new(request_type, name)))
        .clone()
}

/// What a request task carries to record its response time on completion (an `Arc` clone, no
/// allocation). This is the Rust API for every client: build it from the `MetricKey` passed in
/// from Python, then call `record_ms`/`record_micros` once when the request completes (success
/// or failure alike, as Locust counts both in its response times).
#[derive(Clone)]
pub struct Recording {
    entry: Arc<Entry>,
    interval: u64,
}

impl Recording {
    pub fn record_micros(&self, micros: u64) {
        self.entry.record(micros, self.interval);
    }

    pub fn record_ms(&self, ms: f64) {
        self.record_micros(ms_to_micros(ms));
    }

    /// Records with an explicit expected interval (µs), overriding the key's.
    pub fn record_corrected(&self, micros: u64, expected_interval: u64) {
        self.entry.record(micros, expected_interval);
    }
}

/// An interned (request type, name) entry plus the user's expected interval.
#[pyclass(module = "locust_rs._native", frozen)]
pub struct MetricKey {
    rec: Recording,
}

impl MetricKey {
    pub fn recording(&self) -> Recording {
        self.rec.clone()
    }
}

#[pymethods]
impl MetricKey {
    #[getter]
    fn request_type(&self) -> &str {
        &self.rec.entry.request_type
    }

    #[getter]
    fn name(&self) -> &str {
        &self.rec.entry.name
    }

    /// The expected interval in milliseconds (0: no correction).
    #[getter]
    fn expected_interval(&self) -> f64 {
        self.rec.interval as f64 / 1000.0
    }

    /// Records one response time in milliseconds, for events that did not come through a Rust
    /// client (custom `events.request.fire`, Locust's own users).
    fn record(&self, response_time: f64) {
        self.rec.record_ms(response_time);
    }

    fn __repr__(&self) -> String {
        format!(
            "MetricKey({:?}, {:?}, expected_interval={})",
            self.rec.entry.request_type,
            self.rec.entry.name,
            self.expected_interval()
        )
    }
}

/// The key for (request_type, name); `expected_interval` in milliseconds enables the
/// coordinated-omission-corrected histogram for values recorded through this key.
#[pyfunction]
#[pyo3(signature = (request_type, name, expected_interval = 0.0))]
pub fn metric_key(request_type: &str, name: &str, expected_interval: f64) -> MetricKey {
    MetricKey {
        rec: Recording {
            entry: entry(request_type, name),
            interval: ms_to_micros(expected_interval),
        },
    }
}

/// Moves everything recorded since the last drain into a new `HistogramSet`.
#[pyfunction]
#[pyo3(name = "metrics_drain")]
pub fn drain() -> HistogramSet {
    let mut out = HistogramSet::default();
    let entries: Vec<Arc<Entry>> = registry().entries.lock().values().cloned().collect();
    for e in entries {
        let mut p = e.hist.lock();
        if p.raw.is_empty() && p.corrected.as_ref().is_none_or(|c| c.is_empty()) {
            continue;
        }
        out.add(&e.request_type, &e.name, &p.raw, p.corrected.as_ref());
        p.raw.reset();
        if let Some(c) = p.corrected.as_mut() {
            c.reset();
        }
    }
    out
}

/// Discards everything recorded and not yet drained (Locust's stats reset).
#[pyfunction]
#[pyo3(name = "metrics_reset")]
pub fn reset() {
    let entries: Vec<Arc<Entry>> = registry().entries.lock().values().cloned().collect();
    for e in entries {
        let mut p = e.hist.lock();
        p.raw.reset();
        if let Some(c) = p.corrected.as_mut() {
            c.reset();
        }
    }
}

/// Starts an empty registry, for a fork child: the parent's entries may hold locks taken by
/// threads that do not exist here, so they are left alone, not touched. Keys made before the
/// fork keep recording into the old entries, which nothing drains; Python drops its cache.
#[pyfunction]
#[pyo3(name = "metrics_forget")]
pub fn forget() {
    if let Some(slot) = REGISTRY.get() {
        *slot.lock() = Arc::new(Registry {
            entries: Mutex::new(HashMap::new()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // drain() takes every key, so tests that drain must not interleave.
    static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

    #[test]
    fn recording_lands_in_the_drained_set_and_resets() {
        let _g = SERIAL.lock();
        let k = metric_key("GET", "/registry-test", 0.0);
        for v in [1.0, 2.0, 3.0] {
            k.rec.record_ms(v);
        }
        let set = drain();
        let s = set.get("GET", "/registry-test").map(|(r, _)| r.len());
        assert_eq!(s, Some(3));
        let again = drain();
        assert!(again.get("GET", "/registry-test").is_none());
    }

    #[test]
    fn corrected_fills_in_missed_samples() {
        let _g = SERIAL.lock();
        let k = metric_key("GET", "/co-test", 10.0);
        k.rec.record_ms(100.0);
        let set = drain();
        let (raw, corrected) = set.get("GET", "/co-test").unwrap();
        assert_eq!(raw.len(), 1);
        // 100 ms at a 10 ms interval: 100, 90, ..., 10.
        assert_eq!(corrected.map(|c| c.len()), Some(10));
    }

    #[test]
    fn concurrent_recorders_lose_nothing() {
        let _g = SERIAL.lock();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    let k = metric_key("GET", "/threads", 0.0);
                    for i in 0..10_000u64 {
                        k.rec.record_micros(1 + (i * 7 + t) % 50_000);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let set = drain();
        assert_eq!(
            set.get("GET", "/threads").map(|(r, _)| r.len()),
            Some(40_000)
        );
    }

    #[test]
    fn values_are_clamped_to_one_hour() {
        let _g = SERIAL.lock();
        let k = metric_key("GET", "/clamp", 0.0);
        k.rec.record_ms(1e12);
        k.rec.record_ms(f64::NAN);
        k.rec.record_ms(-5.0);
        let set = drain();
        let (raw, _) = set.get("GET", "/clamp").unwrap();
        assert_eq!(raw.len(), 3);
        assert!(raw.max() <= raw.highest_equivalent(MAX_MICROS));
        assert_eq!(raw.min(), 0);
    }
}
