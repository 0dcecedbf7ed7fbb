"""WebSocket users with the I/O in Rust (tokio-tungstenite), behind the same bridge as the HTTP engine.

A minimal locustfile::

    from locust import task
    from locust_rs import WebSocketUser

    class Chat(WebSocketUser):
        host = "http://127.0.0.1:8000"      # http -> ws, https -> wss

        def on_start(self):
            self.ws = self.connect("/api/realtime/ws?token=...", name="/api/realtime/ws")

        @task
        def ping(self):
            self.ws.request({"type": "ping"}, reply="pong")

        @task
        def ask(self):
            r = self.ws.request({"type": "message", "content": "hi"}, reply=("chunk", "message_complete"),
                                until="message_complete", name="chat")
            assert r.json()["type"] == "message_complete"

What is reported to ``events.request`` (see ``docs/websocket.md``):

========== ================================================================= =====================================
type       when                                                              response_time
========== ================================================================= =====================================
``WS``     ``connect`` (the upgrade handshake), name = path or ``name=``     connect start -> upgrade done (TCP,
                                                                             TLS and HTTP upgrade)
``WSRT``   ``request``: the reply, or the last frame of a streamed reply     send -> last frame of the reply
``WSFF``   ``request`` with ``until=`` (a streamed reply): the first frame   send -> first frame of the reply
``WSRECV`` a failed ``recv`` (timeout, closed by the server, too big, ...)   time spent waiting
``WSSEND`` a failed ``send`` (the connection is over)                        0
========== ================================================================= =====================================

Times are measured in Rust, so a busy Python thread does not inflate them: a round trip starts when the message went
out (the moment before the engine wrote it) and ends at the kernel's receive stamp of the reply's last bytes, where the
kernel gives stamps (Linux), else when the engine read them (docs/metrics.md, "Which clock").
"""

from __future__ import annotations

from locust import User
from locust.exception import StopTest

import functools
import json as _json
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import gevent
import gevent.event

from locust_rs import _native, otel
from locust_rs import arrival as _arrival
from locust_rs._errors.websocket import (
    MessageTooBig,
    WebSocketClosed,
    WebSocketConnectionError,
    WebSocketError,
    WebSocketHandshakeError,
    WebSocketProtocolError,
    WebSocketTimeout,
)
from locust_rs._errors.websocket import to_exception as _exception
from locust_rs._gevent import bridge as _bridge
from locust_rs.stats.record import fire_request

__all__ = [
    "MessageTooBig",
    "WebSocket",
    "WebSocketClosed",
    "WebSocketConnectionError",
    "WebSocketError",
    "WebSocketHandshakeError",
    "WebSocketMixin",
    "WebSocketProtocolError",
    "WebSocketReply",
    "WebSocketTimeout",
    "WebSocketUser",
]

logger = logging.getLogger(__name__)

Message = str | bytes

_NATIVE_ERROR = _native.NativeError
_DEFAULT: Any = object()


def _message_type(message: Message) -> Any:
    """The ``type`` field of a JSON object message, else None."""
    if isinstance(message, bytes) or not message.startswith("{"):
        return None
    try:
        decoded = _json.loads(message)
    except ValueError:
        return None
    return decoded.get("type") if isinstance(decoded, dict) else None


def _matcher(spec) -> Callable[[Message], bool] | None:
    """A predicate from ``reply=``/``until=``: None (anything), a callable, a message type, or several types."""
    if spec is None or callable(spec):
        return spec
    if isinstance(spec, str):
        return lambda m: _message_type(m) == spec
    if isinstance(spec, Iterable):
        types = frozenset(spec)
        return lambda m: _message_type(m) in types
    raise TypeError(f"expected a predicate, a message type or a collection of types, not {spec!r}")


def _checked(timeout: float | None) -> float | None:
    """A timeout as given, or ``ValueError`` for zero, below zero and NaN, in the words of Python's sockets (and of
    the engine, which refuses them too): taken as "wait forever" they would hide the mistake."""
    if timeout is not None and not timeout > 0:
        raise ValueError("Invalid value NaN (not a number)" if timeout != timeout else "Timeout value out of range")
    return timeout


