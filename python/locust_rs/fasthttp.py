"""Drop-in ``FastHttpUser`` and ``FastHttpSession`` with the HTTP work done in Rust.

The names, signatures, defaults and failure behaviour mirror ``locust.contrib.fasthttp``; the
contract tests in ``tests/test_contract_fasthttp.py`` compare the two side by side.
"""

from __future__ import annotations

from locust.contrib.fasthttp import FAILURE_EXCEPTIONS as _LOCUST_FAILURE_EXCEPTIONS
from locust.contrib.fasthttp import LocustBadStatusCode
from locust.exception import LocustError, StopTest
from locust.user import User
from locust.user.users import RestMixin

import functools
import json as _json
import logging
import os
import time
from base64 import b64encode
from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from charset_normalizer import detect
from geventhttpclient.header import Headers
from requests.utils import get_encoding_from_headers

from locust_rs import (
    _native,
    otel,
)
from locust_rs import arrival as _arrival
from locust_rs import stats as _stats
from locust_rs._errors.fasthttp import body_exception, to_exception
from locust_rs._facade.sessions import (  # noqa: F401 - absolute_http_url_regexp: Locust's module-level name
    CatchResponse,
    ClosesOnStop,
    ConnectionPool,
    CookieJarView,
    SessionCommon,
    absolute_http_url_regexp,
    body_limit,
    shared_pool,
    split_credentials,
)
from locust_rs._gevent import bridge as _bridge
from locust_rs._locust import plugin  # noqa: F401 - its Locust listeners (HDR outputs, thresholds) come with our users
from locust_rs.stats.record import fire_request

_NativeResponse = _native.NativeResponse

# The exceptions that turn a request into a Locust failure rather than escaping the task.
# Locust's own list, plus ValueError for URLs the engine cannot parse.
FAILURE_EXCEPTIONS: tuple[type[BaseException], ...] = (*_LOCUST_FAILURE_EXCEPTIONS, ValueError)

VALID_RESPONSE_CODES = frozenset([200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 301, 302, 303, 304, 307, 308])

_CATCH_HINT = (
    "If you want to change the state of the request, you must pass catch_response=True. "
    "See http://docs.locust.io/en/stable/writing-a-locustfile.html#validating-responses"
)


def _construct_basic_auth_str(username, password) -> str:
    if isinstance(username, str):
        username = username.encode("latin1")
    if isinstance(password, str):
        password = password.encode("latin1")
    return "Basic " + b64encode(b":".join((username, password))).strip().decode("ascii")


def _encode_body(data, files, headers: dict) -> bytes | None:
    if files:
        from urllib3 import encode_multipart_formdata

        fields: list = list(data.items()) if isinstance(data, dict) else []
        items = files.items() if isinstance(files, dict) else files
        for field, value in items:
            if isinstance(value, tuple):
                filename, fileobj, *rest = value
                content = fileobj.read() if hasattr(fileobj, "read") else fileobj
                fields.append((field, (filename, content, *rest)))
            else:
                content = value.read() if hasattr(value, "read") else value
                fields.append((field, (getattr(value, "name", field), content)))
        body, content_type = encode_multipart_formdata(fields)
        headers.setdefault("Content-Type", content_type)
        return body
    if data is None:
        return None
    if isinstance(data, bytes):
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/octet-stream"
        return data
    if isinstance(data, str):
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return data.encode()
    if isinstance(data, dict | list | tuple):
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        return urlencode(data, doseq=True).encode()
    if hasattr(data, "read"):
        raw = data.read()
        return raw.encode() if isinstance(raw, str) else raw
    # A generator or other iterable of chunks.
    return b"".join(c.encode() if isinstance(c, str) else c for c in data)


def _full_url(base_url: str | None, url: str) -> str:
    """The URL a request goes to: a path after the base URL, an absolute URL as it is, anything else appended to the
    base URL (as FastHttpSession does). The common case, a path, skips the regex."""
    if url[:1] == "/" and base_url:
        return base_url + url
    return url if absolute_http_url_regexp.match(url) else f"{base_url}{url}"


