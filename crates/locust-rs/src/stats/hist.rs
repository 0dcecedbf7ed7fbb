//! A response-time histogram that starts sparse: a sorted list of (bucket, count) pairs with
//! HdrHistogram's buckets (3 significant digits), which becomes a dense `Histogram` once it holds
//! `SPARSE_MAX` distinct buckets. A dense histogram covering 1 µs .. 100 ms is 64 KB, so 10,000
//! request names that each see a few distinct times would cost 640 MB dense; sparse, a few KB.
//! Both forms give the same answers: the same buckets, and `value_at_quantile` as HdrHistogram
//! computes it (checked against it in the tests).

use std::borrow::Cow;
use std::sync::OnceLock;

use hdrhistogram::Histogram;

use crate::hdr::{new_histogram, SIGFIG};

/// Distinct buckets kept sparse: 1,024 pairs are 16 KB, a quarter of a dense histogram at the
/// 100 ms range and a tenth at 1 h. Only a name with more distinct times than that goes dense.
pub const SPARSE_MAX: usize = 1024;

/// The bucket arithmetic (lowest/highest equivalent values) without a counts array of its own.
fn shape() -> &'static Histogram<u64> {
    static SHAPE: OnceLock<Histogram<u64>> = OnceLock::new();
    SHAPE.get_or_init(|| {
        Histogram::<u64>::new_with_bounds(1, 2, SIGFIG).unwrap_or_else(|_| new_histogram())
    })
}

#[derive(Clone)]
pub enum Hist {
    /// (lowest equivalent value, count), sorted by value; and the total count.
    Sparse(Vec<(u64, u64)>, u64),
    Dense(Box<Histogram<u64>>),
}

impl Default for Hist {
    fn default() -> Self {
        Hist::Sparse(Vec::new(), 0)
    }
}

