"""Native errors of WebSocket connections become locust-rs's WebSocket exceptions (re-exported by
``locust_rs.websocket``, where users import them from)."""

from __future__ import annotations

from locust.exception import RescheduleTask

MAPPED = frozenset(
    {
        "ws_handshake",
        "ws_closed",
        "timeout",
        "connect_timeout",
        "message_too_big",
        "protocol",
        "internal",
        # what the handshake's TCP and TLS steps report: the connection could not be made
        "invalid_url",
        "unsupported_scheme",
        "dns",
        "connect_refused",
        "connection_reset",
        "closed",
        "tls",
        "io",
    }
)
# A WebSocket connection goes through no proxy, and its body is no HTTP body (no decoding, no redirects); should
# one of these appear, it is a WebSocketConnectionError.
NOT_RAISED = frozenset(
    {
        "proxy",
        "proxy_timeout",
        "invalid_proxy",
        "socks",
        "decode",
        "too_many_redirects",
        "invalid_argument",
        "body_too_large",
    }
)


class WebSocketError(RescheduleTask):
    """Base class of WebSocket failures. It derives from Locust's ``RescheduleTask``: the failure has already been
    reported to ``events.request`` (so it is in the statistics), and if the task does not catch it, Locust ends the
    task quietly and schedules the next one instead of logging it a second time as an unexpected error."""

    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class WebSocketHandshakeError(WebSocketError):
    """The server refused the upgrade; ``status`` is its HTTP status (e.g. 401)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class WebSocketConnectionError(WebSocketError):
    """The connection could not be made (refused, DNS, TLS, reset) or the URL is malformed."""


class WebSocketTimeout(WebSocketError):
    """No connection, message or reply within the timeout."""


class WebSocketClosed(WebSocketError):
    """The connection is over: ``code`` and ``reason`` are those of the close frame (1006: none was sent)."""

    def __init__(self, message: str, code: int | None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class WebSocketProtocolError(WebSocketError):
    """The peer broke the WebSocket protocol (a bad frame, invalid UTF-8 in a text message, ...)."""


class MessageTooBig(WebSocketError):
    """A received message was over ``max_message_size``; the connection was closed with code 1009."""


def to_exception(err, close_status=None) -> WebSocketError:
    kind, message = err.kind, err.message
    if kind == "ws_handshake":
        return WebSocketHandshakeError(message, err.errno)
    if kind == "ws_closed":
        reason = close_status[1] if close_status else ""
        return WebSocketClosed(message, err.errno, reason)
    if kind in ("timeout", "connect_timeout"):
        return WebSocketTimeout(message)
    if kind == "message_too_big":
        return MessageTooBig(message)
    if kind == "protocol":
        return WebSocketProtocolError(message)
    if kind == "internal":
        return WebSocketError(f"locust-rs: {message}")
    return WebSocketConnectionError(message)


for _cls in (
    WebSocketError,
    WebSocketHandshakeError,
    WebSocketConnectionError,
    WebSocketTimeout,
    WebSocketClosed,
    WebSocketProtocolError,
    MessageTooBig,
):
    _cls.__module__ = "locust_rs.websocket"  # where users import them from, and what tracebacks should name
