"""locust-rs: Locust's user classes with the HTTP work done in Rust.

from locust_rs import FastHttpUser
"""

from locust_rs._native import __version__, configure
from locust_rs.fasthttp import (
    ConnectionPool,
    ErrorResponse,
    FastHttpSession,
    FastHttpUser,
    FastRequest,
    FastResponse,
    ResponseContextManager,
    RestResponseContextManager,
)
from locust_rs.websocket import (
    MessageTooBig,
    WebSocket,
    WebSocketClosed,
    WebSocketConnectionError,
    WebSocketError,
    WebSocketHandshakeError,
    WebSocketMixin,
    WebSocketProtocolError,
    WebSocketReply,
    WebSocketTimeout,
    WebSocketUser,
)

__all__ = [
    "ConnectionPool",
    "ErrorResponse",
    "FastHttpSession",
    "FastHttpUser",
    "FastRequest",
    "FastResponse",
    "ResponseContextManager",
    "RestResponseContextManager",
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
    "__version__",
    "configure",
]
