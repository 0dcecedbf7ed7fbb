//! `StatsCore`: the Python-facing request statistics. Its `on_request` is the `events.request`
//! listener (a native call per event, no Python frame); `StatsEntryCore` is one entry's handle,
//! which `locust_rs.stats.StatsEntry` wraps in Locust's interface.

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::entry::{Correction, Entry};
use crate::hdr::set::summary;
use crate::hdr::{codec, ms_to_micros, new_histogram, HistogramSet};

type Handle = Arc<Mutex<Entry>>;

/// The entries with something in their `.hlog` interval since it was last taken, so that the
/// per-second work is in proportion to the names in use that second, not to every name the run
/// has seen.
type Listed = Arc<Mutex<Vec<Handle>>>;

/// Puts `h` on the list once its interval has something (`e` is `h`, locked).
fn list_interval(listed: &Listed, h: &Handle, e: &mut Entry) {
    if !e.interval_listed && e.interval_has_data() {
        e.interval_listed = true;
        listed.lock().push(h.clone());
    }
}

/// One `.hlog` series of an interval: (request type, name, corrected, base64 histogram, max ms);
/// type and name None for the aggregate.
type Series = (Option<String>, Option<String>, bool, String, f64);

/// A histogram's value in ms, for the outputs.
fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

struct Inner {
    /// Looked up on every event: FxHash, as the keys are the locustfile's own names.
    by_method: FxHashMap<String, FxHashMap<String, Handle>>,
    /// Creation order, for outputs that list entries.
    order: Vec<(String, String, Handle)>,
    total: Handle,
    intervals: bool,
}

impl Inner {
    fn new(total_window: bool, intervals: bool) -> Self {
        Inner {
            by_method: FxHashMap::default(),
            order: Vec::new(),
            total: Arc::new(Mutex::new(Entry::new(now(), total_window, intervals))),
            intervals,
        }
    }

    /// The entry for (method, name), and whether it was just made.
    fn entry(&mut self, method: &str, name: &str) -> (Handle, bool) {
        if let Some(h) = self.by_method.get(method).and_then(|m| m.get(name)) {
            return (h.clone(), false);
        }
        let h = Arc::new(Mutex::new(Entry::new(now(), false, self.intervals)));
        self.by_method
            .entry(method.to_string())
            .or_default()
            .insert(name.to_string(), h.clone());
        h.lock().order_index = self.order.len();
        self.order
            .push((method.to_string(), name.to_string(), h.clone()));
        (h, true)
    }
}

/// An arrival-rate lead wins over an interval; a negative, NaN or zero interval is none.
fn correction(interval_ms: f64, lead_ms: Option<f64>) -> Correction {
    match lead_ms {
        Some(l) => Correction::Lead(ms_to_micros(l)),
        None if interval_ms > 0.0 => Correction::Interval(ms_to_micros(interval_ms)),
        None => Correction::None,
    }
}

/// The statistics of one Locust `RequestStats`.
#[pyclass(module = "locust_rs._native", frozen)]
pub struct StatsCore {
    inner: Mutex<Inner>,
    listed: Listed,
    total_window: bool,
    /// Whether any response may carry an expected interval (`_locust_rs_interval`, ms).
    correcting: AtomicBool,
    /// Called as (name, method, StatsEntryCore) when an event makes a new entry.
    on_new_entry: Option<Py<PyAny>>,
    /// Called as (method, name, error) for every failure, after it is counted.
    on_error: Option<Py<PyAny>>,
}

/// One event's figures.
struct Sample {
    response_time: Option<f64>,
    content_length: i64,
    correction: Correction,
    failed: bool,
}

impl StatsCore {
    fn log(&self, py: Python<'_>, method: &str, name: &str, s: Sample) -> PyResult<()> {
        let t = now();
        self.apply(py, method, name, |e| {
            e.log(t, s.response_time, s.content_length, s.correction);
            if s.failed {
                e.log_error(t);
            }
        })
    }

    /// One `events.request`: logged, and counted as a failure (and reported) if `exception` is set.
    fn event(
        &self,
        py: Python<'_>,
        method: &str,
        name: &str,
        mut sample: Sample,
        exception: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let exception = exception.filter(|e| !e.is_none());
        sample.failed = exception.is_some();
        self.log(py, method, name, sample)?;
        if let Some(e) = exception {
            self.report_error(py, method, name, e)?;
        }
        Ok(())
    }

