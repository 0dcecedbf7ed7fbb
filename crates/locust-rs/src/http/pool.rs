//! Connections owned per user, as a browser owns its own: idle HTTP/1.1 connections per
//! origin, or one shared HTTP/2 connection, plus the semaphore behind Locust's `concurrency`.
//! Each connection is driven by its own tokio task; a request only borrows its sender.

use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use pyo3::prelude::*;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::proxy::{self, Proxy};
use super::timed_io::{ReadLimit, TimedIo};
use super::tls::{self, TlsKey};
use crate::errors::{Error, ErrorKind};
use crate::net::arrival::WireTimes;
use crate::net::stamped::StampedTcp;
use crate::time::with_timeout;

pub type Body = Full<Bytes>;

/// Where a connection goes and how: the origin plus the route to it. Connections are pooled
/// per `Origin`, so one made through a proxy, or with other TLS settings, is never reused
/// for a request that asked for something else (urllib3 keys its pools the same way).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Origin {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub route: Arc<Route>,
}

impl Origin {
    /// The same scheme, host and port (whatever the route).
    pub fn same_site(&self, other: &Origin) -> bool {
        self.https == other.https && self.host == other.host && self.port == other.port
    }

    /// Requests to this origin go to a proxy in absolute form (plain http through an HTTP proxy).
    pub fn forwarded(&self) -> Option<&Proxy> {
        self.route
            .proxy
            .as_ref()
            .filter(|p| !self.https && p.socks.is_none())
    }
}

/// Everything about a connection besides its origin.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Route {
    pub tls: TlsKey,
    pub proxy: Option<Proxy>,
    pub http2_prior_knowledge: bool,
}

pub enum Sender {
    /// An HTTP/1.1 connection, the read timeout its socket applies to each read, and when its last
    /// bytes arrived by the kernel's stamp (None: its socket has no stamps).
    H1(
        http1::SendRequest<Body>,
        Arc<ReadLimit>,
        Option<Arc<WireTimes>>,
    ),
    /// An HTTP/2 connection, shared by its streams, and its socket's stamps (None: none).
    H2(http2::SendRequest<Body>, Option<Arc<WireTimes>>),
}

impl Sender {
    pub fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s, ..) => s.is_closed(),
            Sender::H2(s, _) => s.is_closed(),
        }
    }

    /// The stamps of the connection's socket, if it has them.
    pub fn wire(&self) -> Option<&WireTimes> {
        match self {
            Sender::H1(_, _, wire) | Sender::H2(_, wire) => wire.as_deref(),
        }
    }
}

/// The state of one pool in one process.
pub struct PoolInner {
    pid: u32,
    /// Looked up twice per request (checkout, checkin): FxHash, as SipHash's resistance to
    /// chosen keys buys nothing for origins the locustfile names.
    idle: Mutex<FxHashMap<Origin, Vec<Sender>>>,
    pub limit: Arc<Semaphore>,
}

impl PoolInner {
    fn new(concurrency: usize) -> Self {
        PoolInner {
            pid: crate::bridge::runtime::current_pid(),
            idle: Mutex::new(FxHashMap::default()),
            limit: Arc::new(Semaphore::new(concurrency.clamp(1, Semaphore::MAX_PERMITS))),
        }
    }

    /// An idle HTTP/1.1 connection (taken) or the shared HTTP/2 one (cloned).
    pub fn checkout(&self, origin: &Origin) -> Option<Sender> {
        let mut idle = self.idle.lock();
        let list = idle.get_mut(origin)?;
        while let Some(last) = list.last() {
            if last.is_closed() {
                list.pop();
                continue;
            }
            return match last {
                Sender::H2(s, wire) => Some(Sender::H2(s.clone(), wire.clone())),
                Sender::H1(..) => list.pop(),
            };
        }
        None
    }

