"""locust-rs: Locust's user classes with the HTTP work done in Rust.

from locust_rs import FastHttpUser
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

from locust_rs._locust_version import check as _check_locust

_check_locust()  # before anything imports Locust: one sentence, not the ImportError of a name it lacks

from locust_rs._native import __version__, configure  # noqa: E402

# Public names and the module that defines each. They load on first access, so that a notebook can use
# `locust_rs.results` without importing locust, whose gevent monkey-patching hangs a Jupyter kernel.
_LAZY = {
    "attach": "locust_rs._locust.plugin",
    "BodyTooLarge": "locust_rs._errors",
    "ConnectionPool": "locust_rs.fasthttp",
    "constant_arrival_rate": "locust_rs.arrival",
    "ramping_arrival_rate": "locust_rs.arrival",
    "ErrorResponse": "locust_rs.fasthttp",
    "FastHttpSession": "locust_rs.fasthttp",
    "FastHttpUser": "locust_rs.fasthttp",
    "FastRequest": "locust_rs.fasthttp",
    "FastResponse": "locust_rs.fasthttp",
    "HttpSession": "locust_rs.clients",
    "HttpUser": "locust_rs.clients",
    "install": "locust_rs.swap",
    "ResponseContextManager": "locust_rs.fasthttp",
    "RestResponseContextManager": "locust_rs.fasthttp",
    "MessageTooBig": "locust_rs.websocket",
    "WebSocket": "locust_rs.websocket",
    "WebSocketClosed": "locust_rs.websocket",
    "WebSocketConnectionError": "locust_rs.websocket",
    "WebSocketError": "locust_rs.websocket",
    "WebSocketHandshakeError": "locust_rs.websocket",
    "WebSocketMixin": "locust_rs.websocket",
    "WebSocketProtocolError": "locust_rs.websocket",
    "WebSocketReply": "locust_rs.websocket",
    "WebSocketTimeout": "locust_rs.websocket",
    "WebSocketUser": "locust_rs.websocket",
}

if TYPE_CHECKING:
    from locust_rs._errors import BodyTooLarge
    from locust_rs._locust.plugin import attach
    from locust_rs.arrival import constant_arrival_rate, ramping_arrival_rate
    from locust_rs.clients import HttpSession, HttpUser
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
    from locust_rs.stats import thresholds
    from locust_rs.swap import install
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
    "attach",
    "BodyTooLarge",
    "ConnectionPool",
    "constant_arrival_rate",
    "ErrorResponse",
    "FastHttpSession",
    "FastHttpUser",
    "FastRequest",
    "FastResponse",
    "HttpSession",
    "HttpUser",
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
    "install",
    "ramping_arrival_rate",
    "thresholds",
]


# Modules documented at the top of the package that live in a group: `from locust_rs import thresholds`.
_MODULES = {"thresholds": "locust_rs.stats.thresholds"}


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'locust_rs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if "locust" in sys.modules:
    # Inside a Locust run (locust is always imported first): load everything now, so that the plugin's event
    # listeners (metrics, thresholds) are registered before Locust parses its options and fires `init`.
    for _module in sorted({*_LAZY.values(), "locust_rs._locust.plugin"}):
        importlib.import_module(_module)