def _with_params(url: str, params) -> str:
    if not params:
        return url
    query = params if isinstance(params, str | bytes) else urlencode(params, doseq=True)
    if isinstance(query, bytes):
        query = query.decode()
    base, _, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{query}" + (f"#{fragment}" if fragment else "")


class FastRequest:
    """The request as it was sent: ``url``, ``method``, ``headers`` and ``body``."""

    __slots__ = ("method", "url", "headers", "payload")

    def __init__(self, method: str, url: str, headers: dict | None, payload: bytes | str | None) -> None:
        self.method = method.upper()
        self.url = url
        sent = Headers({"User-Agent": _native.USER_AGENT, "Accept-Encoding": "gzip, deflate, br"})
        if isinstance(payload, bytes):
            sent["Content-Length"] = str(len(payload))
        sent.update(headers or {})
        self.headers = sent
        self.payload = payload

    @property
    def body(self) -> bytes | str | None:
        return self.payload

    def get_full_url(self) -> str:
        return self.url


class BodyReader:
    """``FastResponse.stream``: reads what ``iter_content`` and ``content`` have not handed out yet, sharing their
    buffer, so the three can be mixed as on geventhttpclient's response."""

    def __init__(self, response: FastResponse) -> None:
        self._response = response
        self._chunks: Generator[bytes] | None = None

    def read(self, amt: int | None = None) -> bytes:
        """Up to ``amt`` bytes (all that is left if None); ``b""`` at the end of the body."""
        response = self._response
        d = response.__dict__
        if "_content" in d or not response._native.is_stream:
            return b""  # read whole already, as a response without stream=True is
        if self._chunks is None:
            self._chunks = response._iter_raw()
        parts = [d.pop("_pending", b"")]
        have = len(parts[0])
        while amt is None or have < amt:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        if amt is not None and len(data) > amt:
            d["_pending"] = data[amt:]
            data = data[:amt]
        return data

    def readable(self) -> bool:
        return True