    /// Applies `change` to the entry of (method, name) and to the total, then tells
    /// `on_new_entry` about an entry it made (no lock held while Python runs).
    fn apply(
        &self,
        py: Python<'_>,
        method: &str,
        name: &str,
        change: impl Fn(&mut Entry),
    ) -> PyResult<()> {
        let (h, new, total) = {
            let mut inner = self.inner.lock();
            let (h, new) = inner.entry(method, name);
            (h, new, inner.total.clone())
        };
        {
            let mut e = h.lock();
            change(&mut e);
            list_interval(&self.listed, &h, &mut e);
        }
        change(&mut total.lock());
        if new {
            if let Some(cb) = &self.on_new_entry {
                cb.call1(py, (name, method, self.handle(h)))?;
            }
        }
        Ok(())
    }

    /// How a response's time is corrected: an arrival-rate lead (`_locust_rs_lead`, ms) or a
    /// paced user's expected interval (`_locust_rs_interval`, ms), as the sessions tag them.
    fn correction_of(&self, response: Option<&Bound<'_, PyAny>>) -> Correction {
        let Some(r) = response.filter(|_| self.correcting.load(Ordering::Relaxed)) else {
            return Correction::None;
        };
        let ms = |attr| r.getattr(attr).ok().and_then(|v| v.extract::<f64>().ok());
        if let Some(lead) = ms(intern!(r.py(), "_locust_rs_lead")) {
            return Correction::Lead(ms_to_micros(lead));
        }
        correction(
            ms(intern!(r.py(), "_locust_rs_interval")).unwrap_or(0.0),
            None,
        )
    }

    fn handle(&self, h: Handle) -> StatsEntryCore {
        StatsEntryCore {
            h,
            listed: Some(self.listed.clone()),
        }
    }

    /// Each entry in creation order, one at a time with no lock held between them.
    fn each_entry(&self, mut f: impl FnMut(&str, &str, &Entry) -> PyResult<()>) -> PyResult<()> {
        let order: Vec<(String, String, Handle)> = self.inner.lock().order.clone();
        for (m, n, h) in &order {
            f(m, n, &h.lock())?;
        }
        Ok(())
    }

    /// The aggregate of every entry: raw, and (if any entry has a corrected histogram) each
    /// entry's corrected histogram, or its raw one where it has none, as `HistogramSet` adds them.
    fn aggregate(&self) -> PyResult<(Histogram<u64>, Option<Histogram<u64>>)> {
        let mut raw = new_histogram();
        let mut mixed = new_histogram();
        let mut any_corrected = false;
        self.each_entry(|_, _, e| {
            let r = e.hist.histogram();
            let _ = raw.add(r.as_ref());
            any_corrected |= e.corrected.is_some();
            let _ = mixed.add(e.corrected.as_ref().unwrap_or(r.as_ref()));
            Ok(())
        })?;
        Ok((raw, any_corrected.then_some(mixed)))
    }

    fn report_error(
        &self,
        py: Python<'_>,
        method: &str,
        name: &str,
        error: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if let Some(cb) = &self.on_error {
            cb.call1(py, (method, name, error))?;
        }
        Ok(())
    }
}

#[pymethods]
impl StatsCore {
    #[new]
    #[pyo3(signature = (use_response_times_cache = true, on_new_entry = None, on_error = None))]
    fn py_new(
        use_response_times_cache: bool,
        on_new_entry: Option<Py<PyAny>>,
        on_error: Option<Py<PyAny>>,
    ) -> Self {
        StatsCore {
            inner: Mutex::new(Inner::new(use_response_times_cache, false)),
            listed: Listed::default(),
            total_window: use_response_times_cache,
            correcting: AtomicBool::new(false),
            on_new_entry,
            on_error,
        }
    }

