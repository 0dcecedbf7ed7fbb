"""Native transport errors become the ``requests.exceptions`` that Locust's HttpUser users already catch.

The exceptions are built with the same classes, messages and ``__context__`` chains as requests/urllib3 raise them,
because Locust's ``ResponseContextManager`` walks ``__context__`` down from a ``ConnectionError`` to choose the
exception it reports (``ConnectionRefusedError(ECONNREFUSED, ...)`` for a refused connection, for instance).
"""

from __future__ import annotations

import errno
import socket
import ssl
from http.client import BadStatusLine, RemoteDisconnected
from typing import Any
from urllib.parse import urlsplit

from requests import exceptions as rex
from requests.utils import prepend_scheme_if_needed
from urllib3 import exceptions as u3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.util import parse_url

from locust_rs._errors import BodyTooLarge

MAPPED = frozenset(
    {
        "proxy",
        "proxy_timeout",
        "socks",
        "invalid_proxy",
        "connect_refused",
        "dns",
        "connection_reset",
        "io",
        "connect_timeout",
        "timeout",
        "closed",
        "protocol",
        "tls",
        "too_many_redirects",
        "invalid_url",
        "unsupported_scheme",
        "decode",
        "internal",
        "body_too_large",
    }
)
# The WebSocket kinds come only from WebSocket connections; should one appear, it is a RequestException.
NOT_RAISED = frozenset({"ws_handshake", "ws_closed", "message_too_big", "invalid_argument"})


class _PoolName:
    """Stands in for a urllib3 connection pool where an exception message only needs its ``str()``."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def _where(url: str):
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if https else 80)
    except ValueError:
        port = 443 if https else 80
    pool = _PoolName(f"{'HTTPS' if https else 'HTTP'}ConnectionPool(host='{host}', port={port})")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return https, host, port, pool, path


def _chain(*excs: Exception) -> Exception:
    """Links ``excs`` outermost first through ``__context__``, as nested ``except``/``raise`` would."""
    for outer, inner in zip(excs, excs[1:], strict=False):
        outer.__context__ = inner
    return excs[0]


def _verify_error(message: str) -> Exception:
    """A failed certificate check: OpenSSL's class and reason code, so handlers that look for them still match,
    then rustls' own words."""
    return u3.SSLError(
        ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    )


def _proxy_error(err, url: str, proxy: str | None, request, timeouts: tuple) -> Exception:
    """requests' ProxyError: the proxy could not be reached, or refused the CONNECT tunnel. urllib3 names the
    proxy's pool (and the whole URL) for plain http, the origin's pool for https, whose tunnel it was opening."""
    https, host, port, pool, path = _where(url)
    p = parse_url(prepend_scheme_if_needed(proxy, "http")) if proxy else None
    p_https = p is not None and p.scheme == "https"
    p_host = p.host if p is not None and p.host else host
    p_port = p.port or (443 if p_https else 80) if p is not None else port
    if not https:
        cls = "HTTPS" if p_https else "HTTP"
        pool = _PoolName(f"{cls}ConnectionPool(host='{p_host}', port={p_port})")
        path = url
    conn_cls = HTTPSConnection if https or p_https else HTTPConnection
    if err.errno is not None:
        inner: Exception = (
            ConnectionRefusedError(err.errno, "Connection refused")
            if err.errno == errno.ECONNREFUSED
            else OSError(err.errno, err.message)
        )
        cause: Exception = u3.NewConnectionError(
            conn_cls(p_host, p_port), f"Failed to establish a new connection: {inner}"
        )
        cause.__context__ = inner
    elif err.kind == "proxy_timeout":
        cause = u3.ConnectTimeoutError(
            conn_cls(p_host, p_port), f"Connection to {p_host} timed out. (connect timeout={timeouts[0]})"
        )
        cause.__context__ = TimeoutError("timed out")
    elif err.message.startswith("invalid peer certificate"):
        cause = _verify_error(err.message)
    else:
        cause = OSError(err.message)
    pe = u3.ProxyError("Unable to connect to proxy", cause)
    retry = u3.MaxRetryError(pool, path, pe)
    # urllib3 wraps an ssl error in its SSLError for the message only; the chain goes to the ssl error.
    last = cause.args[0] if isinstance(cause, u3.SSLError) else cause
    return _chain(rex.ProxyError(retry, request=request), retry, last)