impl Hist {
    pub fn record_n(&mut self, value: u64, n: u64) {
        if n == 0 {
            return;
        }
        match self {
            Hist::Dense(h) => {
                // Auto-resizing histograms only fail to record when memory runs out.
                let _ = h.record_n(value, n);
            }
            Hist::Sparse(pairs, total) => {
                let key = shape().lowest_equivalent(value);
                match pairs.binary_search_by_key(&key, |p| p.0) {
                    Ok(i) => pairs[i].1 += n,
                    Err(i) => pairs.insert(i, (key, n)),
                }
                *total += n;
                if pairs.len() > SPARSE_MAX {
                    self.densify();
                }
            }
        }
    }

    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    fn densify(&mut self) {
        if let Hist::Sparse(pairs, _) = self {
            let mut h = new_histogram();
            for (v, n) in pairs.iter() {
                let _ = h.record_n(*v, *n);
            }
            *self = Hist::Dense(Box::new(h));
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Hist::Sparse(_, total) => *total,
            Hist::Dense(h) => h.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&mut self) {
        match self {
            Hist::Sparse(pairs, total) => {
                pairs.clear();
                *total = 0;
            }
            // Kept dense: a name that needed it will again, and resetting reuses the memory.
            Hist::Dense(h) => h.reset(),
        }
    }

    /// HdrHistogram's `value_at_quantile`, in µs.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        match self {
            Hist::Dense(h) => h.value_at_quantile(q),
            Hist::Sparse(pairs, total) => {
                let q = q.min(1.0);
                let target = ((q * *total as f64).ceil() as u64).max(1);
                let mut seen = 0;
                for (v, n) in pairs {
                    seen += n;
                    if seen >= target {
                        return if q == 0.0 {
                            *v
                        } else {
                            shape().highest_equivalent(*v)
                        };
                    }
                }
                0
            }
        }
    }

    /// (value, count) of each bucket with a count, lowest first; the value is the bucket's
    /// highest equivalent, as HdrHistogram's `iter_recorded` reports it.
    pub fn recorded(&self) -> Vec<(u64, u64)> {
        match self {
            Hist::Dense(h) => h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
            Hist::Sparse(pairs, _) => pairs
                .iter()
                .map(|(v, n)| (shape().highest_equivalent(*v), *n))
                .collect(),
        }
    }

    pub fn add(&mut self, other: &Hist) {
        match other {
            Hist::Sparse(pairs, _) => {
                for (v, n) in pairs {
                    self.record_n(*v, *n);
                }
            }
            Hist::Dense(o) => {
                self.densify();
                if let Hist::Dense(h) = self {
                    let _ = h.add(o.as_ref());
                }
            }
        }
    }

    /// The largest value's bucket top (HdrHistogram's `max`); 0 when empty.
    pub fn max(&self) -> u64 {
        match self {
            Hist::Dense(h) => h.max(),
            Hist::Sparse(pairs, _) => pairs.last().map_or(0, |p| shape().highest_equivalent(p.0)),
        }
    }

    /// Adds these counts into `h`: a few records for the sparse form, not a walk of a dense copy.
    pub fn add_to(&self, h: &mut Histogram<u64>) {
        match self {
            Hist::Dense(d) => {
                let _ = h.add(d.as_ref());
            }
            Hist::Sparse(pairs, _) => {
                for (v, n) in pairs {
                    let _ = h.record_n(*v, *n);
                }
            }
        }
    }

    /// The `.hlog` and wire encoding (base64 of V2-deflate), made from the sparse form directly.
    pub fn encode_b64(&self) -> Result<String, crate::errors::Error> {
        use base64::Engine;
        let bytes = match self {
            Hist::Dense(h) => crate::hdr::codec::encode(h)?,
            Hist::Sparse(pairs, _) => crate::hdr::codec::encode_pairs(pairs, self.max())?,
        };
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// The dense form, for the outputs that take HdrHistogram's type (sets, `.hlog`, the wire).
    pub fn histogram(&self) -> Cow<'_, Histogram<u64>> {
        match self {
            Hist::Dense(h) => Cow::Borrowed(h.as_ref()),
            Hist::Sparse(pairs, _) => {
                let mut h = new_histogram();
                for (v, n) in pairs {
                    let _ = h.record_n(*v, *n);
                }
                Cow::Owned(h)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u64, spread: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                1 + x % spread
            })
            .collect()
    }

    #[test]
    fn sparse_answers_as_hdrhistogram_does() {
        for (n, spread) in [(1, 10), (5, 1000), (60, 200_000), (900, 3_600_000_000)] {
            let values = pseudo_random(n, 7 + n as u64, spread);
            let mut sparse = Hist::default();
            let mut dense = new_histogram();
            for v in &values {
                sparse.record(*v);
                dense.record(*v).unwrap();
            }
            assert!(
                matches!(sparse, Hist::Sparse(..)),
                "stays sparse at {n} values"
            );
            for q in [0.0, 0.001, 0.25, 0.5, 0.66, 0.9, 0.95, 0.99, 0.999, 1.0] {
                assert_eq!(
                    sparse.value_at_quantile(q),
                    dense.value_at_quantile(q),
                    "q={q} n={n}"
                );
            }
            let want: Vec<(u64, u64)> = dense
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect();
            assert_eq!(sparse.recorded(), want);
            assert_eq!(sparse.histogram().as_ref(), &dense);
        }
    }

    #[test]
    fn turns_dense_past_the_limit_and_keeps_every_count() {
        let values = pseudo_random(20_000, 3, 20_000_000);
        let mut h = Hist::default();
        let mut dense = new_histogram();
        for v in &values {
            h.record(*v);
            dense.record(*v).unwrap();
        }
        assert!(matches!(h, Hist::Dense(_)));
        assert_eq!(h.len(), 20_000);
        assert_eq!(h.value_at_quantile(0.99), dense.value_at_quantile(0.99));
    }

    #[test]
    fn adding_mixes_forms() {
        let mut a = Hist::default();
        a.record(100);
        let mut b = Hist::default();
        for v in pseudo_random(20_000, 9, 20_000_000) {
            b.record(v);
        }
        let mut c = a.clone();
        c.add(&b);
        assert_eq!(c.len(), 20_001);
        b.add(&a);
        assert_eq!(b.len(), 20_001);
        assert_eq!(b.value_at_quantile(0.5), c.value_at_quantile(0.5));
    }
}
