//! The VoiceAssist demo server: an axum app on this process's tokio runtime, started and stopped
//! from Python through `DemoServer`. See `docs/demo-server.md`.

mod accesslog;
mod auth;
mod config;
mod documents;
mod errors;
mod kb;
mod metrics;
mod openapi;
mod ratelimit;
mod realtime;
mod routes;
mod schemas;
mod state;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use axum::serve::ListenerExt;
use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokio::sync::oneshot;

use crate::runtime;
pub use config::Config;

/// What a running server needs to be stopped.
struct Running {
    shutdown: oneshot::Sender<()>,
    done: mpsc::Receiver<()>,
    task: tokio::task::AbortHandle,
}

/// A running demo server, listening once the constructor returns.
#[pyclass(module = "locust_rs._native", frozen)]
pub struct DemoServer {
    addr: SocketAddr,
    running: Mutex<Option<Running>>,
    realtime: std::sync::Arc<realtime::Hub>,
}

impl DemoServer {
    /// Asks the server to stop and waits up to `timeout` for open connections to finish, then
    /// aborts it. Returns false if it had to abort.
    fn shutdown(&self, timeout: Duration) -> bool {
        let Some(running) = self.running.lock().take() else {
            return true;
        };
        let _ = running.shutdown.send(());
        let clean = running.done.recv_timeout(timeout).is_ok();
        if !clean {
            running.task.abort();
        }
        clean
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.lock().take() {
            let _ = running.shutdown.send(());
        }
    }
}