class FastResponse:
    """A finished response. The body and headers stay in Rust until they are read."""

    encoding: str | None = None
    """In some cases setting the encoding explicitly is needed. If so, do it before calling .text"""

    # Like Locust's, a response that succeeded has no ``error`` attribute at all.

    # Set by FastHttpSession.request on a response it hands to a with-block, for the statistics core's listener (ms).
    _locust_rs_interval: float
    _locust_rs_lead: float

    def __init__(self, native, request_args: tuple, error: BaseException | None = None) -> None:
        self._native = native
        self._request_args = request_args
        if error is not None:
            self.error = error

    @property
    def request(self) -> FastRequest:
        req = self.__dict__.get("_request")
        if req is None:
            req = self.__dict__["_request"] = FastRequest(*self._request_args)
        return req

    @property
    def status_code(self) -> int:
        return self._native.status_code

    @property
    def ok(self) -> bool:
        """Returns True if :attr:`status_code` is less than 400, False if not."""
        return self.status_code < 400

    @property
    def headers(self) -> Headers:
        """Dict-like, case-insensitive response headers."""
        h = self.__dict__.get("_headers")
        if h is None:
            h = self.__dict__["_headers"] = Headers(self._native.headers())
        return h

    @property
    def content(self) -> bytes | None:
        """The decoded body, read once and cached."""
        c = self.__dict__.get("_content", _MISSING)
        if c is _MISSING:
            native = self._native
            if native.is_stream:
                # What iter_content has not handed out yet, as Locust's buffered socket would give it.
                c = self.__dict__.pop("_pending", b"") + b"".join(self._iter_raw())
            else:
                c = native.content
            self.__dict__["_content"] = c
        return c

    @property
    def text(self) -> str | None:
        """The body decoded with the charset of Content-Type, else a detected one."""
        content = self.content
        if content is None:
            return None
        if self.encoding is None:
            # geventhttpclient's Headers, not requests' CaseInsensitiveDict: a case-insensitive mapping, all it reads.
            self.encoding = get_encoding_from_headers(self.headers) or detect(content)["encoding"]  # type: ignore[arg-type]
        if self.encoding is None:
            return None
        return str(content, str(self.encoding), errors="replace")

    @property
    def url(self) -> str | None:
        """The URL that answered: after redirects, and (as in Locust) without ``params``."""
        native = self._native
        return native.url if native.redirected else self._request_args[1]

    def __enter__(self):
        return self

    def __exit__(self, *args) -> None:
        pass

    @property
    def history(self) -> list[RedirectResponse]:
        """The redirect responses that were followed, oldest first."""
        return [RedirectResponse(*hop[:3]) for hop in self._native.history()]

    @property
    def elapsed_ms(self) -> float:
        """Milliseconds from sending the request until the body was complete, measured in Rust."""
        return self._native.response_time

    def json(self) -> Any:
        """Parses the response as json and returns a dict"""
        return _json.loads(self.text)  # type: ignore[arg-type]

    def raise_for_status(self) -> None:
        """Raise any connection errors that occurred during the request"""
        if error := getattr(self, "error", None):
            raise error

    def _iter_raw(self) -> Generator[bytes]:
        native = self._native
        while True:
            value = _bridge.wait(native.read_chunk())
            if value is None:
                return
            if isinstance(value, bytes):
                yield value
            else:
                raise body_exception(value, native.url, self._request_args[0], 0)

    def iter_content(self, chunk_size: int = 1024, decode_content: bool = True) -> Generator[bytes | str]:
        """Yields the body in chunks, as ``requests.Response.iter_content`` does; with
        ``stream=True`` the chunks are read from the network as they arrive."""
        if "_content" in self.__dict__ or not self._native.is_stream:
            # As in Locust, a body already read is not read again: there is nothing left to stream.
            return
        for chunk in self._rechunked(chunk_size):
            if decode_content:
                try:
                    yield chunk.decode("utf-8")
                    continue
                except UnicodeDecodeError:
                    pass
            yield chunk

    @property
    def stream(self) -> BodyReader:
        """The body as a readable file (``read(amt=None)``), as geventhttpclient's response object is in Locust:
        with ``stream=True`` it reads from the network as the body arrives."""
        reader = self.__dict__.get("_stream")
        if reader is None:
            reader = self.__dict__["_stream"] = BodyReader(self)
        return reader

    def _rechunked(self, size: int) -> Generator[bytes]:
        """Regroups network chunks into chunks of exactly ``size`` bytes (the last may be shorter). Bytes not yet
        handed out stay in ``_pending``, so ``.content`` after a partial or failed iteration returns the rest."""
        d = self.__dict__
        for piece in self._iter_raw():
            buf = d.get("_pending", b"") + piece
            while len(buf) >= size:
                d["_pending"] = buf[size:]
                yield buf[:size]
                buf = d["_pending"]
            d["_pending"] = buf
        buf = d.pop("_pending", b"")
        if buf:
            yield buf

    @property
    def elapsed(self) -> timedelta:
        """Time from sending the request until the body was complete, measured in Rust."""
        return timedelta(milliseconds=self._native.response_time)

    def success(self):
        raise LocustError(_CATCH_HINT)

    def failure(self, *_args, **_kwargs):
        raise LocustError(_CATCH_HINT)


class RedirectResponse:
    """One response of a followed redirect chain (see ``FastResponse.history``)."""

    __slots__ = ("status_code", "url", "headers")

    def __init__(self, status_code: int, url: str, headers: list) -> None:
        self.status_code = status_code
        self.url = url
        self.headers = Headers(headers)

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    def __repr__(self) -> str:
        return f"<RedirectResponse [{self.status_code}] {self.url}>"


_MISSING = object()


class ErrorResponse(FastResponse):
    """Stands in for a response when the request failed before any response arrived
    (connection refused, timeout, DNS failure...): status 0 and no body."""

    headers = None  # type: ignore[assignment]
    content = None
    text = None
    status_code = 0

    def __init__(self, request_args: tuple, error: BaseException) -> None:
        self._native = None
        self._request_args = request_args
        self.error = error

    @property
    def url(self) -> str | None:
        return self._request_args[1]

    @property
    def history(self) -> list:
        return []

    def raise_for_status(self) -> None:
        raise self.error