def _cap(name: str, value) -> int:
    """A buffer cap in bytes: a positive int, or ``ValueError`` naming the attribute."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise ValueError(f"{name} must be a positive number of bytes, not {value!r}")
    return value


def _encode(message) -> Message:
    if isinstance(message, str | bytes):
        return message
    if isinstance(message, bytearray | memoryview):
        return bytes(message)
    return _json.dumps(message)


class WebSocketReply:
    """The reply to :py:meth:`WebSocket.request`: its frames, and the times measured in Rust."""

    __slots__ = ("messages", "response_time", "time_to_first_frame", "response_length")

    def __init__(self, messages: list, response_time: float, time_to_first_frame: float, response_length: int):
        self.messages: list[Message] = messages
        """Every frame of the reply, oldest first (one, unless ``until=`` was given)."""
        self.response_time = response_time
        """Milliseconds from the send to the last frame of the reply."""
        self.time_to_first_frame = time_to_first_frame
        """Milliseconds from the send to the first frame of the reply."""
        self.response_length = response_length
        """Payload bytes of all frames of the reply."""

    @property
    def first(self) -> Message:
        return self.messages[0]

    @property
    def last(self) -> Message:
        return self.messages[-1]

    @property
    def text(self) -> str:
        """The last frame as text."""
        last = self.last
        return last.decode("utf-8", errors="replace") if isinstance(last, bytes) else last

    def json(self) -> Any:
        """The last frame parsed as JSON."""
        return _json.loads(self.last)

    def __repr__(self) -> str:
        return f"<WebSocketReply frames={len(self.messages)} {self.response_time:.2f} ms>"


class _Collector:
    """Gathers the frames of one reply: those ``reply`` accepts, until one that ``until`` accepts."""

    __slots__ = ("match", "last", "messages", "first_at", "first_length", "last_at", "length", "done", "event")

    def __init__(self, reply, until) -> None:
        self.match = _matcher(reply)
        self.last = _matcher(until)
        self.messages: list[Message] = []
        self.first_at = 0
        self.first_length = 0
        self.last_at = 0
        self.length = 0
        self.done = False
        self.event: gevent.event.Event | None = None

    def offer(self, message: Message, at: int, length: int) -> bool:
        if self.done or (self.match is not None and not self.match(message)):
            return False
        if not self.messages:
            self.first_at = at
            self.first_length = length
        self.messages.append(message)
        self.length += length
        if self.last is None or self.last(message):
            self.done = True
            self.last_at = at
            if self.event is not None:
                self.event.set()
        return True


class WebSocket:
    """One WebSocket connection of a user, made by :py:meth:`WebSocketMixin.connect`.

    Sending never waits (the message is queued to the connection's tokio task). Receiving parks the greenlet on
    the bridge; a greenlet killed while it waits takes no message with it.
    """

    def __init__(self, native, *, name: str, url: str, request_event, context: dict, timeout: float | None) -> None:
        self._native = native
        self.name = name
        """The name this connection reports under (the path, or ``name=`` of ``connect``)."""
        self.url = url
        self.request_event = request_event
        self.context = context
        self.timeout = timeout
        """Default timeout of ``recv`` and ``request``, in seconds (None: wait forever)."""
        # Messages a request() passed over (not part of its reply), for the next recv().
        self._backlog: deque[tuple[Message, int, int]] = deque()
        self._collectors: list[_Collector] = []
        self._receiver: gevent.Greenlet | None = None
        self._on_message: Callable[[Message], Any] | None = None
        self._closing = False
        # The user's arrival-rate iteration (None for other users), set by connect.
        self._arrival: _arrival._Iteration | None = None

    # -- state --------------------------------------------------------------------------------------------------

    @property
    def open(self) -> bool:
        """False once the connection is over (closed by either side, or failed)."""
        return self._native.open

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, if any."""
        return self._native.subprotocol

    @property
    def handshake_time(self) -> float:
        """Milliseconds the connect took: TCP, TLS and the HTTP upgrade (measured in Rust)."""
        return self._native.handshake_ms

    @property
    def response_headers(self) -> dict[str, str]:
        """The headers of the server's 101 response (lowercase names)."""
        return dict(self._native.headers())

    @property
    def close_status(self) -> tuple[int, str] | None:
        """``(code, reason)`` once the connection is over."""
        return self._native.close_status

    def stats(self) -> dict[str, int]:
        """Messages and payload bytes this connection sent and received."""
        ms, bs, mr, br = self._native.stats()
        return {"messages_sent": ms, "bytes_sent": bs, "messages_received": mr, "bytes_received": br}

    def __repr__(self) -> str:
        return f"<WebSocket {self.url} {'open' if self.open else 'closed'}>"

    # -- sending ------------------------------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Sends a text (``str``) or binary (``bytes``) message. Raises :py:class:`WebSocketClosed` (and reports a
        ``WSSEND`` failure) if the connection is already over."""
        if self._native.send(message) is None:
            self._raise_over("WSSEND", 0.0)

    def send_json(self, obj: Any) -> None:
        """Sends ``obj`` as a JSON text message."""
        self.send(_json.dumps(obj))

    # -- receiving ----------------------------------------------------------------------------------------------

    def _timeout(self, timeout) -> float | None:
        return _checked(self.timeout if timeout is _DEFAULT else timeout)

    def _next(self, timeout: float | None) -> tuple[Message, int, int]:
        """The next message as (message, arrival stamp, length); raises the connection's error."""
        native = self._native
        value = native.try_recv()
        if type(value) is tuple:
            return value
        if value is None:
            ready = _bridge.wait(native.wait(timeout))
            value = native.try_recv() if ready is True else ready
            if type(value) is tuple:
                return value
        raise _exception(value, native.close_status)

    def recv(self, timeout: float | None = _DEFAULT) -> Message:
        """The next message: ``str`` for a text frame, ``bytes`` for a binary one.

        :param timeout: seconds to wait (default: the connection's ``timeout``; None waits forever). On a timeout,
            a close or another failure, a ``WSRECV`` failure is reported and a :py:class:`WebSocketError` raised.
        """
        timeout = self._timeout(timeout)
        if self._backlog:
            return self._backlog.popleft()[0]
        self._check_no_receiver()
        started = _native.ws_clock_ns()
        try:
            return self._next(timeout)[0]
        except WebSocketError as e:
            self._report_failure("WSRECV", (_native.ws_clock_ns() - started) / 1e6, e)
            raise

    def recv_json(self, timeout: float | None = _DEFAULT) -> Any:
        """The next message parsed as JSON."""
        return _json.loads(self.recv(timeout))

    # -- request and reply --------------------------------------------------------------------------------------

    def request(
        self,
        message,
        *,
        reply=None,
        until=None,
        name: str | None = None,
        timeout: float | None = _DEFAULT,
        context: dict | None = None,
    ) -> WebSocketReply:
        """Sends ``message`` and waits for its reply; reports the round trip as a ``WSRT`` event (and, for a
        streamed reply, the time to its first frame as ``WSFF``).

        :param message: ``str`` (text), ``bytes`` (binary), or anything else, which is sent as JSON text.
        :param reply: which received messages belong to the reply: a predicate ``f(message) -> bool``, a message
            type (a JSON object message whose ``"type"`` equals it), or a collection of types. Default: the next
            message. Other messages are kept for ``recv`` (or given to ``on_message`` if a receiver runs).
        :param until: the last frame of a streamed reply (same forms as ``reply``). Without it the first matching
            message is the whole reply.
        :param name: the name in the statistics (default: the connection's name).
        :param timeout: seconds for the whole reply (default: the connection's ``timeout``).
        :returns: a :py:class:`WebSocketReply`. On failure (timeout, close, ...) the failure is reported and a
            :py:class:`WebSocketError` raised.
        """
        name = name or self.name
        timeout = self._timeout(timeout)
        data = message if type(message) is str else _encode(message)
        start_time = time.time()
        if reply is None and until is None and self._receiver is None and not self._backlog:
            # The common ping-pong case, without a collector: the next message is the reply.
            sent_at = self._native.send(data)
            if sent_at is None:
                self._raise_over("WSRT", 0.0, name=name)
            try:
                msg, at, length = self._next(timeout)
            except WebSocketError as e:
                self._fire("WSRT", name, (_native.ws_clock_ns() - sent_at) / 1e6, 0, None, e, start_time, context)
                raise
            sent_at = self._native.written_at(sent_at)
            elapsed = (at - sent_at) / 1e6
            result = WebSocketReply([msg], elapsed, elapsed, length)
            self._fire("WSRT", name, elapsed, length, result, None, start_time, context)
            return result
        collector = _Collector(reply, until)
        sent_at = self._native.send(data)
        if sent_at is None:
            self._raise_over("WSRT", 0.0, name=name)
        try:
            if self._receiver is not None:
                self._await_routed(collector, timeout)
            else:
                self._collect(collector, timeout)
        except WebSocketError as e:
            self._fire("WSRT", name, (_native.ws_clock_ns() - sent_at) / 1e6, 0, None, e, start_time, context)
            raise
        sent_at = self._native.written_at(sent_at)
        result = WebSocketReply(
            collector.messages,
            (collector.last_at - sent_at) / 1e6,
            (collector.first_at - sent_at) / 1e6,
            collector.length,
        )
        if until is not None:
            self._fire("WSFF", name, result.time_to_first_frame, collector.first_length, result, None, start_time,
                       context)  # fmt: skip
        self._fire("WSRT", name, result.response_time, result.response_length, result, None, start_time, context)
        return result

    def _collect(self, collector: _Collector, timeout: float | None) -> None:
        backlog = self._backlog
        # Messages that were passed over before are offered first, oldest first.
        if backlog:
            kept: deque[tuple[Message, int, int]] = deque()
            while backlog and not collector.done:
                item = backlog.popleft()
                if not collector.offer(*item):
                    kept.append(item)
            kept.extend(backlog)
            self._backlog = backlog = kept
        deadline = None if timeout is None else time.monotonic() + timeout
        while not collector.done:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            item = self._next(left)
            if not collector.offer(*item):
                backlog.append(item)

    def _await_routed(self, collector: _Collector, timeout: float | None) -> None:
        collector.event = gevent.event.Event()
        self._collectors.append(collector)
        try:
            collector.event.wait(timeout)
            if collector.done:
                return
            # Woken without the reply: the receiver saw the connection end, or the time ran out.
            error = self._native.error
            if error is not None and not self._native.pending:
                raise _exception(error, self._native.close_status)
            if self._receiver is None or self._receiver.dead:
                raise WebSocketClosed("the background receiver stopped before the reply arrived", None)
            raise WebSocketTimeout(f"timed out after {timeout} s waiting for the reply")
        finally:
            if collector in self._collectors:
                self._collectors.remove(collector)

    # -- background receiver ------------------------------------------------------------------------------------

    def start_receiver(self, on_message: Callable[[Message], Any] | None = None) -> gevent.Greenlet:
        """Receives in a background greenlet: each message goes to a waiting ``request`` if it is part of its reply,
        else to ``on_message(message)``. A close by the server is reported as a ``WSRECV`` failure. While it runs,
        ``recv`` is not available (the receiver owns the stream). Stopped by ``close``."""
        if self._receiver is not None:
            raise RuntimeError("a background receiver already runs on this connection")
        self._on_message = on_message
        self._receiver = gevent.spawn(self._receive_loop)
        return self._receiver

    def _receive_loop(self) -> None:
        started = _native.ws_clock_ns()
        while True:
            try:
                item = self._next(None)
            except WebSocketError as e:
                # A waiting request reports the failure itself; report it here only if nobody else will.
                if not self._closing and not self._collectors:
                    self._report_failure("WSRECV", (_native.ws_clock_ns() - started) / 1e6, e)
                for c in self._collectors:
                    if c.event is not None:
                        c.event.set()
                return
            started = item[1]
            for c in self._collectors:
                if c.offer(*item):
                    break
            else:
                if self._on_message is not None:
                    try:
                        self._on_message(item[0])
                    except Exception:  # noqa: BLE001 - one bad callback must not stop the receiver
                        logger.exception("on_message raised")

    def _check_no_receiver(self) -> None:
        if self._receiver is not None and not self._receiver.dead:
            raise RuntimeError("a background receiver owns this connection: use on_message or request()")

    # -- closing ------------------------------------------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "", wait: bool = True) -> None:
        """Closes the connection with ``code`` and ``reason``. With ``wait`` (the default) returns once the closing
        handshake is done (bounded by 5 s); messages not yet received are dropped."""
        self._closing = True
        ticket = self._native.close(code, reason)
        if wait:
            _bridge.wait(ticket)
        if self._receiver is not None:
            receiver, self._receiver = self._receiver, None
            if wait:
                receiver.join(timeout=1)
            if not receiver.dead:
                receiver.kill(block=False)

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- events -------------------------------------------------------------------------------------------------

    def _fire(self, request_type, name, response_time, length, response, exception, start_time, context) -> None:
        arrival = self._arrival
        fire_request(
            self.request_event,
            request_type,
            name,
            response_time,
            length,
            exception,
            response,
            {**self.context, **context} if context else self.context,
            start_time,
            self.url,
            0,
            None if arrival is None else arrival.lead_before(response_time),
        )

    def _report_failure(self, request_type: str, response_time: float, exc: WebSocketError) -> None:
        self._fire(request_type, self.name, response_time, 0, None, exc, time.time() - response_time / 1000, None)

    def _raise_over(self, request_type: str, response_time: float, name: str | None = None):
        error = self._native.error
        exc = (
            _exception(error, self._native.close_status)
            if error is not None
            else WebSocketClosed("the connection is closed", None)
        )
        self._fire(request_type, name or self.name, response_time, 0, None, exc, time.time(), None)
        raise exc


_ABSOLUTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def _ws_url(base: str | None, url_or_path: str) -> str:
    """An absolute ws(s):// URL: absolute URLs as given (http -> ws, https -> wss), paths joined to ``base``."""
    lowered = url_or_path[:8].lower()
    if lowered.startswith(("ws://", "wss://")):
        return url_or_path
    if lowered.startswith(("http://", "https://")):
        return "ws" + url_or_path[4:]
    if _ABSOLUTE.match(url_or_path):
        return url_or_path  # another scheme: the engine rejects it with a clear error
    if not base:
        raise StopTest(
            "You must specify the base host. Either in the host attribute in the User class, "
            "or on the command line using the --host option."
        )
    parts = urlsplit(base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme.lower())
    path = parts.path.rstrip("/") + (url_or_path if url_or_path.startswith("/") else "/" + url_or_path)
    base_ws = urlunsplit((scheme, parts.netloc, "", "", ""))
    return base_ws + path


def _default_name(url_or_path: str) -> str:
    """The path without its query string (queries often carry per-user tokens, which would split the stats), and a
    URL without its user and password (which would reach every output and span name)."""
    if "://" in url_or_path:
        try:
            parts = urlsplit(url_or_path)
            host = parts.netloc.rpartition("@")[2]
            return urlunsplit((parts.scheme, host, parts.path or "/", "", ""))
        except ValueError:  # malformed: the connect reports it; the name is what was given
            pass
    return url_or_path.split("?", 1)[0].split("#", 1)[0] or "/"


