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
from locust_rs.httpsession import HttpSession, HttpUser
from locust_rs.swap import install

__all__ = [
    "ConnectionPool",
    "ErrorResponse",
    "FastHttpSession",
    "FastHttpUser",
    "FastRequest",
    "FastResponse",
    "HttpSession",
    "HttpUser",
    "ResponseContextManager",
    "RestResponseContextManager",
    "__version__",
    "configure",
    "install",
]
