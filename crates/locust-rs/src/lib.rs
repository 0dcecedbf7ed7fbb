//! locust_rs._native: the Rust core of locust-rs. This is the one place that registers Python
//! names; each module below has one job.

mod alloc;
mod arrival;
mod bridge;
mod errors;
mod hdr;
mod http;
mod net;
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

/// How this process's response times ended: (to the kernel's arrival stamp, by the clock at the
/// read, why the first of those had no stamp). See docs/metrics.md, "Which clock".
#[pyfunction]
fn clock_counts() -> (u64, u64, String) {
    net::arrival::counts()
}

/// Parks the thread that reads a socket for `ms` after each of its next `times` readiness events,
/// before it reads: a starved engine thread, for the tests of the kernel's stamps. Only with the
/// `test-hooks` feature.
#[cfg(feature = "test-hooks")]
#[pyfunction]
fn _park_after_readiness(ms: u64, times: u64) {
    net::stamped::hooks::arm(ms, times);
}

/// True once this process has built its runtime (false again in a fresh fork child).
#[pyfunction]
fn runtime_started() -> bool {
    bridge::runtime::is_started()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    bridge::runtime::install_fork_hook();
    bridge::inline::install_panic_hook();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("USER_AGENT", http::client::USER_AGENT)?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_function(wrap_pyfunction!(runtime_started, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::wakeup_fd, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::wakeup_backend, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::drain, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::flush, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::drive, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::engine, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::engine_fd, m)?)?;
    #[cfg(feature = "test-hooks")]
    m.add_function(wrap_pyfunction!(bridge::_submit_panicking_task, m)?)?;
    #[cfg(feature = "test-hooks")]
    m.add_function(wrap_pyfunction!(_park_after_readiness, m)?)?;
    m.add_function(wrap_pyfunction!(clock_counts, m)?)?;
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