def counters() -> dict[str, int]:
    """Process-wide WebSocket counters: connections open now and opened in total, and messages and payload bytes
    sent and received by every connection of this process."""
    return _native.ws_counters()


class WebSocketMixin:
    """Gives a Locust user WebSocket connections: ``self.connect(...)``. Use it with :py:class:`WebSocketUser`, or
    mix it into an HTTP user to hold WebSocket connections beside ``self.client``::

        class MyUser(WebSocketMixin, FastHttpUser): ...

    The user's connections are closed when it stops (``on_stop``, or its greenlet being killed).
    """

    insecure: bool = True
    """As FastHttpUser's: True (the default) accepts any certificate for wss:// URLs."""

    ws_connect_timeout: float | None = 60.0
    """Seconds for TCP, TLS and the upgrade together."""

    ws_timeout: float | None = 60.0
    """Default seconds that ``recv`` and ``request`` wait (None: forever)."""

    ws_max_message_size: int | None = 16 * 1024 * 1024
    """A received message over this many bytes fails the connection (closed with code 1009). None: no limit."""

    ws_max_queue: int = 16 * 1024 * 1024
    """Bytes of received messages that may wait for ``recv``. At the cap the connection stops reading the socket
    until ``recv`` takes a message, so the server waits on TCP (as it would for a blocking client that is not
    calling ``recv``); nothing is dropped."""

    ws_max_write_buffer: int = 16 * 1024 * 1024
    """Bytes that may wait to be written while the server does not read: messages sent and not yet taken by the
    socket, and the pongs owed to a pinging server. Past it, while the socket takes nothing, the connection fails
    (``WebSocketClosed``, code 1006, "the server is not reading"). A single message over it is a ``ValueError``."""

    ws_headers: dict | None = None
    """Headers sent with every upgrade request."""

    def connect(
        self,
        url_or_path: str,
        headers: dict | None = None,
        subprotocols: Iterable[str] | None = None,
        name: str | None = None,
        timeout: float | None = _DEFAULT,
        on_message: Callable[[Message], Any] | None = None,
        context: dict | None = None,
    ) -> WebSocket:
        """Opens a WebSocket connection and reports the handshake as a ``WS`` event.

        :param url_or_path: a path, joined to the user's ``host`` (http -> ws, https -> wss), or an absolute
            ws://, wss://, http:// or https:// URL.
        :param headers: extra headers of the upgrade request (e.g. ``Authorization``).
        :param subprotocols: subprotocols to offer; the chosen one is ``connection.subprotocol``.
        :param name: the name in the statistics (default: the path without its query string).
        :param timeout: seconds for the handshake (default ``ws_connect_timeout``).
        :param on_message: if given, starts a background receiver greenlet calling it for each message.
        :returns: a :py:class:`WebSocket`. If the connect fails, a ``WS`` failure is reported and a
            :py:class:`WebSocketError` raised (e.g. :py:class:`WebSocketHandshakeError` with ``status`` 401).
        """
        url = _ws_url(getattr(self, "host", None), url_or_path)
        name = name or _default_name(url_or_path)
        all_headers = {**(self.ws_headers or {}), **(headers or {})}
        environment = self.environment  # type: ignore[attr-defined]
        user_context = self.context() if hasattr(self, "context") else {}
        if context:
            user_context = {**user_context, **context}
        _checked(self.ws_timeout)
        max_queue = _cap("ws_max_queue", self.ws_max_queue)
        max_write_buffer = _cap("ws_max_write_buffer", self.ws_max_write_buffer)
        iteration = _arrival.iteration(self)
        # The first request of an arrival-rate iteration is measured from when the iteration was due, too.
        lead = None if iteration is None else iteration.lead()
        start_time = time.time()
        ticket = _native.ws_connect(
            url,
            list(all_headers.items()) if all_headers else None,
            list(subprotocols) if subprotocols else None,
            self.ws_connect_timeout if timeout is _DEFAULT else timeout,
            bool(self.insecure),
            self.ws_max_message_size,
            max_queue,
            max_write_buffer,
        )
        value = _bridge.wait(ticket)
        if type(value) is _NATIVE_ERROR:
            ws, exc, response_time = None, _exception(value), (time.time() - start_time) * 1000
        else:
            ws = WebSocket(
                value, name=name, url=url, request_event=environment.events.request, context=user_context,
                timeout=self.ws_timeout,
            )  # fmt: skip
            exc, response_time = None, value.handshake_ms
        request = environment.events.request
        fire_request(request, "WS", name, response_time, 0, exc, ws, user_context, start_time, url, 0, lead)
        if exc is not None:
            raise exc
        assert ws is not None  # the connect did not fail
        ws._arrival = iteration
        self.__dict__.setdefault("_ws_connections", []).append(ws)
        if on_message is not None:
            ws.start_receiver(on_message)
        return ws

    @property
    def ws_connections(self) -> list[WebSocket]:
        """This user's connections that are still open."""
        conns = self.__dict__.get("_ws_connections", [])
        conns[:] = [c for c in conns if c.open]
        return list(conns)

    def ws_stats(self) -> dict[str, int]:
        """Messages and payload bytes sent and received by this user's connections (open and closed ones)."""
        total = dict.fromkeys(("messages_sent", "bytes_sent", "messages_received", "bytes_received"), 0)
        for c in self.__dict__.get("_ws_connections", []):
            for k, v in c.stats().items():
                total[k] += v
        return total

    def close_websockets(self, wait: bool = False) -> None:
        """Closes every connection of this user (code 1000). Called when the user stops."""
        for c in self.__dict__.get("_ws_connections", []):
            if c.open:
                try:
                    c.close(1000, "", wait=wait)
                except Exception:  # noqa: BLE001 - one failing close must not keep the others open
                    logger.debug("closing %r failed", c, exc_info=True)

    def on_stop(self) -> None:
        super().on_stop()  # type: ignore[misc]
        self.close_websockets()

    def start(self, group):
        greenlet = super().start(group)  # type: ignore[misc]
        # Also when the greenlet is killed without on_stop running (or on_stop was overridden without super()).
        greenlet.link(lambda _g: self.close_websockets())
        return greenlet


