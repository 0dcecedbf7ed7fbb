//! Request metrics the server keeps about itself, for `GET /api/admin/metrics`: per route
//! pattern and method, a count per status and an HDR histogram of the handling time; plus
//! totals, requests in flight and requests cancelled (the client went away first).
//!
//! Keyed by the route *pattern* (`/api/conversations/{id}/messages`), never the raw path, and
//! every unmatched path shares one key, so the table is bounded by the routes that exist.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

/// The route label of requests that matched no route.
pub const UNMATCHED: &str = "(unmatched)";
/// Longest recorded handling time; longer ones are recorded as this.
const MAX_TRACKED_US: u64 = 60_000_000;

struct RouteStats {
    method: Method,
    statuses: Vec<(u16, u64)>,
    /// Microseconds, 3 significant digits.
    latency: Histogram<u64>,
}

impl RouteStats {
    fn new(method: Method) -> Option<Self> {
        Some(Self {
            method,
            statuses: Vec::new(),
            latency: Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).ok()?,
        })
    }
}

pub struct Metrics {
    started: Instant,
    in_flight: AtomicI64,
    cancelled: AtomicU64,
    /// route pattern -> one entry per method seen on it
    routes: Mutex<HashMap<Box<str>, Vec<RouteStats>>>,
}

/// Counts a request as in flight until it is dropped; `finish` records it, and dropping it
/// unfinished (the client went away, the future was cancelled) counts it as cancelled.
pub struct InFlight {
    metrics: Arc<Metrics>,
    start: Instant,
    finished: bool,
}

impl InFlight {
    /// Records the request and returns how long it took.
    pub fn finish(mut self, method: &Method, route: &str, status: u16) -> Duration {
        self.finished = true;
        let took = self.start.elapsed();
        self.metrics.record(method, route, status, took);
        took
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.finished {
            self.metrics.cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            in_flight: AtomicI64::new(0),
            cancelled: AtomicU64::new(0),
            routes: Mutex::new(HashMap::new()),
        }
    }

    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            metrics: self.clone(),
            start: Instant::now(),
            finished: false,
        }
    }

    fn record(&self, method: &Method, route: &str, status: u16, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let mut routes = self.routes.lock();
        let entries = match routes.get_mut(route) {
            Some(e) => e,
            None => routes.entry(route.into()).or_default(),
        };
        let stats = match entries.iter().position(|s| s.method == method) {
            Some(i) => &mut entries[i],
            None => {
                let Some(s) = RouteStats::new(method.clone()) else {
                    return;
                };
                entries.push(s);
                let last = entries.len() - 1;
                &mut entries[last]
            }
        };
        match stats.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => stats.statuses.push((status, 1)),
        }
        stats.latency.saturating_record(us.min(MAX_TRACKED_US));
    }

    /// The JSON of `GET /api/admin/metrics`.
    pub fn to_json(&self) -> Value {
        let uptime = self.started.elapsed().as_secs_f64();
        let mut by_status: Vec<(u16, u64)> = Vec::new();
        let mut total = 0u64;
        let mut rows = Vec::new();
        {
            let routes = self.routes.lock();
            let mut names: Vec<&Box<str>> = routes.keys().collect();
            names.sort();
            for name in names {
                let Some(entries) = routes.get(name) else {
                    continue;
                };
                let mut entries: Vec<&RouteStats> = entries.iter().collect();
                entries.sort_by(|a, b| a.method.as_str().cmp(b.method.as_str()));
                for s in entries {
                    let count = s.latency.len();
                    total += count;
                    let mut statuses = s.statuses.clone();
                    statuses.sort_unstable();
                    for (code, n) in &statuses {
                        match by_status.iter_mut().find(|(c, _)| c == code) {
                            Some((_, m)) => *m += n,
                            None => by_status.push((*code, *n)),
                        }
                    }
                    let ms = |us: u64| us as f64 / 1000.0;
                    rows.push(json!({
                        "method": s.method.as_str(),
                        "route": name.as_ref(),
                        "count": count,
                        "statuses": status_map(&statuses),
                        "latency_ms": {
                            "mean": s.latency.mean() / 1000.0,
                            "p50": ms(s.latency.value_at_quantile(0.50)),
                            "p90": ms(s.latency.value_at_quantile(0.90)),
                            "p99": ms(s.latency.value_at_quantile(0.99)),
                            "max": ms(s.latency.max()),
                        },
                    }));
                }
            }
        }
        by_status.sort_unstable();
        json!({
            "uptime_seconds": uptime,
            "requests_total": total,
            "requests_per_second": if uptime > 0.0 { total as f64 / uptime } else { 0.0 },
            "in_flight": self.in_flight.load(Ordering::Relaxed).max(0),
            "cancelled": self.cancelled.load(Ordering::Relaxed),
            "statuses": status_map(&by_status),
            "routes": rows,
        })
    }
}

fn status_map(statuses: &[(u16, u64)]) -> Value {
    let mut m = Map::new();
    for (code, n) in statuses {
        m.insert(code.to_string(), json!(n));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_per_route_method_and_status() {
        let m = Arc::new(Metrics::new());
        for status in [200, 200, 404] {
            let f = m.begin();
            f.finish(&Method::GET, "/api/x/{id}", status);
        }
        m.begin().finish(&Method::POST, "/api/x/{id}", 201);
        drop(m.begin()); // cancelled
        let held = m.begin();
        let j = m.to_json();
        assert_eq!(j["requests_total"], 4);
        assert_eq!(j["in_flight"], 1);
        assert_eq!(j["cancelled"], 1);
        assert_eq!(j["statuses"]["200"], 2);
        assert_eq!(j["statuses"]["404"], 1);
        let routes = j["routes"].as_array().unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0]["method"], "GET");
        assert_eq!(routes[0]["count"], 3);
        assert_eq!(routes[0]["statuses"]["200"], 2);
        assert!(routes[0]["latency_ms"]["max"].as_f64().unwrap() >= 0.001);
        assert_eq!(routes[1]["method"], "POST");
        drop(held);
        assert_eq!(m.to_json()["in_flight"], 0);
    }

    #[test]
    fn latency_percentiles_come_from_the_histogram() {
        let m = Metrics::new();
        for ms in 1..=100u64 {
            m.record(&Method::GET, "/r", 200, Duration::from_millis(ms));
        }
        m.record(&Method::GET, "/r", 200, Duration::from_secs(3600)); // clamped, not lost
        let j = m.to_json();
        let l = &j["routes"][0]["latency_ms"];
        // the 51st of 101 values, to the histogram's 3 significant digits
        assert!((l["p50"].as_f64().unwrap() - 51.0).abs() < 0.1, "{l}");
        assert!((l["p99"].as_f64().unwrap() - 100.0).abs() < 0.1, "{l}");
        assert!((l["max"].as_f64().unwrap() - 60_000.0).abs() < 100.0, "{l}");
        assert_eq!(j["routes"][0]["count"], 101);
    }
}