def _socks_classes():
    """PySocks' exception classes when it is installed (requests' own SOCKS support needs it), else stand-ins."""
    try:
        import socks

        return (
            socks.GeneralProxyError,
            socks.ProxyConnectionError,
            socks.SOCKS5AuthError,
            socks.SOCKS5Error,
            (socks.SOCKS4Error),
        )
    except ImportError:
        return (_SocksError,) * 5


class _SocksError(OSError):
    def __init__(self, msg, socket_err=None) -> None:
        super().__init__(msg if socket_err is None else f"{msg}: {socket_err}")
        self.socket_err = socket_err


def _socks_error(err, url: str, proxy: str | None, request) -> Exception:
    """What requests (urllib3 with PySocks) raises when a SOCKS proxy fails: a ConnectionError whose
    NewConnectionError names the origin's SOCKS pool, with PySocks' exception down the chain."""
    https, host, port, _pool, path = _where(url)
    kind = "HTTPS" if https else "HTTP"
    # Stand-ins for urllib3's pool and connection, which its exceptions only print (hence Any).
    pool: Any = _PoolName(f"SOCKS{kind}ConnectionPool(host='{host}', port={port})")
    conn: Any = _PoolName(f"{'SOCKSHTTPS' if https else 'SOCKS'}Connection(host='{host}', port={port})")
    general, connection, auth, socks5, socks4 = _socks_classes()
    scheme = (proxy or "").split("://", 1)[0].lower()
    if err.errno is not None:
        inner: Exception = (
            ConnectionRefusedError(err.errno, "Connection refused")
            if err.errno == errno.ECONNREFUSED
            else OSError(err.errno, err.message)
        )
        p = parse_url(proxy) if proxy else None
        where = f"{p.host}:{p.port or 1080}" if p is not None else "?"
        proxy_err = connection(
            f"Error connecting to {'SOCKS4' if scheme.startswith('socks4') else 'SOCKS5'} proxy {where}", inner
        )
    else:
        if "authentication" in err.message:
            inner = auth(err.message)
        elif err.message[:2] == "0x":
            inner = (socks4 if scheme.startswith("socks4") else socks5)(err.message)
        else:
            inner = general(err.message)
        proxy_err = general("Socket error", inner)
    new_conn = u3.NewConnectionError(conn, f"Failed to establish a new connection: {inner}")
    retry = u3.MaxRetryError(pool, path, new_conn)
    return _chain(rex.ConnectionError(retry, request=request), retry, new_conn, proxy_err, inner)