class WebSocketUser(WebSocketMixin, User):
    """A Locust user that talks WebSocket, with the I/O in Rust. ``host`` may be http(s):// (mapped to ws(s)://)
    or ws(s)://; ``self.connect(path)`` opens a connection. See :py:class:`WebSocketMixin` for the settings."""

    abstract = True


def _traced_connect(connect: Callable) -> Callable:
    """``WebSocketMixin.connect``, traced while OpenTelemetry is instrumented (:py:func:`locust_rs.otel.traceable`)."""

    @functools.wraps(connect)
    def traced(self, url_or_path, headers=None, *args, name=None, **kwargs):
        state = otel.tracing()
        url = _ws_url(getattr(self, "host", None), url_or_path)
        sent = otel.lower_headers(self.ws_headers, headers)
        call = state.start("GET", url, f"WS {name or _default_name(url_or_path)}", sent) if state is not None else None
        if state is None or call is None:
            return connect(self, url_or_path, headers, *args, name=name, **kwargs)
        trace_headers = state.headers_for(call, sent)
        if trace_headers:
            headers = otel.with_headers(headers, trace_headers)
        kwargs["name"] = name
        ws = state.run(call, connect, (self, url_or_path, headers, *args), kwargs, WebSocketHandshakeError)
        ws._otel_context = call.span.get_span_context()
        state.finish(
            call, ws.handshake_time, 101, response_headers=ws.response_headers if state.captured_response else None
        )
        return ws

    return traced


def _traced_request(request: Callable) -> Callable:
    """``WebSocket.request``, traced: a span per round trip, linked to the connection's handshake (a message carries
    no trace context)."""

    @functools.wraps(request)
    def traced(self, message, *, name=None, **kwargs):
        state = otel.tracing()
        if state is None or not state.enabled():
            return request(self, message, name=name, **kwargs)
        handshake = getattr(self, "_otel_context", None)
        start_time = time.time_ns()
        span = state.tracer.start_span(
            f"WSRT {name or self.name}",
            kind=state.client,
            attributes={"url.full": state.redact_url(self.url)},
            links=[state.link(handshake)] if handshake is not None else None,
            start_time=start_time,
        )
        try:
            reply = request(self, message, name=name, **kwargs)
        except BaseException as e:
            if span.is_recording() and isinstance(e, Exception):
                span.record_exception(e)
                span.set_status(state.status(state.error_code, f"{type(e).__name__}: {e}"))
                span.set_attribute(state.error_type, type(e).__qualname__)
            span.end()
            raise
        span.end(end_time=start_time + int(reply.response_time * 1e6))
        return reply

    return traced


otel.traceable(WebSocketMixin, "connect", _traced_connect)
otel.traceable(WebSocket, "request", _traced_request)
