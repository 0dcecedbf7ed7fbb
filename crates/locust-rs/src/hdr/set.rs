//! `HistogramSet`: histograms keyed by (request type, name), each a raw one and, for paced
//! users, a coordinated-omission-corrected one. Python holds these: the cumulative figures of
//! a run, the interval written to the `.hlog`, the delta a worker ships to the master.

use std::borrow::Cow;
use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::codec::{self, WireEntry};

/// `distribution`'s most ticks per half distance to 100 %: HdrHistogram's plots use 5; a million
/// would build millions of points (and 2**24 ran out of memory), so more is a ValueError.
const MAX_TICKS: u32 = 1_000;
use super::new_histogram;

type Key = (String, String);

#[derive(Clone)]
pub struct Pair {
    pub raw: Histogram<u64>,
    pub corrected: Option<Histogram<u64>>,
}

impl Pair {
    fn empty() -> Self {
        Pair {
            raw: new_histogram(),
            corrected: None,
        }
    }

    fn add(&mut self, raw: &Histogram<u64>, corrected: Option<&Histogram<u64>>) {
        // Auto-resizing targets accept any source range; an error would mean out of memory.
        let _ = self.raw.add(raw);
        if let Some(c) = corrected {
            let _ = self.corrected.get_or_insert_with(new_histogram).add(c);
        }
    }
}

#[pyclass(module = "locust_rs._native")]
#[derive(Default, Clone)]
pub struct HistogramSet {
    map: BTreeMap<Key, Pair>,
}

/// The quantiles of the CSV and reports.
pub const REPORT_QUANTILES: [f64; 8] = [0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0];

impl HistogramSet {
    pub fn add(
        &mut self,
        request_type: &str,
        name: &str,
        raw: &Histogram<u64>,
        corrected: Option<&Histogram<u64>>,
    ) {
        let key = (request_type.to_string(), name.to_string());
        self.map
            .entry(key)
            .or_insert_with(Pair::empty)
            .add(raw, corrected);
    }

    pub fn get(
        &self,
        request_type: &str,
        name: &str,
    ) -> Option<(&Histogram<u64>, Option<&Histogram<u64>>)> {
        self.map
            .get(&(request_type.to_string(), name.to_string()))
            .map(|p| (&p.raw, p.corrected.as_ref()))
    }

    /// The aggregate of every key. Its corrected side sums each key's corrected histogram, or
    /// its raw one where the key has no expected interval, so both sides count every request
    /// type and name.
    pub fn aggregate(&self) -> Pair {
        let mut out = Pair::empty();
        let any_corrected = self.map.values().any(|p| p.corrected.is_some());
        for p in self.map.values() {
            let _ = out.raw.add(&p.raw);
            if any_corrected {
                let c = out.corrected.get_or_insert_with(new_histogram);
                let _ = c.add(p.corrected.as_ref().unwrap_or(&p.raw));
            }
        }
        out
    }

    /// One side (raw or corrected) of a key's pair, borrowed; the aggregate (key None) is
    /// built on demand. None when the key, or its corrected side, is absent.
    fn side(&self, key: Option<(&str, &str)>, corrected: bool) -> Option<Cow<'_, Histogram<u64>>> {
        match key {
            None => {
                let agg = self.aggregate();
                if corrected {
                    agg.corrected.map(Cow::Owned)
                } else {
                    Some(Cow::Owned(agg.raw))
                }
            }
            Some(k) => {
                let (raw, cor) = self.get(k.0, k.1)?;
                if corrected {
                    cor.map(Cow::Borrowed)
                } else {
                    Some(Cow::Borrowed(raw))
                }
            }
        }
    }
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

pub(crate) fn summary<'py>(
    py: Python<'py>,
    h: &Histogram<u64>,
    quantiles: &[f64],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let empty = h.is_empty();
    d.set_item("count", h.len())?;
    d.set_item("min", if empty { 0.0 } else { ms(h.min()) })?;
    d.set_item("max", if empty { 0.0 } else { ms(h.max()) })?;
    d.set_item("mean", if empty { 0.0 } else { h.mean() / 1000.0 })?;
    d.set_item("stdev", if empty { 0.0 } else { h.stdev() / 1000.0 })?;
    let pct: Vec<(f64, f64)> = quantiles
        .iter()
        .map(|q| {
            (
                *q,
                if empty {
                    0.0
                } else {
                    ms(h.value_at_quantile(*q))
                },
            )
        })
        .collect();
    d.set_item("percentiles", pct)?;
    Ok(d)
}

fn key_of<'a>(request_type: Option<&'a str>, name: Option<&'a str>) -> Option<(&'a str, &'a str)> {
    match (request_type, name) {
        (Some(t), Some(n)) => Some((t, n)),
        _ => None,
    }
}