    /// The `events.request` listener: records the event once (the entry and the total, the
    /// failure if `exception` is set). Takes Locust's arguments by name.
    #[pyo3(signature = (
        request_type, name, response_time, response_length, exception = None, context = None,
        response = None, start_time = None, url = None, **_kwargs
    ))]
    #[allow(clippy::too_many_arguments)]
    fn on_request(
        &self,
        py: Python<'_>,
        request_type: &str,
        name: &str,
        response_time: Option<f64>,
        response_length: Option<i64>,
        exception: Option<&Bound<'_, PyAny>>,
        context: Option<&Bound<'_, PyAny>>,
        response: Option<&Bound<'_, PyAny>>,
        start_time: Option<&Bound<'_, PyAny>>,
        url: Option<&Bound<'_, PyAny>>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let _ = (context, start_time, url);
        let sample = Sample {
            response_time,
            content_length: response_length.unwrap_or(0),
            correction: self.correction_of(response),
            failed: false,
        };
        self.event(py, request_type, name, sample, exception)
    }

    /// What `on_request` does, for a locust-rs session that knows it is the only listener: positional
    /// arguments and the correction given directly (a paced user's interval, or an arrival-rate
    /// iteration's lead), so no keyword dict is built or parsed.
    #[pyo3(signature = (request_type, name, response_time, response_length, exception, interval_ms, lead_ms = None))]
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        py: Python<'_>,
        request_type: &str,
        name: &str,
        response_time: Option<f64>,
        response_length: i64,
        exception: Option<&Bound<'_, PyAny>>,
        interval_ms: f64,
        lead_ms: Option<f64>,
    ) -> PyResult<()> {
        let correction = if self.correcting.load(Ordering::Relaxed) {
            correction(interval_ms, lead_ms)
        } else {
            Correction::None
        };
        let sample = Sample {
            response_time,
            content_length: response_length,
            correction,
            failed: false,
        };
        self.event(py, request_type, name, sample, exception)
    }

    /// Locust's `RequestStats.log_request`.
    fn log_request(
        &self,
        py: Python<'_>,
        method: &str,
        name: &str,
        response_time: Option<f64>,
        content_length: Option<i64>,
    ) -> PyResult<()> {
        self.log(
            py,
            method,
            name,
            Sample {
                response_time,
                content_length: content_length.unwrap_or(0),
                correction: Correction::None,
                failed: false,
            },
        )
    }

    /// Locust's `RequestStats.log_error`: counts the failure, then reports it to `on_error`.
    fn log_error(
        &self,
        py: Python<'_>,
        method: &str,
        name: &str,
        error: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let t = now();
        self.apply(py, method, name, |e| e.log_error(t))?;
        self.report_error(py, method, name, error)
    }

    /// Responses may carry an expected interval from now on (coordinated-omission correction).
    #[getter]
    fn get_correcting(&self) -> bool {
        self.correcting.load(Ordering::Relaxed)
    }

    #[setter]
    fn set_correcting(&self, on: bool) {
        self.correcting.store(on, Ordering::Relaxed);
    }

    /// The entry for (name, method), made if missing (without calling `on_new_entry`).
    fn entry(&self, name: &str, method: &str) -> StatsEntryCore {
        let h = self.inner.lock().entry(method, name).0;
        self.handle(h)
    }

    #[getter]
    fn total(&self) -> StatsEntryCore {
        StatsEntryCore {
            h: self.inner.lock().total.clone(),
            listed: None,
        }
    }

    /// Locust's `reset_all`: every entry and the total zeroed, kept.
    fn reset_all(&self) {
        let t = now();
        let inner = self.inner.lock();
        inner.total.lock().reset(t);
        for (_, _, h) in &inner.order {
            h.lock().reset(t);
        }
    }

    /// Locust's `clear_all`: every entry dropped, a new total.
    fn clear_all(&self) {
        let mut inner = self.inner.lock();
        let intervals = inner.intervals;
        *inner = Inner::new(self.total_window, intervals);
        self.listed.lock().clear();
    }

    /// Every entry's cumulative histograms (raw and corrected), for the HDR outputs.
    fn histograms(&self) -> HistogramSet {
        let mut out = HistogramSet::default();
        for (m, n, h) in &self.inner.lock().order {
            let e = h.lock();
            if !e.hist.is_empty() || e.corrected.is_some() {
                out.add(m, n, &e.hist.histogram(), e.corrected.as_ref());
            }
        }
        out
    }

    /// Starts keeping per-interval histograms (the `.hlog`), for entries made from now on too.
    fn track_intervals(&self) {
        let mut inner = self.inner.lock();
        inner.intervals = true;
        for (_, _, h) in &inner.order {
            let mut e = h.lock();
            if e.interval.is_none() {
                e.interval = Some((Default::default(), None));
            }
        }
    }

    /// How many entries have something for the next `.hlog` interval: what the next
    /// `take_interval_log` visits, whatever the number of names the run has seen.
    #[getter]
    fn pending_intervals(&self) -> usize {
        self.listed.lock().len()
    }

    /// What was recorded since the last call (the next `.hlog` interval), encoded: one
    /// `(request_type, name, corrected, base64 V2-deflate histogram, max ms)` per series, the
    /// aggregate first (type and name None: raw, then corrected if any entry has a corrected
    /// side), then each entry that recorded something (raw, then corrected), in the order they
    /// first did. Only those entries are visited, and each is encoded and let go in turn.
    fn take_interval_log(&self) -> PyResult<Vec<Series>> {
        let listed = std::mem::take(&mut *self.listed.lock());
        // Each listed entry's key, from its place in `order`.
        let keys: Vec<Option<(String, String)>> = {
            let inner = self.inner.lock();
            listed
                .iter()
                .map(|h| {
                    let at = h.lock().order_index;
                    inner
                        .order
                        .get(at)
                        .filter(|(_, _, o)| Arc::ptr_eq(o, h))
                        .map(|(m, n, _)| (m.clone(), n.clone()))
                })
                .collect()
        };
        let encode =
            |h: &Histogram<u64>| codec::encode_b64(h).map_err(crate::errors::python::to_pyerr);
        let (mut raw_all, mut mixed_all, mut any_corrected) =
            (new_histogram(), new_histogram(), false);
        let mut series = Vec::with_capacity(listed.len() + 2);
        for (h, key) in listed.iter().zip(&keys) {
            let mut e = h.lock();
            e.interval_listed = false;
            // An entry that clear_all dropped is not the run's any more.
            let Some((m, n)) = key else {
                continue;
            };
            let Some((raw, cor)) = e.interval.as_mut() else {
                continue;
            };
            // An encoding that failed (it cannot, short of memory) leaves out one series, not the
            // rest of the interval: every listed entry is still taken and reset.
            if let Some(b64) = (!raw.is_empty()).then(|| raw.encode_b64().ok()).flatten() {
                series.push((Some(m.clone()), Some(n.clone()), false, b64, ms(raw.max())));
            }
            raw.add_to(&mut raw_all);
            if let Some((c, b64)) = cor
                .as_ref()
                .filter(|c| !c.is_empty())
                .and_then(|c| codec::encode_b64(c).ok().map(|b| (c, b)))
            {
                series.push((Some(m.clone()), Some(n.clone()), true, b64, ms(c.max())));
            }
            any_corrected |= cor.is_some();
            match cor.as_ref() {
                Some(c) => {
                    let _ = mixed_all.add(c);
                }
                None => raw.add_to(&mut mixed_all),
            }
            raw.reset();
            if let Some(c) = cor.as_mut() {
                c.reset();
            }
        }
        if series.is_empty() {
            return Ok(series);
        }
        let mut out = vec![(None, None, false, encode(&raw_all)?, ms(raw_all.max()))];
        if any_corrected {
            out.push((None, None, true, encode(&mixed_all)?, ms(mixed_all.max())));
        }
        out.extend(series);
        Ok(out)
    }

    /// Each entry's summary, then the aggregate's, as `(request_type, name, raw, corrected)`
    /// (type and name None for the aggregate; `corrected` None without a corrected side): the
    /// dicts of `HistogramSet.summary`, for the HDR outputs. Entries without a response time are
    /// left out. Each entry is summarised and let go in turn, so the end of a run with many names
    /// holds no copy of every histogram.
    #[allow(clippy::type_complexity)]
    fn summaries<'py>(
        &self,
        py: Python<'py>,
        quantiles: Vec<f64>,
    ) -> PyResult<
        Vec<(
            Option<String>,
            Option<String>,
            Bound<'py, PyDict>,
            Option<Bound<'py, PyDict>>,
        )>,
    > {
        if quantiles.iter().any(|q| !(0.0..=1.0).contains(q)) {
            return Err(PyValueError::new_err("quantiles must be within 0..1"));
        }
        let mut out = Vec::new();
        self.each_entry(|m, n, e| {
            if !e.hist.is_empty() || e.corrected.is_some() {
                let raw = summary(py, &e.hist.histogram(), &quantiles)?;
                let cor = e
                    .corrected
                    .as_ref()
                    .map(|c| summary(py, c, &quantiles))
                    .transpose()?;
                out.push((Some(m.to_string()), Some(n.to_string()), raw, cor));
            }
            Ok(())
        })?;
        let (raw, mixed) = self.aggregate()?;
        let cor = mixed.map(|c| summary(py, &c, &quantiles)).transpose()?;
        out.push((None, None, summary(py, &raw, &quantiles)?, cor));
        Ok(out)
    }

    /// The percentile distribution of one entry (or, with type and name None, the aggregate)
    /// for charts, as `HistogramSet.distribution`: [(quantile, value ms)].
    #[pyo3(signature = (request_type = None, name = None, corrected = false, ticks = 5))]
    fn distribution(
        &self,
        request_type: Option<&str>,
        name: Option<&str>,
        corrected: bool,
        ticks: u32,
    ) -> PyResult<Vec<(f64, f64)>> {
        let mut one = HistogramSet::default();
        match (request_type, name) {
            (Some(t), Some(n)) => {
                let h = self
                    .inner
                    .lock()
                    .by_method
                    .get(t)
                    .and_then(|m| m.get(n))
                    .cloned();
                if let Some(h) = h {
                    let e = h.lock();
                    one.add("", "", &e.hist.histogram(), e.corrected.as_ref());
                }
            }
            _ => {
                let (raw, mixed) = self.aggregate()?;
                one.add("", "", &raw, mixed.as_ref());
            }
        }
        one.distribution(Some(""), Some(""), corrected, ticks)
    }

    fn __repr__(&self) -> String {
        let inner = self.inner.lock();
        let n = inner.total.lock().num_requests;
        format!("StatsCore({} entries, {} requests)", inner.order.len(), n)
    }
}