    pub fn checkin(&self, origin: &Origin, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        if let Sender::H1(_, limit, _) = &sender {
            // Idle, the connection waits for as long as the server keeps it open.
            limit.set(None);
        }
        let mut idle = self.idle.lock();
        match idle.get_mut(origin) {
            Some(list) => {
                if matches!(sender, Sender::H2(..))
                    && list
                        .iter()
                        .any(|s| matches!(s, Sender::H2(..)) && !s.is_closed())
                {
                    return;
                }
                list.push(sender)
            }
            None => {
                idle.insert(origin.clone(), vec![sender]);
            }
        }
    }

    pub fn idle_count(&self) -> usize {
        self.idle.lock().values().map(Vec::len).sum()
    }
}

/// A connection pool: one per user by default, or shared between users through
/// `client_pool`. Rebuilt in a forked child, whose parent's connections are not its own.
#[pyclass(module = "locust_rs._native", frozen)]
pub struct ConnectionPool {
    inner: Mutex<Arc<PoolInner>>,
    #[pyo3(get)]
    concurrency: usize,
}

impl ConnectionPool {
    pub fn current(&self) -> Arc<PoolInner> {
        let mut inner = self.inner.lock();
        if inner.pid != crate::bridge::runtime::current_pid() {
            // The parent's connections belong to its runtime; leak rather than drop them here.
            let stale = std::mem::replace(&mut *inner, Arc::new(PoolInner::new(self.concurrency)));
            std::mem::forget(stale);
        }
        inner.clone()
    }
}

#[pymethods]
impl ConnectionPool {
    #[new]
    #[pyo3(signature = (concurrency = 10))]
    pub fn new(concurrency: usize) -> Self {
        // What the semaphore can hold: more is as good as no limit, and `in_flight` counts from it.
        let concurrency = concurrency.clamp(1, Semaphore::MAX_PERMITS);
        ConnectionPool {
            inner: Mutex::new(Arc::new(PoolInner::new(concurrency))),
            concurrency,
        }
    }

    /// Idle connections currently held (for tests and diagnostics).
    fn idle_connections(&self) -> usize {
        self.current().idle_count()
    }

    /// Requests currently holding one of the `concurrency` slots.
    fn in_flight(&self) -> usize {
        self.concurrency
            - self
                .current()
                .limit
                .available_permits()
                .min(self.concurrency)
    }

    /// Drops every idle connection.
    fn close(&self) {
        self.current().idle.lock().clear();
    }
}

