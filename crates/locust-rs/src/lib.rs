//! locust_rs._native: the Rust core of locust-rs. This is the one place that registers Python
//! names; each module below has one job.

mod alloc;
mod arrival;
mod bridge;
mod errors;
mod hdr;
mod http;
mod stats;
mod time;
mod ws;

use pyo3::prelude::*;

#[global_allocator]
static ALLOCATOR: alloc::Engine = alloc::Engine;

/// Sets the tokio worker-thread count for runtimes created from now on (default 1, or the
/// LOCUST_RS_WORKER_THREADS environment variable). Returns the count now in force.
#[pyfunction]
#[pyo3(signature = (worker_threads = None))]
fn configure(worker_threads: Option<usize>) -> usize {
    if let Some(n) = worker_threads.filter(|n| *n > 0) {
        bridge::runtime::set_worker_threads(n);
    }
    bridge::runtime::worker_threads()
}

/// True once this process has built its runtime (false again in a fresh fork child).
#[pyfunction]
fn runtime_started() -> bool {
    bridge::runtime::is_started()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    bridge::runtime::install_fork_hook();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("USER_AGENT", http::client::USER_AGENT)?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_function(wrap_pyfunction!(runtime_started, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::wakeup_fd, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::wakeup_backend, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::drain, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::flush, m)?)?;
    #[cfg(feature = "test-hooks")]
    m.add_function(wrap_pyfunction!(bridge::_submit_panicking_task, m)?)?;
    m.add_class::<bridge::Ticket>()?;
    m.add_class::<http::client::Client>()?;
    m.add_class::<http::pool::ConnectionPool>()?;
    m.add_class::<http::response::NativeResponse>()?;
    m.add_class::<errors::python::NativeError>()?;
    m.add("ERROR_KINDS", errors::python::kind_names())?;
    m.add_class::<hdr::HistogramSet>()?;
    m.add_class::<stats::StatsCore>()?;
    m.add_class::<arrival::ArrivalSchedule>()?;
    m.add("ARRIVAL_STALL", arrival::schedule::STALL)?;
    m.add_class::<stats::StatsEntryCore>()?;
    m.add_function(wrap_pyfunction!(ws::conn::ws_connect, m)?)?;
    m.add_function(wrap_pyfunction!(ws::ws_counters, m)?)?;
    m.add_function(wrap_pyfunction!(ws::ws_clock_ns, m)?)?;
    m.add_class::<ws::conn::WsConnection>()?;
    Ok(())
}