/// One entry's figures, read and changed through its handle.
#[pyclass(module = "locust_rs._native", frozen)]
#[derive(Clone)]
pub struct StatsEntryCore {
    h: Handle,
    /// The core's list of entries with something in their `.hlog` interval (None: the total).
    listed: Option<Listed>,
}

impl StatsEntryCore {
    /// Lists the entry if a change put something in its interval.
    fn changed(&self, e: &mut Entry) {
        if let Some(listed) = &self.listed {
            list_interval(listed, &self.h, e);
        }
    }
}

#[pymethods]
impl StatsEntryCore {
    #[getter]
    fn num_requests(&self) -> u64 {
        self.h.lock().num_requests
    }

    #[getter]
    fn num_none_requests(&self) -> u64 {
        self.h.lock().num_none_requests
    }

    #[getter]
    fn num_failures(&self) -> u64 {
        self.h.lock().num_failures
    }

    #[getter]
    fn total_response_time(&self) -> f64 {
        self.h.lock().total_response_time
    }

    #[getter]
    fn min_response_time(&self) -> Option<f64> {
        self.h.lock().min_response_time
    }

    #[getter]
    fn max_response_time(&self) -> f64 {
        self.h.lock().max_response_time
    }

    #[getter]
    fn total_content_length(&self) -> i64 {
        self.h.lock().total_content_length
    }

