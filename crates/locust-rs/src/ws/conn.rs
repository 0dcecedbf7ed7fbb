//! One WebSocket connection: a tokio task owns the socket; Python holds a `WsConnection`.
//!
//! Sends are queued on a channel without waiting (the task writes them in order, batching what
//! has piled up into one flush). Received messages land in an inbox with their arrival stamp.
//! Receiving is two-phase: `try_recv` takes a message if one is there, otherwise `wait` returns
//! a ticket that completes once the inbox has something (or the connection ended). A greenlet
//! killed during `wait` so leaves its message in the inbox for the next `recv`: nothing is taken
//! until Python takes it synchronously. Ping/pong is answered by tungstenite as it reads.
//!
//! Both directions are bounded, so that a server that floods or stops reading costs a bounded
//! amount of memory:
//! - the inbox holds at most `max_queue` bytes; at the cap the task stops reading the socket
//!   until Python takes a message, so the kernel's buffers fill and TCP makes the server wait,
//!   as it would for a blocking client (websocket-client) that is not calling `recv`;
//! - messages queued to send plus the bytes the socket would not take stay under
//!   `max_write`; past it the connection fails at once, as it does when tungstenite's own write
//!   buffer (which holds the pongs owed to a pinging server) fills.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::connect::{self, closed, from_ws, Opened, Socket, Spec};
use super::{stamp, COUNTERS};
use crate::bridge::completion::IntoPyValue;
use crate::bridge::{self, Ticket};
use crate::errors::python::{to_pyerr, NativeError};
use crate::errors::{Error, ErrorKind};
use crate::net::arrival::{self, WireTimes};
use crate::time::with_timeout;

enum Payload {
    Text(Utf8Bytes),
    Binary(Bytes),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::Text(t) => t.len(),
            Payload::Binary(b) => b.len(),
        }
    }
}

struct Received {
    payload: Payload,
    at: u64,
}

enum Cmd {
    /// A message and its send stamp (when Python queued it, on the clock of `stamp`).
    Send(Message, u64),
    Close(CloseFrame),
}

/// The last batch of messages written: the send stamps of its first and last message, and when
/// it went out (the moment just before its first write, on the clock of `stamp`). Python's send
/// stamp is when a message was queued; the task may write it later (a busy engine thread), and a
/// round trip starts when it went out.
#[derive(Default, Clone, Copy)]
struct Written {
    first: u64,
    last: u64,
    at: u64,
}

#[derive(Default)]
struct Inbox {
    queue: VecDeque<Received>,
    /// Set once the connection is over; reported after the queued messages.
    end: Option<Error>,
}

/// What one queued message counts against the inbox's cap beyond its payload (its entry and the
/// payload's allocation), so that a flood of empty frames is bounded too.
const ENTRY_COST: usize = 64;

impl Received {
    fn cost(&self) -> usize {
        self.payload.len() + ENTRY_COST
    }
}

#[derive(Default)]
struct Stats {
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_received: AtomicU64,
}

struct Shared {
    inbox: Mutex<Inbox>,
    /// What the inbox holds, counted as `Received::cost`; changed under the inbox's lock, read
    /// without it by the task on every turn.
    queued: AtomicUsize,
    /// The inbox's cap, in bytes (see the module's doc).
    max_queue: usize,
    /// Wakes the task when Python takes a message from a full inbox.
    drained: Notify,
    /// Payload bytes of the messages sent by Python and not yet taken by the task.
    queued_out: AtomicUsize,
    /// Bytes that tungstenite could not write (kept current by `watch::Watched`).
    unsent: Arc<AtomicUsize>,
    /// The cap on `queued_out` + `unsent`.
    max_write: usize,
    /// Wakes `wait` tickets: a message arrived or the connection ended.
    readable: Notify,
    /// Wakes `close` tickets once the task has finished.
    finished: Notify,
    done: AtomicBool,
    stats: Stats,
    close_code: Mutex<Option<(u16, String)>>,
    /// The kernel's stamps on this connection's socket (None: refused).
    wire: Option<Arc<WireTimes>>,
    written: Mutex<Written>,
}