class ResponseContextManager(CatchResponse, FastResponse):
    """A response that is also a context manager, letting the with-block decide whether the
    request is reported as a success or a failure (``catch_response=True``)."""

    _response_class = FastResponse

    def __init__(self, response, request_event, request_meta, catch_response: bool) -> None:
        self.__dict__.update(response.__dict__)
        self.__class__ = self._context_class(response.__class__)
        self._request_event = request_event
        self.request_meta = request_meta
        self._catch_response = catch_response

    def _report_status(self) -> None:
        try:
            self.raise_for_status()
        except FAILURE_EXCEPTIONS as e:
            self.request_meta["exception"] = e
        self._report_request()


class RestResponseContextManager(ResponseContextManager):
    js: dict
    error: Exception
    headers: Headers


def _native_pool(client_pool) -> ConnectionPool | None:
    """A geventhttpclient ``HTTPClientPool`` from an unchanged locustfile shares one native pool, with the concurrency
    it was made with (``HTTPClient``'s default is 1)."""
    args = getattr(client_pool, "client_args", None) or {}
    return shared_pool(client_pool, lambda: args.get("concurrency") or getattr(client_pool, "concurrency", None) or 1)


_warned_ssl_context_factory = False


def _warn_ssl_context_factory() -> None:
    global _warned_ssl_context_factory
    if not _warned_ssl_context_factory:
        _warned_ssl_context_factory = True
        logging.getLogger(__name__).warning(
            "locust-rs ignores ssl_context_factory (TLS is rustls, which cannot use an ssl.SSLContext): "
            "set insecure, ca_bundle and client_cert on the user class instead (see docs/compatibility.md)"
        )


def _client_cert(cert) -> tuple[str, str | None] | None:
    """requests' ``cert`` forms: one file with the chain and the key, or a (cert, key) pair."""
    if not cert:
        return None
    if isinstance(cert, str | os.PathLike):
        return os.fspath(cert), None
    cert_file, key_file = cert
    return os.fspath(cert_file), os.fspath(key_file) if key_file else None


