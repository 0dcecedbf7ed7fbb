//! The VoiceAssist demo server: an axum app that stands in for the API the VoiceAssist load-test
//! suite tests. It is a program of its own (`voiceassist-demo`, `src/main.rs`) with its own tokio
//! runtime, so a load test never measures a target that shares the load generator's threads.
//! See `docs/demo-server.md`.

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

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;

pub use config::Config;
pub use openapi::json as openapi_json;
pub use realtime::Snapshot as RealtimeSnapshot;

/// Why a server could not start. The two kinds are reported differently: a bad setting is the
/// caller's to fix (Python's `ValueError`), a port in use is the machine's (`OSError`).
#[derive(Debug)]
pub enum StartError {
    /// A setting that would make the server useless; the message names the option.
    Config(String),
    /// The address could not be bound.
    Listen(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(m) | Self::Listen(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StartError {}

/// The app a server with these settings serves, without a listener: requests can go through it
/// in process (it is a `tower_service::Service`), which is how the crate's route tests drive it.
/// There is no client address, so an access log writes `-` for it, and the WebSocket route cannot
/// upgrade.
pub fn app(config: Config) -> Result<axum::Router, StartError> {
    assemble(config).map(|(_, app)| app)
}

/// Checks the settings, builds the state and the router over it.
fn assemble(config: Config) -> Result<(Arc<state::AppState>, axum::Router), StartError> {
    let state = state::AppState::new(config).map_err(StartError::Config)?;
    let app = routes::router(state.clone(), openapi::json().unwrap_or_default());
    Ok((state, app))
}

/// A demo server bound to its address, ready to serve.
pub struct Server {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    app: axum::Router,
    realtime: Arc<realtime::Hub>,
    /// Only the access log needs each request's client address.
    with_client: bool,
}

impl Server {
    /// Checks the settings and binds `host:port` (0: any free port). Call it inside a tokio
    /// runtime.
    pub async fn bind(host: &str, port: u16, config: Config) -> Result<Self, StartError> {
        let (state, app) = assemble(config)?;
        let listener = tokio::net::TcpListener::bind((host, port))
            .await
            .map_err(|e| StartError::Listen(format!("cannot listen on {host}:{port}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Listen(e.to_string()))?;
        let realtime = state.realtime.clone();
        let with_client = state.access_log.is_some();
        Ok(Self {
            listener,
            addr,
            app,
            realtime,
            with_client,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle on the realtime WebSocket endpoint's counters, readable while the server runs.
    pub fn realtime(&self) -> RealtimeCounters {
        RealtimeCounters(self.realtime.clone())
    }

    /// Serves until `shutdown` completes, then lets open requests finish and closes the
    /// WebSockets that are still open (they outlive axum's connection tracking).
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let hub = self.realtime.clone();
        let stopping = hub.clone();
        let stopped = async move {
            shutdown.await;
            stopping.shutdown();
        };
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = if self.with_client {
            let app = self.app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        } else {
            axum::serve(listener, self.app)
                .with_graceful_shutdown(stopped)
                .await
        };
        hub.closed().await;
    }
}

/// The realtime endpoint's counters of a running server.
#[derive(Clone)]
pub struct RealtimeCounters(Arc<realtime::Hub>);

impl RealtimeCounters {
    pub fn snapshot(&self) -> RealtimeSnapshot {
        self.0.snapshot()
    }
}
