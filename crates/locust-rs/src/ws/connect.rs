//! Opening a WebSocket: TCP, rustls for wss:// (the same configs and `insecure` rule as the
//! HTTP engine, but offering only http/1.1 in ALPN, since the upgrade is an HTTP/1.1 request),
//! then the upgrade handshake by tungstenite. Errors are sorted into the engine's kinds.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;
use url::Url;

use super::watch::{Io, Watched};
use crate::errors::{Error, ErrorKind};
use crate::http::tls;
use crate::net::arrival::{self, WireTimes};
use crate::net::stamped::StampedTcp;
use crate::time::with_timeout;

pub type Socket = WebSocketStream<Watched>;

pub struct Spec {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub subprotocols: Vec<String>,
    pub timeout: Option<Duration>,
    pub insecure: bool,
    pub max_message_size: Option<usize>,
    /// Bytes that may wait to be written to a server that does not read (see `config`).
    pub max_write_buffer: usize,
}

/// What the handshake leaves behind.
pub struct Opened {
    pub socket: Socket,
    pub url: String,
    pub subprotocol: Option<String>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub handshake_ms: f64,
    /// When the socket's last bytes arrived by the kernel's stamp, and when a batch of messages
    /// went out (None: the kernel refused the stamps).
    pub wire: Option<Arc<WireTimes>>,
}

static TLS_VERIFIED: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
static TLS_INSECURE: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

fn tls_config(insecure: bool) -> Arc<rustls::ClientConfig> {
    let cell = if insecure {
        &TLS_INSECURE
    } else {
        &TLS_VERIFIED
    };
    cell.get_or_init(|| {
        let mut cfg = (*tls::config(insecure)).clone();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    })
    .clone()
}

/// tungstenite zero-fills the free part of its read buffer (up to `read_buffer_size`) before every
/// read; at the default 128 KiB that memset was a third of the whole process's CPU in the
/// ping-pong benchmark, and 128 MB of eager buffers for 1,000 connections. Bigger messages just
/// take more reads.
const READ_BUFFER_SIZE: usize = 8 * 1024;

/// tungstenite queues a pong for every ping it reads, whether or not the socket takes them: by
/// default without limit, so a server that pings and never reads grew the process by gigabytes.
/// `max_write_buffer` caps that queue (tungstenite then keeps only the latest pong, as RFC 6455
/// allows, and the connection fails once the queue is full: see `conn`). Below the cap,
/// tungstenite gathers small frames into writes of up to a quarter of it (128 KiB at most).
pub fn config(max_message_size: Option<usize>, max_write_buffer: usize) -> WebSocketConfig {
    let max_write_buffer = max_write_buffer.max(MIN_WRITE_BUFFER);
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .max_message_size(max_message_size)
        .max_frame_size(max_message_size)
        .write_buffer_size((max_write_buffer / 4).min(128 * 1024))
        // Twice the cap: a message of up to the cap (`send` refuses a bigger one) always fits
        // beside what is queued; `conn` fails the connection once the queue passes the cap.
        .max_write_buffer_size(max_write_buffer.saturating_mul(2))
}

/// The smallest write cap: a control frame with its header must always fit.
pub const MIN_WRITE_BUFFER: usize = 1024;

fn parse(url: &str) -> Result<(Url, bool, String, u16), Error> {
    let u =
        Url::parse(url).map_err(|e| Error::new(ErrorKind::InvalidUrl, format!("{e}: {url:?}")))?;
    let tls = match u.scheme() {
        "ws" => false,
        "wss" => true,
        other => {
            return Err(Error::new(
                ErrorKind::UnsupportedScheme,
                format!(
                    "unsupported scheme {other:?} (a WebSocket URL starts with ws:// or wss://)"
                ),
            ))
        }
    };
    let host = match u.host_str() {
        Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']'),
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!("no host in URL {url:?}"),
            ))
        }
    }
    .to_string();
    let port = u.port().unwrap_or(if tls { 443 } else { 80 });
    Ok((u, tls, host, port))
}

/// TCP, TLS and the upgrade, all within `spec.timeout`.
pub async fn open(spec: Spec) -> Result<Opened, Error> {
    let start = Instant::now();
    let timeout = spec.timeout;
    match with_timeout(timeout, open_inner(spec, start)).await {
        Err(()) => Err(Error::new(
            ErrorKind::ConnectTimeout,
            "timed out during the WebSocket handshake",
        )),
        Ok(r) => r,
    }
}