    #[getter]
    fn get_start_time(&self) -> f64 {
        self.h.lock().start_time
    }

    #[setter]
    fn set_start_time(&self, t: f64) {
        self.h.lock().start_time = t;
    }

    #[getter]
    fn get_last_request_timestamp(&self) -> Option<f64> {
        self.h.lock().last_request_timestamp
    }

    #[setter]
    fn set_last_request_timestamp(&self, t: Option<f64>) {
        self.h.lock().last_request_timestamp = t;
    }

    /// Requests per second for the last seconds kept: {second: count}.
    fn reqs_per_sec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (s, n) in self.h.lock().reqs_per_sec.items() {
            d.set_item(s, n)?;
        }
        Ok(d)
    }

    fn fails_per_sec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (s, n) in self.h.lock().fails_per_sec.items() {
            d.set_item(s, n)?;
        }
        Ok(d)
    }

    /// [(value ms, count)] of the response-time histogram, lowest first.
    fn response_times(&self) -> Vec<(f64, u64)> {
        self.h.lock().response_times()
    }

    /// The same for the corrected histogram; None when nothing was corrected.
    fn corrected_times(&self) -> Option<Vec<(f64, u64)>> {
        let e = self.h.lock();
        e.corrected.as_ref().map(|c| {
            c.iter_recorded()
                .map(|v| (v.value_iterated_to() as f64 / 1000.0, v.count_at_value()))
                .collect()
        })
    }

    /// The response time (ms) at `q` (0..1), exact to 3 significant digits.
    fn percentile(&self, q: f64) -> f64 {
        self.h.lock().percentile(q)
    }

    /// The percentile over the last 10 seconds; None until the window has started (its first
    /// call starts it).
    fn current_percentile(&self, q: f64) -> Option<f64> {
        self.h.lock().current_percentile(now(), q)
    }

    fn reset(&self) {
        self.h.lock().reset(now());
    }

    fn log(&self, response_time: Option<f64>, content_length: Option<i64>) {
        let mut e = self.h.lock();
        e.log(
            now(),
            response_time,
            content_length.unwrap_or(0),
            Correction::None,
        );
        self.changed(&mut e);
    }

    fn log_error(&self) {
        self.h.lock().log_error(now());
    }

    /// Adds another entry's figures.
    fn extend(&self, other: &StatsEntryCore) {
        if Arc::ptr_eq(&self.h, &other.h) {
            return;
        }
        let o = other.h.lock();
        let mut e = self.h.lock();
        e.extend(&o);
        self.changed(&mut e);
    }

    /// Adds figures in Locust's serialized shape (a worker's report): counters, the
    /// `response_times` as [(ms, count)], per-second counts, and optionally corrected times.
    #[pyo3(signature = (
        start_time, last_request_timestamp, num_requests, num_none_requests, num_failures,
        total_response_time, min_response_time, max_response_time, total_content_length,
        response_times, reqs_per_sec, fails_per_sec, corrected_times = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn extend_serialized(
        &self,
        start_time: f64,
        last_request_timestamp: Option<f64>,
        num_requests: u64,
        num_none_requests: u64,
        num_failures: u64,
        total_response_time: f64,
        min_response_time: Option<f64>,
        max_response_time: f64,
        total_content_length: i64,
        response_times: Vec<(f64, u64)>,
        reqs_per_sec: Vec<(i64, u64)>,
        fails_per_sec: Vec<(i64, u64)>,
        corrected_times: Option<Vec<(f64, u64)>>,
    ) {
        let mut o = Entry::new(start_time, false, false);
        o.last_request_timestamp = last_request_timestamp;
        o.num_requests = num_requests;
        o.num_none_requests = num_none_requests;
        o.num_failures = num_failures;
        o.total_response_time = total_response_time;
        o.min_response_time = min_response_time;
        o.max_response_time = max_response_time;
        o.total_content_length = total_content_length;
        for (v, n) in response_times {
            o.hist.record_n(ms_to_micros(v), n);
        }
        if let Some(c) = corrected_times {
            let mut h = crate::hdr::new_histogram();
            for (v, n) in c {
                let _ = h.record_n(ms_to_micros(v), n);
            }
            o.corrected = Some(h);
        }
        for (s, n) in reqs_per_sec {
            o.reqs_per_sec.add(s, n);
        }
        for (s, n) in fails_per_sec {
            o.fails_per_sec.add(s, n);
        }
        let mut e = self.h.lock();
        e.extend(&o);
        self.changed(&mut e);
    }

    fn __repr__(&self) -> String {
        let e = self.h.lock();
        format!(
            "StatsEntryCore({} requests, {} failures)",
            e.num_requests, e.num_failures
        )
    }
}
