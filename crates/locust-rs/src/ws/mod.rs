//! The WebSocket engine: `connect` opens a connection (TCP, optional rustls, the upgrade),
//! `conn` runs it as one tokio task and is its Python face. Both sit behind the same bridge
//! as the HTTP engine: every wait (handshake, next message, close) is a ticket.

pub mod conn;
pub mod connect;
pub mod watch;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Process-wide counters, read by `ws_counters()`.
pub struct Counters {
    pub open: AtomicI64,
    pub opened: AtomicU64,
    pub messages_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub bytes_received: AtomicU64,
}

pub static COUNTERS: Counters = Counters {
    open: AtomicI64::new(0),
    opened: AtomicU64::new(0),
    messages_sent: AtomicU64::new(0),
    bytes_sent: AtomicU64::new(0),
    messages_received: AtomicU64::new(0),
    bytes_received: AtomicU64::new(0),
};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds on one monotonic clock shared by send and arrival stamps, so Python can subtract
/// two stamps taken in Rust without its own wake-up delay entering the difference.
pub fn stamp(at: Instant) -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    at.saturating_duration_since(epoch).as_nanos() as u64
}

/// The process's WebSocket counters: connections open now and opened in total, messages and
/// bytes sent and received (payload bytes, both directions, all connections).
#[pyfunction]
pub fn ws_counters(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let c = &COUNTERS;
    d.set_item("connections_open", c.open.load(Ordering::Relaxed).max(0))?;
    d.set_item("connections_opened", c.opened.load(Ordering::Relaxed))?;
    d.set_item("messages_sent", c.messages_sent.load(Ordering::Relaxed))?;
    d.set_item("bytes_sent", c.bytes_sent.load(Ordering::Relaxed))?;
    d.set_item(
        "messages_received",
        c.messages_received.load(Ordering::Relaxed),
    )?;
    d.set_item("bytes_received", c.bytes_received.load(Ordering::Relaxed))?;
    Ok(d)
}

/// Now, on the clock of the send and arrival stamps.
#[pyfunction]
pub fn ws_clock_ns() -> u64 {
    stamp(Instant::now())
}
