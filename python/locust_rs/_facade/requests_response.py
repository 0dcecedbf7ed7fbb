"""The responses of ``locust_rs.clients.HttpSession``: ``requests.Response`` objects whose status, headers and body
come from the Rust engine, read when first used, and their ``catch_response=True`` context manager (the with-block
itself is ``_sessions.CatchResponse``, shared with ``FastHttpUser``'s)."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from http import HTTPStatus

import requests
from requests import exceptions as rex
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, iter_slices, stream_decode_response_unicode
from urllib3 import exceptions as u3

from locust_rs._errors.requests import body_exception
from locust_rs._facade.sessions import CatchResponse
from locust_rs._gevent import bridge as _bridge

_MISSING = object()


def _lazy(name: str, compute):
    """A property computed on first read and cached; assignable, like the plain attribute requests has."""

    def get(self):
        d = self.__dict__
        v = d.get(name, _MISSING)
        if v is _MISSING:
            v = d[name] = compute(self)
        return v

    def set_(self, value) -> None:
        self.__dict__[name] = value

    return property(get, set_)


class _HeaderMessage:
    """Enough of an ``http.client.HTTPMessage`` for ``requests.cookies.extract_cookies_to_jar``."""

    def __init__(self, pairs) -> None:
        self._pairs = pairs

    def get_all(self, name, default=None):
        name = name.lower()
        values = [v for k, v in self._pairs if k.lower() == name]
        return values or default


class _OriginalResponse:
    def __init__(self, pairs) -> None:
        self.msg = _HeaderMessage(pairs)


class _RawStub:
    """``response.raw`` as far as requests' cookie extraction needs it."""

    def __init__(self, pairs) -> None:
        self._original_response = _OriginalResponse(pairs)


def _joined_headers(pairs) -> CaseInsensitiveDict:
    # urllib3 joins repeated header names with ", " and requests copies that view; so do we.
    h: dict[str, str] = {}
    lower: dict[str, str] = {}
    for k, v in pairs:
        key = lower.setdefault(k.lower(), k)
        h[key] = f"{h[key]}, {v}" if key in h else v
    return CaseInsensitiveDict(h)


def _reason(status: int) -> str | None:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None


def _native_reason(sent: str | None, status: int) -> str | None:
    """The phrase the server sent (even empty); over HTTP/2, which has none, the standard one."""
    return sent if sent is not None else _reason(status)


class _RequestArgs:
    """What is needed to build ``response.request`` (a PreparedRequest) if anyone reads it."""

    __slots__ = ("method", "url", "headers", "body")

    def __init__(self, method, url, headers, body) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body

    def prepared(self) -> PreparedRequest:
        p = PreparedRequest()
        p.method = self.method.upper() if isinstance(self.method, str) else self.method
        p.url = self.url
        p.headers = CaseInsensitiveDict(self.headers or {})
        p.body = self.body
        return p