#[pymethods]
impl HistogramSet {
    #[new]
    fn py_new() -> Self {
        HistogramSet::default()
    }

    /// Adds every histogram of `other` into this set (HdrHistogram addition: the result equals
    /// one histogram of all the samples).
    fn merge(&mut self, other: PyRef<'_, HistogramSet>) {
        for ((t, n), p) in &other.map {
            self.add(t, n, &p.raw, p.corrected.as_ref());
        }
    }

    fn clear(&mut self) {
        self.map.clear();
    }

    fn copy(&self) -> HistogramSet {
        self.clone()
    }

    fn __len__(&self) -> usize {
        self.map.len()
    }

    /// (request_type, name) of every key, sorted.
    fn keys(&self) -> Vec<(String, String)> {
        self.map.keys().cloned().collect()
    }

    fn has_corrected(&self, request_type: &str, name: &str) -> bool {
        self.get(request_type, name)
            .is_some_and(|(_, c)| c.is_some())
    }

    /// Number of recorded values, for one key or (without arguments) all of them.
    #[pyo3(signature = (request_type = None, name = None))]
    fn count(&self, request_type: Option<&str>, name: Option<&str>) -> u64 {
        match key_of(request_type, name) {
            None => self.map.values().map(|p| p.raw.len()).sum(),
            k => self.side(k, false).map_or(0, |h| h.len()),
        }
    }