class FastHttpSession(SessionCommon):
    """An HTTP session for one user: keep-alive connections, cookies and Locust events, with
    the same constructor and methods as ``locust.contrib.fasthttp.FastHttpSession``."""

    auth_header: str | None = None

    def __init__(
        self,
        base_url: str | None,
        request_event,
        user: User | None,
        insecure: bool = True,
        client_pool=None,
        ssl_context_factory=None,
        **kwargs,
    ) -> None:
        self.base_url = base_url
        self.request_event = request_event
        self.user = user
        self.request_name: str | None = None
        # Defaults are geventhttpclient's, which a bare FastHttpSession gets; FastHttpUser passes its own.
        self.max_retries = int(kwargs.get("max_retries", 3))
        headers = kwargs.get("headers")
        # The headers the native client adds to every request; tracing (locust_rs.otel) reads them.
        self._default_headers = headers
        if ssl_context_factory is not None:
            _warn_ssl_context_factory()
        ca_bundle = kwargs.get("ca_bundle")
        client_cert = _client_cert(kwargs.get("client_cert"))
        for path in (ca_bundle, *(client_cert or ())):
            if path is not None and not os.path.exists(path):
                raise FileNotFoundError(f"locust-rs FastHttpSession: no such file: {path}")
        self._client = _native.Client(
            network_timeout=kwargs.get("network_timeout", 5.0),
            connection_timeout=kwargs.get("connection_timeout", 5.0),
            max_redirects=int(kwargs.get("max_redirects", 3)),
            max_retries=self.max_retries,
            insecure=bool(insecure),
            headers=dict(headers) if headers else None,
            proxy_host=kwargs.get("proxy_host"),
            proxy_port=kwargs.get("proxy_port"),
            pool=_native_pool(client_pool),
            concurrency=int(kwargs.get("concurrency", 1)),
            http2_prior_knowledge=bool(kwargs.get("http2_prior_knowledge", False)),
            ca_bundle=ca_bundle,
            client_cert=client_cert,
            max_body_size=body_limit(kwargs.get("max_body_size"), user),
        )
        self._owns_pool = client_pool is None
        self.cookiejar = CookieJarView(self._client)
        self._co_interval = _stats.session_interval(user)
        self._arrival = _arrival.iteration(user)

        credentials = split_credentials(self.base_url) if self.base_url else None
        if credentials is not None:
            self.base_url, username, password = credentials
            self.auth_header = _construct_basic_auth_str(username, password)

    def request(
        self,
        method: str,
        url: str,
        name: str | None = None,
        data: str | dict | None = None,
        catch_response: bool = False,
        stream: bool = False,
        headers: dict | None = None,
        auth: tuple[str | bytes, str | bytes] | None = None,
        json: Any = None,
        allow_redirects: bool = True,
        context: dict = {},  # noqa: B006 - Locust's signature
        **kwargs,
    ):
        """Send an HTTP request. Arguments and return value are those of
        ``locust.contrib.fasthttp.FastHttpSession.request``: a response, or with
        ``catch_response=True`` a :py:class:`ResponseContextManager`.

        :param name: label in Locust's statistics instead of the URL path
        :param catch_response: let a with-block mark the request as success or failure
        :param stream: do not read the body now; read it with ``iter_content``. The reported
            response time then ends at the headers.
        :param allow_redirects: follow redirects (up to ``max_redirects``); True by default
        :param params: (keyword) query parameters, a dict or a list of pairs
        :param files: (keyword) files for a multipart body
        """
        if self.request_name and not name:
            name = self.request_name
        built_url = _full_url(self.base_url, url)
        start_time = time.time()
        hook = self.request_event
        # When the statistics core is the only listener, nobody reads the event's context: the user's is merged at
        # the end (fire_request), and only if someone else is listening by then. A with-block's event is fired later,
        # with what it holds now.
        user = self.user
        if user and catch_response:
            context = {**user.context(), **context}
            user = None

        if headers or auth or self.auth_header or json is not None or kwargs:
            hdrs = dict(headers) if headers else {}
            if auth:
                hdrs["Authorization"] = _construct_basic_auth_str(auth[0], auth[1])
            elif self.auth_header:
                hdrs["Authorization"] = self.auth_header
            if not data and json is not None:
                data = _json.dumps(json)
                if "Content-Type" not in hdrs and "content-type" not in hdrs:
                    hdrs["Content-Type"] = "application/json"
                if "Accept" not in hdrs and "accept" not in hdrs:
                    hdrs["Accept"] = "application/json"
            # geventhttpclient keeps a str body as str when the caller typed it (JSON does); .request shows that.
            typed = isinstance(data, str) and any(k.lower() == "content-type" for k in hdrs)
            payload = _encode_body(data, kwargs.pop("files", None), hdrs)
        else:
            typed = False
            hdrs = None
            payload = None if data is None else _encode_body(data, None, hdrs := {})

        # Like geventhttpclient's, the request URL (events, .url, errors) leaves out ``params``.
        send_url = _with_params(built_url, kwargs.pop("params", None)) if kwargs else built_url
        request_args = (method, built_url, hdrs, data if typed else payload)
        lead = None if (arrival := self._arrival) is None else arrival.lead()
        value = _bridge.wait(self._client.request(method, send_url, hdrs, payload, allow_redirects, stream))

        if type(value) is _NativeResponse:
            body_error = value.body_error
            if body_error is not None:
                # As in Locust: the response stands (no .error), the event carries the failure.
                response = FastResponse(value, request_args)
                exception = body_exception(body_error, built_url, method, self.max_retries)
            else:
                status = value.status_code
                if status in VALID_RESPONSE_CODES:
                    response = FastResponse(value, request_args)
                    exception = None
                else:
                    exception = LocustBadStatusCode(value.url if value.redirected else built_url, code=status)
                    response = FastResponse(value, request_args, exception)
            response_time = value.response_time
            if stream:
                cl = value.header("content-length")
                response_length = int(cl) if cl and cl.isdigit() else 0
            elif body_error is not None:
                response_length = 0
            else:
                response_length = value.content_length
        else:
            exception = to_exception(value, built_url, method, self.max_retries)
            response = ErrorResponse(request_args, exception)
            response_time = (time.time() - start_time) * 1000
            response_length = 0
        if catch_response:
            if self._co_interval:
                # Read by the statistics core's listener: this user's expected interval, for the corrected histogram.
                response._locust_rs_interval = self._co_interval
            if lead is not None:
                response._locust_rs_lead = lead
            request_meta = {
                "request_type": method,
                "name": name or url,
                "context": context,
                "response": response,
                "exception": exception,
                "start_time": start_time,
                "url": built_url,
                "response_length": response_length,
                "response_time": response_time,
            }
            return ResponseContextManager(response, hook, request_meta, catch_response)
        fire_request(
            hook,
            method,
            name or url,
            response_time,
            response_length,
            exception,
            response,
            context,
            start_time,
            built_url,
            self._co_interval,
            lead,
            user,
        )
        return response

    def close(self) -> None:
        """Drops this session's idle connections (when it does not share a pool): its user has stopped."""
        if self._owns_pool:
            self._client.pool.close()

    def delete(self, url: str, **kwargs):
        """Sends a DELETE request"""
        return self.request("DELETE", url, **kwargs)

    def get(self, url: str, **kwargs):
        """Sends a GET request"""
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs):
        """Sends a HEAD request"""
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs):
        """Sends a OPTIONS request"""
        return self.request("OPTIONS", url, **kwargs)

    def patch(self, url: str, data=None, **kwargs):
        """Sends a PATCH request"""
        return self.request("PATCH", url, data=data, **kwargs)

    def post(self, url: str, data=None, json=None, **kwargs):
        """Sends a POST request"""
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url: str, data=None, **kwargs):
        """Sends a PUT request"""
        return self.request("PUT", url, data=data, **kwargs)

    def iter_lines(self, url: str, method: str = "GET", **kwargs) -> Generator[str]:
        """Sends a request with ``stream=True`` and yields the body line by line as it arrives"""
        response = self.request(method, url, stream=True, **kwargs)
        response.raise_for_status()
        buffer = ""
        for chunk in response.iter_content(chunk_size=1024, decode_content=True):
            if isinstance(chunk, bytes):
                chunk = chunk.decode("utf-8", errors="replace")
            buffer += chunk
            while "\n" in buffer:
                line, buffer = buffer.split("\n", 1)
                yield line
        if buffer:
            yield buffer