class Response(requests.Response):
    """A ``requests.Response`` whose status, headers and body come from the Rust engine, read lazily."""

    # Set on a response a hook got by sending the request again (see _requests_adapter.dispatch_hooks).
    _resent = False

    def __init__(self, native, args: _RequestArgs, stream: bool) -> None:
        # requests.Response.__init__ is not called: every attribute it sets is a lazy property here.
        self._native = native
        self._args = args
        self._stream = stream
        self.status_code = native.status_code
        self._content_consumed = False
        self._next = None
        self.raw = None
        # No adapter sent this response (requests types the attribute as one); dispatch_hooks sets a resender.
        self.connection = None  # type: ignore[assignment]

    headers = _lazy("headers", lambda self: _joined_headers(self._native.headers()))
    url = _lazy("url", lambda self: self._native.url if self._native.redirected else self._args.url)
    reason = _lazy("reason", lambda self: _native_reason(self._native.reason, self.status_code))
    encoding = _lazy("encoding", lambda self: get_encoding_from_headers(self.headers))
    elapsed = _lazy("elapsed", lambda self: timedelta(milliseconds=self._native.response_time))
    request = _lazy("request", lambda self: self._final_request())

    def _final_request(self) -> PreparedRequest:
        args = self._args
        if not self._native.redirected:
            return args.prepared()
        method = args.method.upper()
        for status, _url, _headers, _reason_phrase, _body in self._native.history():
            if (
                (status == 303 and method != "HEAD")
                or (status == 302 and method != "HEAD")
                or (status == 301 and method == "POST")
            ):
                method = "GET"
        return _RequestArgs(method, self._native.url, args.headers, None).prepared()

    def _compute_cookies(self) -> RequestsCookieJar:
        jar = RequestsCookieJar()
        extract_cookies_to_jar(jar, self.request, _RawStub(self._native.headers()))
        return jar

    cookies = _lazy("cookies", lambda self: self._compute_cookies())

    def _compute_history(self) -> list:
        hops = []
        for status, url, pairs, reason, body in self._native.history():
            r = requests.Response()
            r.status_code = status
            r.url = url
            r.headers = _joined_headers(pairs)
            # None for an unknown status over HTTP/2 (no phrase sent, none standard), as requests' Response allows.
            r.reason = _native_reason(reason, status)  # type: ignore[assignment]
            r.encoding = get_encoding_from_headers(r.headers)
            r._content = body
            r._content_consumed = True
            r.request = _RequestArgs(self._args.method, url, self._args.headers, None).prepared()
            hops.append(r)
        return hops

    history = _lazy("history", lambda self: self._compute_history())

    def _compute_content(self):
        if self._content_consumed:
            raise RuntimeError("The content for this response was already consumed")
        native = self._native
        if self._stream:
            body = b"".join(self._iter_raw())
        else:
            body = native.content
        self._content_consumed = True
        return body

    content = _lazy("content", lambda self: self._compute_content())

    @property
    def _content(self):
        return self.__dict__.get("content", False)

    @_content.setter
    def _content(self, value) -> None:
        self.__dict__["content"] = value

    def _iter_raw(self) -> Generator[bytes]:
        native = self._native
        while True:
            value = _bridge.wait(native.read_chunk())
            if value is None:
                return
            if isinstance(value, bytes):
                yield value
            else:
                raise body_exception(value, self.url, (None, None, None), self.request, 0, None)

    def iter_content(self, chunk_size: int | None = 1, decode_unicode: bool = False):
        """As ``requests.Response.iter_content``: with ``stream=True`` the chunks come from the network as they
        arrive (regrouped to ``chunk_size``; ``None``: as they arrive); otherwise slices of ``.content``."""
        if self._content_consumed and isinstance(self._content, bool):
            raise rex.StreamConsumedError()
        if chunk_size is not None and not isinstance(chunk_size, int):
            raise TypeError(f"chunk_size must be an int, it is instead a {type(chunk_size)}.")
        if "content" in self.__dict__ or not self._stream:
            chunks = iter_slices(self.content, chunk_size)
        else:
            chunks = self._stream_chunks(chunk_size)
        if decode_unicode:
            chunks = stream_decode_response_unicode(chunks, self)
        return chunks

    def _stream_chunks(self, size: int | None) -> Generator[bytes]:
        self._content_consumed = True
        buf = b""
        for piece in self._iter_raw():
            if size is None:
                yield piece
                continue
            buf += piece
            while len(buf) >= size:
                yield buf[:size]
                buf = buf[size:]
        if buf:
            yield buf

    def close(self) -> None:
        """Releases the connection; an unread streamed body is discarded."""
        if self._stream and not self._content_consumed:
            self._content_consumed = True
            for _ in self._iter_raw():
                pass


class ResponseContextManager(CatchResponse, Response):
    """A response that is also a context manager, letting the with-block decide whether the request is reported as a
    success or a failure (``catch_response=True``), as ``locust.clients.ResponseContextManager``."""

    _response_class = Response
    error: Exception | None = None

    def raise_for_status(self) -> None:
        """``requests.Response.raise_for_status``, also minding explicit ``failure()``/``success()`` calls."""
        __tracebackhide__ = True
        if self.error and not self._manual_result:
            raise self.error
        super().raise_for_status()

    @classmethod
    def wrap_response(cls, response, request_event, request_meta, catch_response: bool):
        """Turns ``response`` into a ResponseContextManager in place, as Locust does."""
        if type(response) is not cls:
            response.__class__ = cls._context_class(type(response))
        response._entered = False
        response._manual_result = None
        response._request_event = request_event
        response._catch_response = catch_response
        response.request_meta = request_meta
        return response

    def _report_status(self) -> None:
        if self.error is None and self.status_code < 400:
            # raise_for_status() would not raise: skip it and the URL swap around it.
            self._report_request()
            return
        # As Locust: the failure message names the request's name, not its URL, so one name groups its failures.
        orig_url = self.url
        self.url = self.request_meta["name"]
        try:
            self.raise_for_status()
        except rex.RequestException as e:
            while (
                isinstance(e, rex.ConnectionError | u3.ProtocolError | u3.MaxRetryError | u3.NewConnectionError)
                and e.__context__
            ):
                # Down the chain, as Locust walks it: not a RequestException any more (the except clause types e).
                e = e.__context__  # type: ignore[assignment]
            self.request_meta["exception"] = e
        self._report_request()
        self.url = orig_url


class RestResponseContextManager(ResponseContextManager):
    js: dict


class _ErrorContextManager(ResponseContextManager):
    """Status 0, no headers, no body: what Locust's ``ResponseContextManager(error)`` is."""

    def __init__(self, error: Exception) -> None:
        requests.Response.__init__(self)
        self._native = None
        self._stream = False
        self.error = error
        self.status_code = 0
        self._catch_response = True
        self.request = getattr(error, "request", None)
        # requests.Response.__init__ stored _content = False; our content is computed (None) on first read.
        self.__dict__.pop("content", None)

    def _compute_content(self):
        return None

    def _compute_history(self) -> list:
        return []


for _cls in (Response, ResponseContextManager, RestResponseContextManager):
    _cls.__module__ = "locust_rs.clients"  # where users import them from, and what reprs and tracebacks should name