impl Shared {
    /// When a message completed by the last read arrived: the kernel's stamp of the last bytes
    /// read (a read that completed several messages stamps them all with its last segment's),
    /// else now.
    fn arrived(&self) -> Instant {
        let stamped = self.wire.as_deref().and_then(WireTimes::latest);
        let why = if self.wire.is_some() {
            "a read without a stamp"
        } else {
            arrival::unstamped_reason()
        };
        arrival::count(stamped.is_some(), why);
        stamped.unwrap_or_else(Instant::now)
    }

    fn push(&self, payload: Payload) {
        let len = payload.len() as u64;
        self.stats.messages_received.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes_received.fetch_add(len, Ordering::Relaxed);
        COUNTERS.messages_received.fetch_add(1, Ordering::Relaxed);
        COUNTERS.bytes_received.fetch_add(len, Ordering::Relaxed);
        let received = Received {
            payload,
            at: stamp(self.arrived()),
        };
        {
            let mut inbox = self.inbox.lock();
            self.queued.fetch_add(received.cost(), Ordering::Relaxed);
            inbox.queue.push_back(received);
        }
        self.readable.notify_waiters();
    }

    /// True while the inbox is at its cap: the task does not read.
    fn full(&self) -> bool {
        self.queued.load(Ordering::Relaxed) >= self.max_queue
    }

    /// Bytes waiting to be written, sent by Python or owed by tungstenite.
    fn backlog(&self) -> usize {
        self.queued_out.load(Ordering::Relaxed) + self.unsent.load(Ordering::Relaxed)
    }

    fn send_backlog_error(&self) -> Error {
        closed(
            1006,
            format!(
                "the server is not reading: {} bytes wait to be sent, over ws_max_write_buffer ({} bytes); \
                 the connection was dropped",
                self.backlog(),
                self.max_write
            ),
        )
    }

    fn finish(&self, end: Error) {
        {
            let mut inbox = self.inbox.lock();
            if inbox.end.is_none() {
                inbox.end = Some(end);
            }
        }
        self.done.store(true, Ordering::Release);
        self.readable.notify_waiters();
        self.finished.notify_waiters();
    }

    fn readable(&self) -> bool {
        let inbox = self.inbox.lock();
        !inbox.queue.is_empty() || inbox.end.is_some()
    }
}

/// Keeps the process's open-connection count true, and wakes every waiter, however the task ends:
/// if it panicked or was dropped with the runtime, the connection still ends with an error
/// instead of leaving a `recv` or `close` waiting forever.
struct OpenGuard(Arc<Shared>);

impl OpenGuard {
    fn new(shared: Arc<Shared>) -> Self {
        COUNTERS.open.fetch_add(1, Ordering::Relaxed);
        COUNTERS.opened.fetch_add(1, Ordering::Relaxed);
        OpenGuard(shared)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        COUNTERS.open.fetch_sub(1, Ordering::Relaxed);
        if !self.0.done.load(Ordering::Acquire) {
            self.0.finish(Error::new(
                ErrorKind::Internal,
                "the WebSocket connection task ended unexpectedly",
            ));
        }
    }
}

/// How long the closing handshake may take before the socket is dropped anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A pong is at most this long on the wire (125 bytes of payload, a 2-byte header, a mask).
const MAX_PONG: usize = 131;