pub async fn connect(origin: &Origin, connect_timeout: Option<Duration>) -> Result<Sender, Error> {
    let route = &origin.route;
    let (host, port) = match &route.proxy {
        Some(p) => (p.host.as_str(), p.port),
        None => (origin.host.as_str(), origin.port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = match with_timeout(connect_timeout, TcpStream::connect((host, port))).await {
        // A SOCKS proxy that does not answer is a plain connect timeout to urllib3.
        Err(()) if route.proxy.as_ref().is_some_and(|p| p.socks.is_none()) => {
            return Err(Error::new(ErrorKind::ProxyTimeout, "timed out"))
        }
        Err(()) => return Err(Error::new(ErrorKind::ConnectTimeout, "timed out")),
        Ok(Err(e)) => {
            let mut err = Error::from_io(&e, true);
            if e.raw_os_error().is_none() && err.kind == ErrorKind::Io {
                // tokio reports resolver failures as a bare message with no errno.
                err.kind = ErrorKind::Dns;
            }
            if let Some(p) = &route.proxy {
                if p.socks.is_some() {
                    // PySocks reports the socket error as is (requests: a ConnectionError).
                    err.kind = ErrorKind::Socks;
                    return Err(err);
                }
                return Err(proxy_unreachable(err));
            }
            return Err(err);
        }
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    // The generic steps are timed as one: a proxy's TLS, CONNECT and the origin's TLS.
    let steps = async {
        if let Some(Proxy {
            socks: Some(socks), ..
        }) = &route.proxy
        {
            let tunnel = proxy::socks_connect(tcp, &origin.host, origin.port, socks).await?;
            let (io, wire) = stamped(tunnel);
            return over(origin, io, wire).await;
        }
        let (tcp, wire) = stamped(tcp);
        match &route.proxy {
            Some(p) if p.tls => {
                // As urllib3 under requests: the proxy is verified like an https origin, and not at
                // all for a plain http one; it never gets the client certificate.
                let key = TlsKey {
                    verify: if origin.https {
                        route.tls.verify.clone()
                    } else {
                        tls::Verify::Off
                    },
                    client_cert: None,
                };
                let to_proxy = tls_connect(&key, &p.host, tcp, false)
                    .await
                    .map_err(proxy_unreachable)?;
                through(origin, to_proxy, p, wire).await
            }
            Some(p) => through(origin, tcp, p, wire).await,
            None => over(origin, tcp, wire).await,
        }
    };
    match with_timeout(connect_timeout, steps).await {
        Err(()) => Err(Error::new(ErrorKind::ConnectTimeout, "timed out")),
        Ok(r) => r,
    }
}

/// `tcp` reading with the kernel's receive stamps, and the cell they go to (None where the kernel
/// refused them).
fn stamped(tcp: TcpStream) -> (StampedTcp, Option<Arc<WireTimes>>) {
    let wire = Arc::new(WireTimes::default());
    let io = StampedTcp::new(tcp, wire.clone());
    let wire = io.stamping().then_some(wire);
    (io, wire)
}

/// A failure to reach the proxy itself is a proxy error, whatever its cause.
fn proxy_unreachable(err: Error) -> Error {
    Error {
        kind: ErrorKind::Proxy,
        ..err
    }
}

/// Over a connection to a proxy: plain http is forwarded, https tunnels with CONNECT.
async fn through<I>(
    origin: &Origin,
    mut io: I,
    proxy: &Proxy,
    wire: Option<Arc<WireTimes>>,
) -> Result<Sender, Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if !origin.https {
        return handshake(io, false, wire).await;
    }
    proxy::tunnel(&mut io, &origin.host, origin.port, proxy).await?;
    over(origin, io, wire).await
}

/// Speaks to the origin over `io`: TLS first for https, then HTTP/1.1 or HTTP/2.
async fn over<I>(origin: &Origin, io: I, wire: Option<Arc<WireTimes>>) -> Result<Sender, Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if !origin.https {
        return handshake(io, origin.route.http2_prior_knowledge, wire).await;
    }
    let stream = tls_connect(&origin.route.tls, &origin.host, io, true).await?;
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    handshake(stream, h2, wire).await
}

async fn tls_connect<I>(
    key: &TlsKey,
    host: &str,
    io: I,
    h2: bool,
) -> Result<tokio_rustls::client::TlsStream<I>, Error>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let sni = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let name =
        ServerName::try_from(sni).map_err(|e| Error::new(ErrorKind::InvalidUrl, e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(tls::config_for(key, h2)?);
    connector.connect(name, io).await.map_err(|e| tls_error(&e))
}

fn tls_error(e: &std::io::Error) -> Error {
    match e.get_ref() {
        Some(inner) => Error::new(ErrorKind::Tls, inner.to_string()),
        None => Error::from_io(e, true),
    }
}

async fn handshake<I>(io: I, h2: bool, wire: Option<Arc<WireTimes>>) -> Result<Sender, Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if h2 {
        let (sender, conn) = http2::handshake(crate::bridge::inline::Executor, TokioIo::new(io))
            .await
            .map_err(|e| Error::from_hyper(&e))?;
        crate::bridge::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H2(sender, wire))
    } else {
        let limit = Arc::new(ReadLimit::default());
        let (sender, conn) = http1::handshake(TokioIo::new(TimedIo::new(io, limit.clone())))
            .await
            .map_err(|e| Error::from_hyper(&e))?;
        crate::bridge::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H1(sender, limit, wire))
    }
}