#[pymethods]
impl DemoServer {
    #[new]
    #[pyo3(signature = (
        host = "127.0.0.1".to_owned(), port = 0, *, admin_email = None, admin_password = None,
        jwt_secret = None, access_token_ttl = None, refresh_token_ttl = None,
        password_hash_iterations = None, register_per_minute = None,
        login_attempts_per_minute = None, max_users = None, max_revoked_tokens = None,
        chat_latency_ms = None, chat_latency_jitter_ms = None, max_conversations_per_user = None,
        max_conversations = None, max_messages_per_conversation = None, error_rate = None,
        latency_scale = None, drop_rate = None,
        ws_max_message_size = None, ws_max_audio_bytes = None, ws_max_connections = None,
        max_upload_bytes = None, document_processing_ms = None, max_documents = None, access_log = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: String,
        port: u16,
        admin_email: Option<String>,
        admin_password: Option<String>,
        jwt_secret: Option<String>,
        access_token_ttl: Option<u64>,
        refresh_token_ttl: Option<u64>,
        password_hash_iterations: Option<u32>,
        register_per_minute: Option<u32>,
        login_attempts_per_minute: Option<u32>,
        max_users: Option<usize>,
        max_revoked_tokens: Option<usize>,
        chat_latency_ms: Option<u64>,
        chat_latency_jitter_ms: Option<u64>,
        max_conversations_per_user: Option<usize>,
        max_conversations: Option<usize>,
        max_messages_per_conversation: Option<usize>,
        error_rate: Option<f64>,
        latency_scale: Option<f64>,
        drop_rate: Option<f64>,
        ws_max_message_size: Option<usize>,
        ws_max_audio_bytes: Option<usize>,
        ws_max_connections: Option<usize>,
        max_upload_bytes: Option<usize>,
        document_processing_ms: Option<u64>,
        max_documents: Option<usize>,
        access_log: Option<String>,
    ) -> PyResult<Self> {
        let d = Config::default();
        let config = Config {
            admin_email: admin_email.unwrap_or(d.admin_email),
            admin_password: admin_password.unwrap_or(d.admin_password),
            jwt_secret: jwt_secret.or(d.jwt_secret),
            access_token_ttl: access_token_ttl.unwrap_or(d.access_token_ttl),
            refresh_token_ttl: refresh_token_ttl.unwrap_or(d.refresh_token_ttl),
            password_hash_iterations: password_hash_iterations
                .unwrap_or(d.password_hash_iterations),
            register_per_minute: register_per_minute.unwrap_or(d.register_per_minute),
            login_attempts_per_minute: login_attempts_per_minute
                .unwrap_or(d.login_attempts_per_minute),
            max_users: max_users.unwrap_or(d.max_users),
            max_revoked_tokens: max_revoked_tokens.unwrap_or(d.max_revoked_tokens),
            chat_latency_ms: chat_latency_ms.unwrap_or(d.chat_latency_ms),
            chat_latency_jitter_ms: chat_latency_jitter_ms.unwrap_or(d.chat_latency_jitter_ms),
            max_conversations_per_user: max_conversations_per_user
                .unwrap_or(d.max_conversations_per_user),
            max_conversations: max_conversations.unwrap_or(d.max_conversations),
            max_messages_per_conversation: max_messages_per_conversation
                .unwrap_or(d.max_messages_per_conversation),
            error_rate: error_rate.unwrap_or(d.error_rate),
            latency_scale: latency_scale.unwrap_or(d.latency_scale),
            drop_rate: drop_rate.unwrap_or(d.drop_rate),
            ws_max_message_size: ws_max_message_size.unwrap_or(d.ws_max_message_size),
            ws_max_audio_bytes: ws_max_audio_bytes.unwrap_or(d.ws_max_audio_bytes),
            ws_max_connections: ws_max_connections.unwrap_or(d.ws_max_connections),
            max_upload_bytes: max_upload_bytes.unwrap_or(d.max_upload_bytes),
            document_processing_ms: document_processing_ms.unwrap_or(d.document_processing_ms),
            max_documents: max_documents.unwrap_or(d.max_documents),
            access_log: access_log.or(d.access_log),
        };
        py.detach(|| Self::start(&host, port, config))
    }

    /// The address the server listens on.
    #[getter]
    fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    #[getter]
    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://host:port`, ready to be a Locust `host`.
    #[getter]
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    #[getter]
    fn running(&self) -> bool {
        self.running.lock().is_some()
    }

    /// Stops the server: no new connections, open ones may finish for up to `timeout` seconds,
    /// then they are dropped. Returns true when it stopped cleanly. Safe to call twice.
    #[pyo3(signature = (timeout = 5.0))]
    fn stop(&self, py: Python<'_>, timeout: f64) -> bool {
        let timeout = Duration::from_secs_f64(if timeout.is_finite() {
            timeout.max(0.0)
        } else {
            5.0
        });
        py.detach(|| self.shutdown(timeout))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.stop(py, 5.0);
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "<DemoServer {} {}>",
            self.url(),
            if self.running() { "running" } else { "stopped" }
        )
    }

    /// The realtime WebSocket endpoint's counters (connections open/total/refused, messages and
    /// bytes in/out, ...), as a dict of ints; see docs/demo-server.md.
    fn realtime_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        if let serde_json::Value::Object(map) = serde_json::to_value(self.realtime.snapshot())
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?
        {
            for (k, v) in map {
                out.set_item(k, v.as_u64().unwrap_or(0))?;
            }
        }
        Ok(out)
    }

    /// The OpenAPI document of the demo API (what `/openapi.json` serves), as JSON text.
    #[staticmethod]
    fn openapi_json() -> PyResult<String> {
        openapi::json().map_err(PyRuntimeError::new_err)
    }

    /// The default of every option, as a dict (the CLI's help and the docs use it).
    #[staticmethod]
    fn default_options(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let d = Config::default();
        let out = PyDict::new(py);
        out.set_item("admin_email", d.admin_email)?;
        out.set_item("admin_password", d.admin_password)?;
        out.set_item("jwt_secret", d.jwt_secret)?;
        out.set_item("access_token_ttl", d.access_token_ttl)?;
        out.set_item("refresh_token_ttl", d.refresh_token_ttl)?;
        out.set_item("password_hash_iterations", d.password_hash_iterations)?;
        out.set_item("register_per_minute", d.register_per_minute)?;
        out.set_item("login_attempts_per_minute", d.login_attempts_per_minute)?;
        out.set_item("max_users", d.max_users)?;
        out.set_item("max_revoked_tokens", d.max_revoked_tokens)?;
        out.set_item("chat_latency_ms", d.chat_latency_ms)?;
        out.set_item("chat_latency_jitter_ms", d.chat_latency_jitter_ms)?;
        out.set_item("max_conversations_per_user", d.max_conversations_per_user)?;
        out.set_item("max_conversations", d.max_conversations)?;
        out.set_item(
            "max_messages_per_conversation",
            d.max_messages_per_conversation,
        )?;
        out.set_item("error_rate", d.error_rate)?;
        out.set_item("latency_scale", d.latency_scale)?;
        out.set_item("drop_rate", d.drop_rate)?;
        out.set_item("ws_max_message_size", d.ws_max_message_size)?;
        out.set_item("ws_max_audio_bytes", d.ws_max_audio_bytes)?;
        out.set_item("ws_max_connections", d.ws_max_connections)?;
        out.set_item("max_upload_bytes", d.max_upload_bytes)?;
        out.set_item("document_processing_ms", d.document_processing_ms)?;
        out.set_item("max_documents", d.max_documents)?;
        out.set_item("access_log", d.access_log)?;
        Ok(out)
    }
}

impl DemoServer {
    fn start(host: &str, port: u16, config: Config) -> PyResult<Self> {
        let state = state::AppState::new(config).map_err(PyValueError::new_err)?;
        let process = runtime::get().map_err(crate::py_err)?;
        let listener = std::net::TcpListener::bind((host, port))
            .map_err(|e| PyOSError::new_err(format!("cannot listen on {host}:{port}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        let listener = {
            let _guard = process.runtime.enter();
            tokio::net::TcpListener::from_std(listener)
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))?
        }
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let realtime = state.realtime.clone();
        // only the access log needs each request's client address
        let with_client = state.access_log.is_some();
        let app = routes::router(state);
        let (shutdown, stop) = oneshot::channel::<()>();
        let (done_tx, done) = mpsc::channel();
        let hub = realtime.clone();
        let task = process.runtime.spawn(async move {
            // upgraded WebSockets outlive axum's connection tracking: the hub closes them
            let stopping = hub.clone();
            let stopped = async move {
                let _ = stop.await;
                stopping.shutdown();
            };
            let _ = if with_client {
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            } else {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            };
            hub.closed().await;
            let _ = done_tx.send(());
        });
        Ok(Self {
            addr,
            realtime,
            running: Mutex::new(Some(Running {
                shutdown,
                done,
                task: task.abort_handle(),
            })),
        })
    }
}