def to_requests_exception(err, url: str, timeouts: tuple, request, proxy: str | None = None) -> Exception:
    """The exception requests would raise for a request that got no response. ``timeouts`` = (connect, read);
    ``proxy``: the proxy URL the request went to, if any."""
    kind = err.kind
    if kind == "body_too_large":
        return BodyTooLarge(err.message, request=request)
    if kind in ("proxy", "proxy_timeout"):
        return _proxy_error(err, url, proxy, request, timeouts)
    if kind == "socks":
        return _socks_error(err, url, proxy, request)
    if kind == "invalid_proxy":
        return rex.InvalidProxyURL(err.message, request=request)
    https, host, port, pool, path = _where(url)
    conn_cls = HTTPSConnection if https else HTTPConnection
    inner: Exception
    if kind == "connection_reset":
        inner = ConnectionResetError(err.errno or errno.ECONNRESET, err.message)
        pe = u3.ProtocolError("Connection aborted.", inner)
        return _chain(rex.ConnectionError(pe, request=request), pe, inner)
    if kind in ("connect_refused", "dns") or (kind == "io" and err.errno is not None):
        conn = conn_cls(host, port)
        if kind == "connect_refused":
            inner = ConnectionRefusedError(err.errno or errno.ECONNREFUSED, "Connection refused")
            new_conn: Exception = u3.NewConnectionError(conn, f"Failed to establish a new connection: {inner}")
        elif kind == "dns":
            inner = socket.gaierror(-2, "Name or service not known")
            new_conn = u3.NameResolutionError(host, conn, inner)
        else:
            inner = OSError(err.errno or errno.ECONNRESET, err.message)
            new_conn = u3.NewConnectionError(conn, f"Failed to establish a new connection: {inner}")
        retry = u3.MaxRetryError(pool, path, new_conn)
        return _chain(rex.ConnectionError(retry, request=request), retry, new_conn, inner)
    if kind == "connect_timeout":
        conn = conn_cls(host, port)
        inner = TimeoutError("timed out")
        cte = u3.ConnectTimeoutError(conn, f"Connection to {host} timed out. (connect timeout={timeouts[0]})")
        retry = u3.MaxRetryError(pool, path, cte)
        return _chain(rex.ConnectTimeout(retry, request=request), retry, cte, inner)
    if kind == "timeout":
        rte = u3.ReadTimeoutError(pool, path, f"Read timed out. (read timeout={timeouts[1]})")
        return _chain(rex.ReadTimeout(rte, request=request), rte, TimeoutError("timed out"))
    if kind == "closed":
        inner = RemoteDisconnected("Remote end closed connection without response")
        pe = u3.ProtocolError("Connection aborted.", inner)
        return _chain(rex.ConnectionError(pe, request=request), pe, inner)
    if kind == "protocol":
        inner = BadStatusLine(err.message)
        pe = u3.ProtocolError("Connection aborted.", inner)
        return _chain(rex.ConnectionError(pe, request=request), pe, inner)
    if kind == "tls":
        inner = (
            _verify_error(err.message)
            if err.message.startswith("invalid peer certificate")
            else u3.SSLError(err.message)
        )
        retry = u3.MaxRetryError(pool, path, inner)
        return _chain(rex.SSLError(retry, request=request), retry, inner)
    if kind == "too_many_redirects":
        return rex.TooManyRedirects(f"Exceeded {timeouts[2]} redirects.", request=request)
    if kind in ("invalid_url", "unsupported_scheme"):
        return rex.InvalidURL(err.message, request=request)
    if kind == "decode":
        decode = u3.DecodeError("Received response with content-encoding, but failed to decode it.")
        return rex.ContentDecodingError(decode, request=request)
    return rex.RequestException(f"locust-rs: {err.message}", request=request)


def body_exception(err, url: str, timeouts: tuple, request, received: int, expected: str | None) -> Exception:
    """The exception requests raises when the headers arrived but the body failed."""
    if err.kind == "closed":
        left = f"{int(expected) - received} more expected" if expected and expected.isdigit() else "more expected"
        incomplete = u3.IncompleteRead(received, int(expected) - received if expected and expected.isdigit() else 0)
        pe = u3.ProtocolError(f"Connection broken: IncompleteRead({received} bytes read, {left})", incomplete)
        return _chain(rex.ChunkedEncodingError(pe, request=request), pe, incomplete)
    if err.kind == "connection_reset":
        inner = ConnectionResetError(err.errno or errno.ECONNRESET, err.message)
        pe = u3.ProtocolError(f"Connection broken: {inner!r}", inner)
        return _chain(rex.ChunkedEncodingError(pe, request=request), pe, inner)
    if err.kind == "timeout":
        https, host, port, pool, path = _where(url)
        rte = u3.ReadTimeoutError(pool, path, f"Read timed out. (read timeout={timeouts[1]})")
        return _chain(rex.ConnectionError(rte, request=request), rte)
    return to_requests_exception(err, url, timeouts, request)