    /// count, min, max, mean, stdev and `percentiles` [(q, value)] in milliseconds for one key,
    /// or the aggregate when request_type/name are None. `corrected=True` reads the corrected
    /// histogram; None when there is none.
    #[pyo3(signature = (request_type = None, name = None, corrected = false, quantiles = None))]
    fn summary<'py>(
        &self,
        py: Python<'py>,
        request_type: Option<&str>,
        name: Option<&str>,
        corrected: bool,
        quantiles: Option<Vec<f64>>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let qs = quantiles.unwrap_or_else(|| REPORT_QUANTILES.to_vec());
        if qs.iter().any(|q| !(0.0..=1.0).contains(q)) {
            return Err(PyValueError::new_err("quantiles must be within 0..1"));
        }
        let h = self.side(key_of(request_type, name), corrected);
        h.map(|h| summary(py, &h, &qs)).transpose()
    }

    /// The value (ms) at quantile `q` (0..1); None if the key (or its corrected side) is absent.
    #[pyo3(signature = (q, request_type = None, name = None, corrected = false))]
    fn value_at_quantile(
        &self,
        q: f64,
        request_type: Option<&str>,
        name: Option<&str>,
        corrected: bool,
    ) -> PyResult<Option<f64>> {
        if !(0.0..=1.0).contains(&q) {
            return Err(PyValueError::new_err("q must be within 0..1"));
        }
        let h = self.side(key_of(request_type, name), corrected);
        Ok(h.filter(|h| !h.is_empty())
            .map(|h| ms(h.value_at_quantile(q))))
    }

    /// The percentile distribution for charts: [(quantile, value_ms)] with `ticks` steps per
    /// halving of the remaining distance to 100 % (HdrHistogram's percentile iterator).
    #[pyo3(signature = (request_type = None, name = None, corrected = false, ticks = 5))]
    pub(crate) fn distribution(
        &self,
        request_type: Option<&str>,
        name: Option<&str>,
        corrected: bool,
        ticks: u32,
    ) -> PyResult<Vec<(f64, f64)>> {
        let h = self.side(key_of(request_type, name), corrected);
        if ticks > MAX_TICKS {
            return Err(PyValueError::new_err(format!(
                "ticks must be at most {MAX_TICKS} (ticks per half distance to 100 %), not {ticks}"
            )));
        }
        Ok(match h {
            Some(h) if !h.is_empty() => h
                .iter_quantiles(ticks.max(1))
                .map(|v| (v.quantile_iterated_to(), ms(v.value_iterated_to())))
                .collect(),
            _ => Vec::new(),
        })
    }

    /// Every bucket with a count, lowest first: (value in ms, count), the value being the
    /// bucket's highest equivalent, as `value_at_quantile` reports it. What a comparison needs
    /// to read the value at any rank without asking again per rank. Empty when absent.
    #[pyo3(signature = (request_type = None, name = None, corrected = false))]
    fn buckets(
        &self,
        request_type: Option<&str>,
        name: Option<&str>,
        corrected: bool,
    ) -> Vec<(f64, u64)> {
        self.side(key_of(request_type, name), corrected)
            .map(|h| {
                h.iter_recorded()
                    .map(|v| (ms(v.value_iterated_to()), v.count_at_value()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Base64 V2-deflate of one histogram (the `.hlog` payload) and its max in ms; None when
    /// absent. request_type/name None: the aggregate.
    #[pyo3(signature = (request_type = None, name = None, corrected = false))]
    fn encode_histogram(
        &self,
        request_type: Option<&str>,
        name: Option<&str>,
        corrected: bool,
    ) -> PyResult<Option<(String, f64)>> {
        let h = self.side(key_of(request_type, name), corrected);
        h.map(|h| {
            Ok((
                codec::encode_b64(&h).map_err(crate::errors::python::to_pyerr)?,
                ms(h.max()),
            ))
        })
        .transpose()
    }

    /// Counts of a base64 V2(-deflate) histogram, as read back from an `.hlog`: adds it under
    /// the key.
    #[pyo3(signature = (request_type, name, b64, corrected = false))]
    fn add_encoded(
        &mut self,
        request_type: &str,
        name: &str,
        b64: &str,
        corrected: bool,
    ) -> PyResult<()> {
        let h = codec::decode_b64(b64).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let empty = new_histogram();
        if corrected {
            self.add(request_type, name, &empty, Some(&h));
        } else {
            self.add(request_type, name, &h, None);
        }
        Ok(())
    }

    /// The buckets of one base64 V2(-deflate) histogram (an `.hlog` interval): (value in ms,
    /// count), lowest first, as `buckets` gives them. What a comparison reads each second of a
    /// run with, to see how much more than independent samples its counts vary.
    #[staticmethod]
    fn decode_buckets(b64: &str) -> PyResult<Vec<(f64, u64)>> {
        let h = codec::decode_b64(b64).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(h.iter_recorded()
            .map(|v| (ms(v.value_iterated_to()), v.count_at_value()))
            .collect())
    }

    /// The whole set as bytes (JSON of V2-deflate histograms), for `report_to_master`.
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut entries = Vec::with_capacity(self.map.len());
        for ((t, n), p) in &self.map {
            entries.push(WireEntry {
                t: t.clone(),
                n: n.clone(),
                r: codec::encode_b64(&p.raw).map_err(crate::errors::python::to_pyerr)?,
                c: p.corrected
                    .as_ref()
                    .map(codec::encode_b64)
                    .transpose()
                    .map_err(crate::errors::python::to_pyerr)?,
            });
        }
        let bytes = codec::to_json(&entries).map_err(crate::errors::python::to_pyerr)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The inverse of `encode`; malformed input raises ValueError.
    #[staticmethod]
    fn decode(data: &[u8]) -> PyResult<HistogramSet> {
        let err = |e: crate::errors::Error| PyValueError::new_err(e.to_string());
        let mut out = HistogramSet::default();
        for e in codec::from_json(data).map_err(err)? {
            let raw = codec::decode_b64(&e.r).map_err(err)?;
            let corrected =
                e.c.as_deref()
                    .map(codec::decode_b64)
                    .transpose()
                    .map_err(err)?;
            out.add(&e.t, &e.n, &raw, corrected.as_ref());
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!(
            "HistogramSet({} keys, {} values)",
            self.map.len(),
            self.map.values().map(|p| p.raw.len()).sum::<u64>()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[u64]) -> Histogram<u64> {
        let mut h = new_histogram();
        for v in values {
            h.record(*v).unwrap();
        }
        h
    }

    #[test]
    fn merged_sets_equal_one_histogram_of_all_samples() {
        let a: Vec<u64> = (1..5000).map(|i| i * 37 % 100_000 + 1).collect();
        let b: Vec<u64> = (1..7000).map(|i| i * 91 % 2_000_000 + 1).collect();
        let mut s1 = HistogramSet::default();
        s1.add("GET", "/a", &hist(&a), None);
        let mut s2 = HistogramSet::default();
        s2.add("GET", "/a", &hist(&b), None);
        for ((t, n), p) in &s2.map {
            s1.add(t, n, &p.raw, p.corrected.as_ref());
        }
        let all: Vec<u64> = a.iter().chain(b.iter()).copied().collect();
        assert_eq!(s1.get("GET", "/a").unwrap().0, &hist(&all));
    }

    #[test]
    fn aggregate_covers_every_key_and_uses_raw_where_uncorrected() {
        let mut s = HistogramSet::default();
        s.add("GET", "/a", &hist(&[10, 20]), None);
        s.add("POST", "/b", &hist(&[30]), Some(&hist(&[30, 40, 50])));
        let agg = s.aggregate();
        assert_eq!(agg.raw.len(), 3);
        assert_eq!(agg.corrected.map(|c| c.len()), Some(5));
    }
}