async fn run(
    mut ws: Socket,
    mut rx: UnboundedReceiver<Cmd>,
    shared: Arc<Shared>,
    guard: OpenGuard,
) {
    let _guard = guard;
    // Text and binary messages delivered so far, to tell which frame a read error is about.
    let mut delivered = 0u64;
    let end = loop {
        let full = shared.full();
        tokio::select! {
            biased;
            cmd = rx.recv() => match cmd {
                Some(Cmd::Send(m, queued)) => {
                    if let Err(e) = write_batch(&mut ws, (m, queued), &mut rx, &shared).await {
                        break e;
                    }
                }
                Some(Cmd::Close(frame)) => {
                    let code = u16::from(frame.code);
                    let reason = frame.reason.to_string();
                    close_handshake(&mut ws, frame).await;
                    break closed(code, closed_by_client(code, &reason));
                }
                // Every Python handle is gone: say goodbye politely.
                None => {
                    close_handshake(&mut ws, CloseFrame { code: CloseCode::Away, reason: Utf8Bytes::from_static("") }).await;
                    break closed(1001, "the connection was dropped by the client");
                }
            },
            // Python took a message from the full inbox: look again.
            () = shared.drained.notified(), if full => {}
            msg = ws.next(), if !full => match msg {
                Some(Ok(Message::Text(t))) => {
                    delivered += 1;
                    shared.push(Payload::Text(t));
                }
                Some(Ok(Message::Binary(b))) => {
                    delivered += 1;
                    shared.push(Payload::Binary(b));
                }
                // tungstenite queued the pong; if its write buffer is full the server is not
                // reading, and pings would only replace each other there from now on.
                Some(Ok(Message::Ping(_))) => {
                    if shared.unsent.load(Ordering::Relaxed) + MAX_PONG > shared.max_write.max(connect::MIN_WRITE_BUFFER) {
                        break shared.send_backlog_error();
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    *shared.close_code.lock() = Some((code, reason.clone()));
                    // tungstenite queued the close reply; reading on flushes it and ends.
                    let _ = with_timeout(Some(CLOSE_TIMEOUT), async {
                        while let Some(Ok(_)) = ws.next().await {}
                    })
                    .await;
                    break closed(code, closed_by_server(code, &reason));
                }
                // Ping is answered by tungstenite itself; pong and raw frames carry nothing.
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let err = if matches!(e, WsError::Utf8(_)) && ws.get_ref().frames().at_close(delivered) {
                        Error::new(
                            ErrorKind::Protocol,
                            "WebSocket protocol error (reading): the reason in the server's close frame is not valid UTF-8",
                        )
                    } else {
                        from_ws(e, "reading")
                    };
                    if err.kind == ErrorKind::MessageTooBig {
                        let frame = CloseFrame { code: CloseCode::Size, reason: Utf8Bytes::from_static("message too big") };
                        close_handshake(&mut ws, frame).await;
                    }
                    break err;
                }
                None => break closed(1006, "the server closed the connection without a close frame"),
            },
        }
    };
    if let (ErrorKind::WsClosed, Some(code)) = (end.kind, end.errno) {
        let mut cc = shared.close_code.lock();
        if cc.is_none() {
            *cc = Some((code as u16, String::new()));
        }
    }
    shared.finish(end);
}

fn closed_by_server(code: u16, reason: &str) -> String {
    if reason.is_empty() {
        format!("the server closed the connection (code {code})")
    } else {
        format!("the server closed the connection (code {code}, reason {reason:?})")
    }
}

fn closed_by_client(code: u16, reason: &str) -> String {
    if reason.is_empty() {
        format!("the connection was closed by the client (code {code})")
    } else {
        format!("the connection was closed by the client (code {code}, reason {reason:?})")
    }
}

/// Writes `first` and whatever else is already queued, then flushes once; notes when the batch
/// went out (`Written`).
async fn write_batch(
    ws: &mut Socket,
    first: (Message, u64),
    rx: &mut UnboundedReceiver<Cmd>,
    shared: &Shared,
) -> Result<(), Error> {
    let begun = Instant::now();
    if let Some(wire) = &shared.wire {
        wire.arm_send();
    }
    let mut batch = Written {
        first: first.1,
        last: first.1,
        at: 0,
    };
    let mut next = Some(first.0);
    let mut pending_close = None;
    while let Some(m) = next.take() {
        let len = m.len() as u64;
        shared.queued_out.fetch_sub(m.len(), Ordering::Relaxed);
        ws.feed(m).await.map_err(|e| from_ws(e, "sending"))?;
        shared.stats.messages_sent.fetch_add(1, Ordering::Relaxed);
        shared.stats.bytes_sent.fetch_add(len, Ordering::Relaxed);
        COUNTERS.messages_sent.fetch_add(1, Ordering::Relaxed);
        COUNTERS.bytes_sent.fetch_add(len, Ordering::Relaxed);
        match rx.try_recv() {
            Ok(Cmd::Send(m, queued)) => {
                batch.last = queued;
                next = Some(m);
            }
            Ok(Cmd::Close(f)) => pending_close = Some(f),
            Err(_) => {}
        }
    }
    ws.flush().await.map_err(|e| from_ws(e, "sending"))?;
    // The socket noted its first write since `arm_send`; without stamps, the batch's start.
    let went = shared
        .wire
        .as_deref()
        .and_then(|w| w.sent(begun))
        .unwrap_or(begun);
    batch.at = stamp(went);
    *shared.written.lock() = batch;
    if let Some(frame) = pending_close {
        let code = u16::from(frame.code);
        let reason = frame.reason.to_string();
        close_handshake(ws, frame).await;
        return Err(closed(code, closed_by_client(code, &reason)));
    }
    Ok(())
}