class FastHttpUser(ClosesOnStop, User, RestMixin[RestResponseContextManager]):
    """
    A drop-in for Locust's ``FastHttpUser`` whose HTTP work runs in Rust (hyper on tokio).
    Change ``from locust.contrib.fasthttp import FastHttpUser`` to
    ``from locust_rs import FastHttpUser``; the rest of the locustfile stays as it is.
    """

    network_timeout: float = 60.0
    """Parameter passed to FastHttpSession"""

    connection_timeout: float = 60.0
    """Parameter passed to FastHttpSession"""

    max_redirects: int = 30
    """Parameter passed to FastHttpSession."""

    max_retries: int = 0
    """Parameter passed to FastHttpSession."""

    insecure: bool = True
    """Parameter passed to FastHttpSession. Default True, meaning no SSL verification."""

    default_headers: dict | None = None
    """Parameter passed to FastHttpSession. Adds the listed headers to every request."""

    concurrency: int = 10
    """Parameter passed to FastHttpSession. The number of requests this user's session may have in
    flight at once (it matters when the user spawns its own greenlets). Default 10. Has no effect
    when a ``client_pool`` is given: the pool's own concurrency applies."""

    proxy_host: str | None = None
    """Parameter passed to FastHttpSession"""

    proxy_port: int | None = None
    """Parameter passed to FastHttpSession"""

    client_pool = None
    """A :py:class:`locust_rs.ConnectionPool` (or a geventhttpclient ``HTTPClientPool``) shared by
    every instance of this class. If not given, each user has its own connections."""

    ssl_context_factory = None
    """Accepted for compatibility and ignored, with a warning: TLS is done by rustls, which cannot use an
    ``ssl.SSLContext``. Use ``insecure``, ``ca_bundle`` and ``client_cert``."""

    ca_bundle: str | None = None
    """locust-rs only: verify the server against this PEM bundle (or ``c_rehash`` directory) instead of the Mozilla
    roots. Only used with ``insecure = False``."""

    client_cert: str | tuple[str, str] | None = None
    """locust-rs only: a client certificate for TLS, as requests' ``cert``: one PEM file holding the certificate
    chain and its key, or a ``(cert_file, key_file)`` pair."""

    http2_prior_knowledge: bool = False
    """locust-rs only: speak HTTP/2 without TLS (h2c) to ``http://`` hosts. Over TLS, HTTP/2 is
    chosen by ALPN whatever this says."""

    max_body_size: int | str | None = None
    """locust-rs only: the most bytes of one response body held in memory (decoded); a larger body fails the request
    with :py:class:`locust_rs.BodyTooLarge`. None: the run's ``--max-body-size`` (default 256 MiB); 0: no limit.
    ``stream=True`` bodies are not limited."""

    abstract = True
    """Dont register this as a User class that can be run by itself"""

    def __init__(self, environment) -> None:
        super().__init__(environment)
        if self.host is None:
            raise StopTest(
                "You must specify the base host. Either in the host attribute in the User class, "
                "or on the command line using the --host option."
            )
        self.client: FastHttpSession = FastHttpSession(
            base_url=self.host,
            request_event=self.environment.events.request,
            network_timeout=self.network_timeout,
            connection_timeout=self.connection_timeout,
            max_redirects=self.max_redirects,
            max_retries=self.max_retries,
            insecure=self.insecure,
            concurrency=self.concurrency,
            user=self,
            client_pool=self.client_pool,
            ssl_context_factory=self.ssl_context_factory,
            ca_bundle=self.ca_bundle,
            client_cert=self.client_cert,
            headers=self.default_headers,
            proxy_host=self.proxy_host,
            proxy_port=self.proxy_port,
            http2_prior_knowledge=self.http2_prior_knowledge,
            max_body_size=self.max_body_size,
        )