async fn open_inner(spec: Spec, start: Instant) -> Result<Opened, Error> {
    let (url, tls, host, port) = parse(&spec.url)?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| from_ws(e, "handshake"))?;
    let headers = request.headers_mut();
    for (k, v) in &spec.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| Error::new(ErrorKind::InvalidUrl, format!("invalid header name {k:?}")))?;
        let value = HeaderValue::from_str(v).map_err(|_| {
            Error::new(ErrorKind::InvalidUrl, format!("invalid header value {v:?}"))
        })?;
        headers.insert(name, value);
    }
    if !spec.subprotocols.is_empty() {
        let joined = spec.subprotocols.join(", ");
        let value = HeaderValue::from_str(&joined).map_err(|_| {
            Error::new(
                ErrorKind::InvalidUrl,
                format!("invalid subprotocols {joined:?}"),
            )
        })?;
        headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| {
            let mut err = Error::from_io(&e, true);
            if e.raw_os_error().is_none() && err.kind == ErrorKind::Io {
                err.kind = ErrorKind::Dns;
            }
            err
        })?;
    let _ = tcp.set_nodelay(true);
    let wire_times = Arc::new(WireTimes::default());
    let tcp = StampedTcp::new(tcp, wire_times.clone());
    let wire = tcp.stamping().then_some(wire_times);
    let io: Box<dyn Io> = if tls {
        let name = ServerName::try_from(host.clone())
            .map_err(|e| Error::new(ErrorKind::InvalidUrl, e.to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(tls_config(spec.insecure));
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|e| match e.get_ref() {
                Some(inner) => Error::new(ErrorKind::Tls, inner.to_string()),
                None => Error::from_io(&e, true),
            })?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let (socket, response) = tokio_tungstenite::client_async_with_config(
        request,
        Watched::new(io),
        Some(config(spec.max_message_size, spec.max_write_buffer)),
    )
    .await
    .map_err(|e| from_ws(e, "handshake"))?;
    // The upgrade's answer ends at the kernel's stamp of its last bytes, as an HTTP response does.
    let why = arrival::unstamped_reason();
    let handshake_ms =
        arrival::response_time(wire.as_deref(), start, start, why).as_secs_f64() * 1000.0;
    let subprotocol = response
        .headers()
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(Opened {
        socket,
        url: url.to_string(),
        subprotocol,
        status: response.status().as_u16(),
        headers,
        handshake_ms,
        wire,
    })
}

/// Sorts a tungstenite error into the engine's kinds; `during` names the phase for messages.
pub fn from_ws(e: WsError, during: &str) -> Error {
    match e {
        WsError::Http(resp) => {
            let status = resp.status();
            let mut err = Error::new(
                ErrorKind::WsHandshake,
                format!(
                    "WebSocket handshake refused: HTTP {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                )
                .trim_end()
                .to_string(),
            );
            err.errno = Some(i32::from(status.as_u16()));
            err
        }
        WsError::Io(io) => Error::from_io(&io, false),
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => Error::new(
            ErrorKind::MessageTooBig,
            format!("message of {size} bytes is over max_message_size ({max_size} bytes)"),
        ),
        WsError::Capacity(c) => Error::new(ErrorKind::Protocol, format!("{during}: {c}")),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
        | WsError::ConnectionClosed
        | WsError::AlreadyClosed => closed(1006, "the connection was closed without a close frame"),
        WsError::Protocol(p) => Error::new(
            ErrorKind::Protocol,
            format!("WebSocket protocol error ({during}): {p}"),
        ),
        WsError::Utf8(s) => Error::new(
            ErrorKind::Protocol,
            format!("WebSocket protocol error ({during}): invalid UTF-8 in a text message: {s}"),
        ),
        WsError::WriteBufferFull(_) => closed(
            1006,
            "the server is not reading: ws_max_write_buffer is full; the connection was dropped",
        ),
        WsError::Tls(t) => Error::new(ErrorKind::Tls, t.to_string()),
        WsError::Url(u) => Error::new(ErrorKind::InvalidUrl, u.to_string()),
        other => Error::new(ErrorKind::Protocol, format!("{during}: {other}")),
    }
}

/// The terminal error of a closed connection, carrying the close code.
pub fn closed(code: u16, message: impl Into<String>) -> Error {
    let mut e = Error::new(ErrorKind::WsClosed, message);
    e.errno = Some(i32::from(code));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_connecting() {
        assert!(parse("ws://127.0.0.1:1/x").is_ok_and(|(_, tls, _, port)| !tls && port == 1));
        assert!(parse("wss://h/x").is_ok_and(|(_, tls, _, port)| tls && port == 443));
        assert!(parse("ws://[::1]/").is_ok_and(|(_, _, host, port)| host == "::1" && port == 80));
        let e = parse("http://h/").err();
        assert_eq!(e.map(|e| e.kind), Some(ErrorKind::UnsupportedScheme));
        assert_eq!(
            parse("ws://").err().map(|e| e.kind),
            Some(ErrorKind::InvalidUrl)
        );
    }

    #[test]
    fn a_refused_upgrade_carries_its_status() {
        let resp = http::Response::builder().status(401).body(None).ok();
        let e = resp.map(|r| from_ws(WsError::Http(Box::new(r)), "handshake"));
        let e = e.as_ref();
        assert_eq!(e.map(|e| e.kind), Some(ErrorKind::WsHandshake));
        assert_eq!(e.and_then(|e| e.errno), Some(401));
        assert_eq!(
            e.map(|e| e.message.as_str()),
            Some("WebSocket handshake refused: HTTP 401 Unauthorized")
        );
    }

    #[test]
    fn oversize_and_closed_errors_are_readable() {
        let e = from_ws(
            WsError::Capacity(CapacityError::MessageTooLong {
                size: 10,
                max_size: 5,
            }),
            "reading",
        );
        assert_eq!(e.kind, ErrorKind::MessageTooBig);
        assert_eq!(
            e.message,
            "message of 10 bytes is over max_message_size (5 bytes)"
        );
        let c = from_ws(WsError::ConnectionClosed, "reading");
        assert_eq!((c.kind, c.errno), (ErrorKind::WsClosed, Some(1006)));
    }
}