/// Sends a close frame and reads until the server's reply (or the timeout).
async fn close_handshake(ws: &mut Socket, frame: CloseFrame) {
    let _ = with_timeout(Some(CLOSE_TIMEOUT), async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

/// An open WebSocket connection. Made by `ws_connect`; see `locust_rs.websocket` for the API.
/// A wait or a close that finished: `True` in Python.
pub struct Ready;

impl IntoPyValue for Ready {
    fn into_py_value(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        Ok(pyo3::types::PyBool::new(py, true).to_owned().into_any())
    }
}

impl IntoPyValue for WsConnection {
    fn into_py_value(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        Ok(Bound::new(py, self)?.into_any())
    }
}

#[pyclass(module = "locust_rs._native", frozen)]
pub struct WsConnection {
    shared: Arc<Shared>,
    tx: UnboundedSender<Cmd>,
    task: AbortHandle,
    /// The process whose runtime runs the connection's task; a forked child has no such task.
    pid: u32,
    #[pyo3(get)]
    url: String,
    #[pyo3(get)]
    subprotocol: Option<String>,
    #[pyo3(get)]
    status: u16,
    headers: Vec<(String, String)>,
    /// Milliseconds from the start of the connect until the upgrade completed (TCP, TLS, HTTP).
    #[pyo3(get)]
    handshake_ms: f64,
}

fn start(opened: Opened, max_queue: usize, max_write: usize) -> WsConnection {
    let shared = Arc::new(Shared {
        inbox: Mutex::new(Inbox::default()),
        queued: AtomicUsize::new(0),
        max_queue,
        drained: Notify::new(),
        queued_out: AtomicUsize::new(0),
        unsent: opened.socket.get_ref().unsent(),
        max_write,
        readable: Notify::new(),
        finished: Notify::new(),
        done: AtomicBool::new(false),
        stats: Stats::default(),
        close_code: Mutex::new(None),
        wire: opened.wire,
        written: Mutex::new(Written::default()),
    });
    let (tx, rx) = unbounded_channel();
    let guard = OpenGuard::new(shared.clone());
    let task = crate::bridge::spawn(run(opened.socket, rx, shared.clone(), guard)).abort_handle();
    WsConnection {
        shared,
        tx,
        task,
        pid: crate::bridge::runtime::current_pid(),
        url: opened.url,
        subprotocol: opened.subprotocol,
        status: opened.status,
        headers: opened.headers,
        handshake_ms: opened.handshake_ms,
    }
}

/// The default caps of the inbox and of the bytes waiting to be sent, per connection.
pub const DEFAULT_MAX_QUEUE: usize = 16 * 1024 * 1024;
pub const DEFAULT_MAX_WRITE: usize = 16 * 1024 * 1024;

/// Opens a WebSocket. The ticket completes with a `WsConnection` or a `NativeError`.
#[pyfunction]
#[pyo3(signature = (url, headers = None, subprotocols = None, timeout = None, insecure = true, max_message_size = None, max_queue = DEFAULT_MAX_QUEUE, max_write_buffer = DEFAULT_MAX_WRITE))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments, one for one
pub fn ws_connect(
    url: String,
    headers: Option<Vec<(String, String)>>,
    subprotocols: Option<Vec<String>>,
    timeout: Option<f64>,
    insecure: bool,
    max_message_size: Option<usize>,
    max_queue: usize,
    max_write_buffer: usize,
) -> PyResult<Ticket> {
    let headers = headers.unwrap_or_default();
    crate::http::check_header_count(headers.len()).map_err(to_pyerr)?;
    let spec = Spec {
        url,
        headers,
        subprotocols: subprotocols.unwrap_or_default(),
        timeout: crate::time::timeout(timeout).map_err(to_pyerr)?,
        insecure,
        max_message_size: max_message_size.filter(|n| *n > 0),
        max_write_buffer,
    };
    let max_queue = max_queue.max(1);
    bridge::submit(async move {
        connect::open(spec)
            .await
            .map(|opened| start(opened, max_queue, max_write_buffer))
    })
}

impl WsConnection {
    /// The error of a connection used in a forked child: its task lives in the parent.
    fn foreign(&self) -> Option<Error> {
        (self.pid != crate::bridge::runtime::current_pid()).then(|| {
            Error::new(
                ErrorKind::WsClosed,
                "this WebSocket connection belongs to the parent process (it was opened before a fork); \
                 open a new one in this process",
            )
        })
    }

    fn ended(&self) -> bool {
        self.pid != crate::bridge::runtime::current_pid()
            || self.shared.done.load(Ordering::Acquire)
    }
}

#[pymethods]
impl WsConnection {
    /// Queues a text (str) or binary (bytes-like) message. Returns the send stamp (ns, on the
    /// clock of `ws_clock_ns`), or None if the connection is already over.
    fn send(&self, data: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
        let msg = if let Ok(s) = data.cast::<PyString>() {
            Message::Text(Utf8Bytes::from(s.to_str()?.to_owned()))
        } else if let Ok(b) = data.cast::<PyBytes>() {
            Message::Binary(Bytes::copy_from_slice(b.as_bytes()))
        } else {
            let v: Vec<u8> = data.extract().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "a WebSocket message is str or bytes, not {}",
                    data.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            Message::Binary(Bytes::from(v))
        };
        if self.ended() {
            return Ok(None);
        }
        let shared = &self.shared;
        if msg.len() > shared.max_write {
            // Could never be written whole: a mistake in the test, not the server's doing.
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "a WebSocket message of {} bytes is over ws_max_write_buffer ({} bytes)",
                msg.len(),
                shared.max_write
            )));
        }
        shared.queued_out.fetch_add(msg.len(), Ordering::Relaxed);
        // Over the cap only while the socket pushes back: a burst of sends to a server that reads is
        // taken by the task as fast as the socket takes it.
        if shared.backlog() > shared.max_write && shared.unsent.load(Ordering::Relaxed) > 0 {
            // The task may be stuck writing to a server that does not read: end it from here.
            shared.finish(shared.send_backlog_error());
            self.task.abort();
            return Ok(None);
        }
        let at = stamp(Instant::now());
        Ok(self.tx.send(Cmd::Send(msg, at)).ok().map(|()| at))
    }

    /// When the message whose send stamp was `queued` went out, if it was in the last batch
    /// written; else `queued` itself. A round trip starts there: the time a message waited for
    /// the engine's thread is not the server's.
    fn written_at(&self, queued: u64) -> u64 {
        let w = *self.shared.written.lock();
        if w.first <= queued && queued <= w.last && w.at != 0 {
            w.at.max(queued)
        } else {
            queued
        }
    }

    /// The next received message as `(str | bytes, arrival stamp ns, payload bytes)`, None if nothing has
    /// arrived yet, or the `NativeError` that ended the connection once all messages were taken.
    fn try_recv<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(e) = self.foreign() {
            return Ok(Bound::new(py, NativeError::from(e))?.into_any());
        }
        let mut inbox = self.shared.inbox.lock();
        match inbox.queue.pop_front() {
            Some(r) => {
                let was = self.shared.queued.fetch_sub(r.cost(), Ordering::Relaxed);
                drop(inbox);
                let was_full = was >= self.shared.max_queue;
                if was_full {
                    self.shared.drained.notify_one();
                }
                let payload = match &r.payload {
                    Payload::Text(t) => PyString::new(py, t.as_str()).into_any(),
                    Payload::Binary(b) => PyBytes::new(py, b).into_any(),
                };
                let len = r.payload.len().into_pyobject(py)?.into_any();
                Ok(
                    PyTuple::new(py, [payload, r.at.into_pyobject(py)?.into_any(), len])?
                        .into_any(),
                )
            }
            None => match &inbox.end {
                Some(e) => Ok(Bound::new(py, NativeError::from(e.clone()))?.into_any()),
                None => Ok(py.None().into_bound(py)),
            },
        }
    }

    /// Returns a ticket that completes (with True) once a message is waiting or the connection
    /// is over, or with a timeout error. Takes nothing: cancelling it loses no message.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, timeout: Option<f64>) -> PyResult<Ticket> {
        let limit = crate::time::timeout(timeout).map_err(to_pyerr)?;
        if let Some(e) = self.foreign() {
            return bridge::submit(async move { Err::<Ready, _>(e) });
        }
        let shared = self.shared.clone();
        bridge::submit(async move {
            let ready = async {
                loop {
                    let notified = shared.readable.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if shared.readable() {
                        return;
                    }
                    notified.await;
                }
            };
            with_timeout(limit, ready)
                .await
                .map(|()| Ready)
                .map_err(|()| Error::new(ErrorKind::Timeout, "timed out waiting for a message"))
        })
    }

    /// Starts the closing handshake (if the connection is still open) and returns a ticket that
    /// completes once the connection is over (at most about 5 s later).
    #[pyo3(signature = (code = 1000, reason = String::new()))]
    fn close(&self, code: u16, reason: String) -> PyResult<Ticket> {
        if self.foreign().is_some() {
            return bridge::submit(async { Ready });
        }
        if !self.shared.done.load(Ordering::Acquire) {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: Utf8Bytes::from(reason),
            };
            let _ = self.tx.send(Cmd::Close(frame));
        }
        let shared = self.shared.clone();
        let task = self.task.clone();
        bridge::submit(async move {
            let finished = async {
                loop {
                    let notified = shared.finished.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if shared.done.load(Ordering::Acquire) {
                        break;
                    }
                    notified.await;
                }
            };
            // The task may be stuck in a write to a server that stopped reading: give up on it.
            if with_timeout(Some(CLOSE_TIMEOUT + Duration::from_secs(1)), finished)
                .await
                .is_err()
            {
                shared.finish(closed(
                    1006,
                    "the closing handshake did not finish in time; the connection was dropped",
                ));
                task.abort();
            }
            Ready
        })
    }

    /// False once the connection is over (closed by either side, or failed).
    #[getter]
    fn open(&self) -> bool {
        !self.ended()
    }

    /// Messages received and not yet taken.
    #[getter]
    fn pending(&self) -> usize {
        self.shared.inbox.lock().queue.len()
    }

    /// `(code, reason)` of the close, once the connection is over (1006: no close frame).
    #[getter]
    fn close_status(&self) -> Option<(u16, String)> {
        self.shared.close_code.lock().clone()
    }

    /// The error that ended the connection, once it is over.
    #[getter]
    fn error(&self) -> Option<NativeError> {
        self.foreign()
            .or_else(|| self.shared.inbox.lock().end.clone())
            .map(NativeError::from)
    }

    /// The upgrade response's headers as (lowercase name, value) pairs.
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for (k, v) in &self.headers {
            list.append((k.as_str(), v.as_str()))?;
        }
        Ok(list)
    }

    /// `(messages_sent, bytes_sent, messages_received, bytes_received)` of this connection.
    fn stats(&self) -> (u64, u64, u64, u64) {
        let s = &self.shared.stats;
        (
            s.messages_sent.load(Ordering::Relaxed),
            s.bytes_sent.load(Ordering::Relaxed),
            s.messages_received.load(Ordering::Relaxed),
            s.bytes_received.load(Ordering::Relaxed),
        )
    }
}