def _traced_request(request: Callable) -> Callable:
    """``FastHttpSession.request``, traced while OpenTelemetry is instrumented (:py:func:`locust_rs.otel.traceable`)."""

    @functools.wraps(request)
    def traced(self, method, url, name=None, *args, **kwargs):
        state = otel.tracing()
        built = _full_url(self.base_url, url)
        if kwargs.get("params"):
            built = _with_params(built, kwargs["params"])
        headers = kwargs.get("headers")
        sent = otel.lower_headers(getattr(self, "_default_headers", None), headers)
        sent.setdefault("user-agent", otel.engine_user_agent())
        label = name or self.request_name or (urlsplit(built).path or "/")
        call = state.start(method, built, f"{method.upper()} {label}", sent) if state is not None else None
        if state is None or call is None:
            return request(self, method, url, name, *args, **kwargs)
        trace_headers = state.headers_for(call, sent)
        if trace_headers:
            kwargs["headers"] = otel.with_headers(headers, trace_headers)
        response = state.run(call, request, (self, method, url, name, *args), kwargs)
        native = response._native
        if native is None:
            state.finish(call, otel.elapsed_ms(call.start_time), error=response.error)
        else:
            body_error = native.body_error
            error = body_exception(body_error, built, method, self.max_retries) if body_error is not None else None
            headers = response.headers if state.captured_response else None
            state.finish(call, native.response_time, native.status_code, error, native, headers)
        return response

    return traced


otel.traceable(FastHttpSession, "request", _traced_request)
