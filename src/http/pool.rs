//! Connections owned per user, as a browser owns its own: idle HTTP/1.1 connections per
//! origin, or one shared HTTP/2 connection, plus the semaphore behind Locust's `concurrency`.
//! Each connection is driven by its own tokio task; a request only borrows its sender.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use pyo3::prelude::*;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::tls;
use crate::errors::{Error, ErrorKind};

pub type Body = Full<Bytes>;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Origin {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

pub enum Sender {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

impl Sender {
    pub fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ConnectOpts {
    pub connect_timeout: Option<Duration>,
    pub insecure: bool,
    pub proxy: Option<(String, u16)>,
    pub http2_prior_knowledge: bool,
}

/// The state of one pool in one process.
pub struct PoolInner {
    pid: u32,
    idle: Mutex<HashMap<Origin, Vec<Sender>>>,
    pub limit: Arc<Semaphore>,
}

impl PoolInner {
    fn new(concurrency: usize) -> Self {
        PoolInner {
            pid: crate::runtime::current_pid(),
            idle: Mutex::new(HashMap::new()),
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
                Sender::H2(s) => Some(Sender::H2(s.clone())),
                Sender::H1(_) => list.pop(),
            };
        }
        None
    }

    pub fn checkin(&self, origin: &Origin, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        match idle.get_mut(origin) {
            Some(list) => {
                if matches!(sender, Sender::H2(_))
                    && list
                        .iter()
                        .any(|s| matches!(s, Sender::H2(_)) && !s.is_closed())
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
        if inner.pid != crate::runtime::current_pid() {
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

pub async fn with_timeout<T, F>(limit: Option<Duration>, fut: F) -> Result<T, ()>
where
    F: Future<Output = T>,
{
    match limit {
        Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| ()),
        None => Ok(fut.await),
    }
}

pub async fn connect(origin: &Origin, opts: &ConnectOpts) -> Result<Sender, Error> {
    let (host, port) = match &opts.proxy {
        Some((h, p)) => (h.as_str(), *p),
        None => (origin.host.as_str(), origin.port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut tcp = match with_timeout(opts.connect_timeout, TcpStream::connect((host, port))).await {
        Err(()) => return Err(Error::new(ErrorKind::ConnectTimeout, "timed out")),
        Ok(Err(e)) => {
            let mut err = Error::from_io(&e, true);
            if e.raw_os_error().is_none() && err.kind == ErrorKind::Io {
                // tokio reports resolver failures as a bare message with no errno.
                err.kind = ErrorKind::Dns;
            }
            return Err(err);
        }
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    if !origin.https {
        return handshake(tcp, opts.http2_prior_knowledge).await;
    }
    if opts.proxy.is_some() {
        with_timeout(opts.connect_timeout, tunnel(&mut tcp, origin))
            .await
            .map_err(|()| Error::new(ErrorKind::ConnectTimeout, "timed out"))??;
    }
    let sni = origin
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let name =
        ServerName::try_from(sni).map_err(|e| Error::new(ErrorKind::InvalidUrl, e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(tls::config(opts.insecure));
    let stream = match with_timeout(opts.connect_timeout, connector.connect(name, tcp)).await {
        Err(()) => return Err(Error::new(ErrorKind::ConnectTimeout, "timed out")),
        Ok(Err(e)) => return Err(tls_error(&e)),
        Ok(Ok(s)) => s,
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    handshake(stream, h2).await
}

fn tls_error(e: &std::io::Error) -> Error {
    match e.get_ref() {
        Some(inner) => Error::new(ErrorKind::Tls, inner.to_string()),
        None => Error::from_io(e, true),
    }
}

async fn handshake<I>(io: I, h2: bool) -> Result<Sender, Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if h2 {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .map_err(|e| Error::from_hyper(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H2(sender))
    } else {
        let (sender, conn) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| Error::from_hyper(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H1(sender))
    }
}

/// Opens a CONNECT tunnel through an HTTP proxy for an https origin.
async fn tunnel(tcp: &mut TcpStream, origin: &Origin) -> Result<(), Error> {
    let authority = format!("{}:{}", origin.host, origin.port);
    let req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    tcp.write_all(req.as_bytes())
        .await
        .map_err(|e| Error::from_io(&e, true))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    // A proxy's CONNECT answer is a status line and a few headers; 8 KiB bounds a bad peer.
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > 8192 {
            return Err(Error::new(
                ErrorKind::Proxy,
                "proxy CONNECT response too large",
            ));
        }
        let n = tcp
            .read(&mut chunk)
            .await
            .map_err(|e| Error::from_io(&e, true))?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Proxy,
                "proxy closed the connection during CONNECT",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let status_line = buf
        .split(|b| *b == b'\n')
        .next()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let ok = status_line.split_whitespace().nth(1) == Some("200");
    if !ok {
        return Err(Error::new(
            ErrorKind::Proxy,
            format!("proxy refused CONNECT: {}", status_line.trim()),
        ));
    }
    Ok(())
}
