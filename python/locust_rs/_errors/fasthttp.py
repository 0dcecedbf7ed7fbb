"""Native transport errors become the exceptions Locust's FastHttpUser users already catch (geventhttpclient's)."""

from __future__ import annotations

import errno
import socket
import ssl
import zlib

from geventhttpclient._parser import HTTPParseError
from geventhttpclient.response import HTTPConnectionClosed
from geventhttpclient.useragent import ConnectionError as GhcConnectionError
from geventhttpclient.useragent import RetriesExceeded

from locust_rs._errors import BodyTooLarge

# geventhttpclient retries these for idempotent methods and then reports RetriesExceeded.
IDEMPOTENT_METHODS = frozenset(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"])

MAPPED = frozenset(
    {
        "proxy",
        "proxy_timeout",
        "connect_refused",
        "connection_reset",
        "timeout",
        "connect_timeout",
        "closed",
        "dns",
        "tls",
        "decode",
        "too_many_redirects",
        "invalid_url",
        "unsupported_scheme",
        "io",
        "protocol",
        "internal",
        "body_too_large",
    }
)
# proxy_host/proxy_port are no URL (invalid_proxy), geventhttpclient has no SOCKS, and the WebSocket kinds come only
# from WebSocket connections; should one appear, it is reported as a RuntimeError.
NOT_RAISED = frozenset({"invalid_proxy", "socks", "ws_handshake", "ws_closed", "message_too_big", "invalid_argument"})


def _os_error(cls, err, default_errno):
    return cls(err.errno if err.errno is not None else default_errno, err.message)


def to_exception(err, url: str, method: str, max_retries: int) -> BaseException:
    kind = err.kind
    if kind == "proxy" and err.errno is not None:
        # The proxy itself could not be reached: geventhttpclient sees only the socket error.
        kind = "connect_refused" if err.errno == errno.ECONNREFUSED else "io"
    elif kind == "proxy_timeout":
        kind = "connect_timeout"
    if kind == "connect_refused":
        exc: BaseException = _os_error(ConnectionRefusedError, err, errno.ECONNREFUSED)
    elif kind == "connection_reset":
        # Before the response, geventhttpclient sees a reset as the connection closing (and retries it as one).
        exc = HTTPConnectionClosed("connection closed.")
    elif kind in ("timeout", "connect_timeout"):
        exc = TimeoutError("timed out")
    elif kind == "closed":
        exc = HTTPConnectionClosed("connection closed.")
    elif kind == "dns":
        exc = socket.gaierror(-2, err.message)
    elif kind == "tls":
        exc = ssl.SSLError(err.message)
    elif kind == "decode":
        exc = zlib.error(err.message)
    elif kind == "too_many_redirects":
        return RetriesExceeded(url, err.message)
    elif kind in ("invalid_url", "unsupported_scheme"):
        exc = ValueError(err.message)
    elif kind == "io" and err.errno is not None:
        exc = OSError(err.errno, err.message)
    elif kind == "protocol":
        exc = HTTPParseError(err.message)
    elif kind == "body_too_large":
        exc = BodyTooLarge(err.message)
    elif kind == "proxy":
        exc = GhcConnectionError(url, err.message)
    else:
        exc = RuntimeError(f"locust-rs: {err.message}")
    if kind in ("timeout", "connect_timeout"):
        # geventhttpclient treats timeouts as temporary and, once max_retries is used up (at once for a
        # method it may not resend), wraps them.
        return RetriesExceeded(url, max_retries, original=exc)
    return exc


def body_exception(err, url: str, method: str, max_retries: int) -> BaseException:
    """The error of a body that failed after the headers arrived."""
    if err.kind == "closed":
        return HTTPParseError("Incomplete response.")
    if err.kind == "connection_reset":
        return _os_error(ConnectionResetError, err, errno.ECONNRESET)
    return to_exception(err, url, method, max_retries)
