"""Drop-in ``HttpUser`` and ``HttpSession`` (Locust's requests-style client) on the Rust engine of ``FastHttpUser``.

The names, signatures and events mirror ``locust.clients`` and ``locust.user.users.HttpUser``; responses are
``requests.Response`` objects whose body and headers stay in Rust until read. The request is encoded with requests'
own machinery where there is anything to encode (bodies, files, params, auth objects); a plain GET skips all of it.
``tests/test_contract_httpsession.py`` compares this module with Locust's HttpSession side by side.
"""

from __future__ import annotations

from locust.exception import CatchResponseError, LocustError, ResponseError, StopTest
from locust.user import User
from locust.user.users import RestMixin

import copy
import os
import re
import time
from collections.abc import Generator
from datetime import timedelta
from http import HTTPStatus
from http.cookiejar import Cookie
from typing import Any

import requests
from requests import exceptions as rex
from requests.auth import HTTPBasicAuth, _basic_auth_str
from requests.cookies import RequestsCookieJar, cookiejar_from_dict, extract_cookies_to_jar
from requests.hooks import default_hooks, dispatch_hook
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict
from requests.utils import (
    default_headers,
    get_encoding_from_headers,
    get_environ_proxies,
    iter_slices,
    prepend_scheme_if_needed,
    select_proxy,
    stream_decode_response_unicode,
)
from urllib3.connection import _get_default_user_agent
from urllib3.exceptions import ProxySchemeUnknown
from urllib3.util import parse_url

from locust_rs import (
    _bridge,
    _native,
    plugin,  # noqa: F401 - its Locust listeners (metrics, thresholds) come with our users
)
from locust_rs import metrics as _metrics
from locust_rs._errors.requests import body_exception, to_requests_exception
from locust_rs._sessions import (  # noqa: F401 - absolute_http_url_regexp: Locust's module-level name
    ConnectionPool,
    CookieJarView,
    SessionCommon,
    absolute_http_url_regexp,
    shared_pool,
    split_credentials,
)

# A URL that requests' prepare_url would leave exactly as it is: plain ASCII, nothing to quote or IDNA-encode.
_PLAIN_URL = re.compile(
    r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?(/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*)?(\?[^\s#\"<>`{}|\\^]*)?$"
)
_NativeResponse = _native.NativeResponse
_URLLIB3_USER_AGENT = _get_default_user_agent()
# requests' Session.max_redirects
DEFAULT_MAX_REDIRECTS = 30
# requests has no limit on requests in flight per session (urllib3 opens extra connections when its pool is busy).
_UNLIMITED = 1 << 16
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
    # The Rust client recorded this request's time in the HDR histograms (see metrics.py).
    _locust_rs_recorded = True
    # Set on a response a hook got by sending the request again (see HttpSession._dispatch_hooks).
    _resent = False
    """A ``requests.Response`` whose status, headers and body come from the Rust engine, read lazily."""

    def __init__(self, native, args: _RequestArgs, stream: bool) -> None:
        # requests.Response.__init__ is not called: every attribute it sets is a lazy property here.
        self._native = native
        self._args = args
        self._stream = stream
        self.status_code = native.status_code
        self._content_consumed = False
        self._next = None
        self.raw = None
        self.connection = None

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
            r.reason = _native_reason(reason, status)
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


class ResponseContextManager(Response):
    """A response that is also a context manager, letting the with-block decide whether the request is reported as a
    success or a failure (``catch_response=True``), as ``locust.clients.ResponseContextManager``."""

    error: Exception | None = None
    _manual_result: bool | Exception | None = None
    _entered: bool = False

    def raise_for_status(self) -> None:
        """``requests.Response.raise_for_status``, also minding explicit ``failure()``/``success()`` calls."""
        __tracebackhide__ = True
        if not self._manual_result:
            if self.error:
                raise self.error
            requests.Response.raise_for_status(self)
        elif isinstance(self._manual_result, Exception):
            raise self._manual_result

    @classmethod
    def wrap_response(cls, response, request_event, request_meta, catch_response: bool):
        """Turns ``response`` into a ResponseContextManager in place, as Locust does."""
        if type(response) is not cls:
            response.__class__ = _rcm_class(type(response), cls)
        response._entered = False
        response._manual_result = None
        response._request_event = request_event
        response._catch_response = catch_response
        response.request_meta = request_meta
        return response

    def __enter__(self):
        self._entered = True
        if not self._catch_response:
            raise LocustError("In order to use a with-block for requests, you must also pass catch_response=True")
        return self

    def __exit__(self, exc, value, traceback):
        if self._manual_result is not None:
            if self._manual_result is True:
                self.request_meta["exception"] = None
            elif isinstance(self._manual_result, Exception):
                self.request_meta["exception"] = self._manual_result
            self._report_request()
            return exc is None

        if exc:
            if isinstance(value, ResponseError):
                self.request_meta["exception"] = value
                self._report_request()
            else:
                return False
        elif self.error is None and self.status_code < 400:
            # raise_for_status() would not raise: skip it and the URL swap around it.
            self._report_request()
        else:
            # As Locust: the failure message names the request's name, not its URL, so one name groups its failures.
            orig_url = self.url
            self.url = self.request_meta["name"]
            try:
                self.raise_for_status()
            except rex.RequestException as e:
                while (
                    isinstance(
                        e,
                        rex.ConnectionError
                        | requests.packages.urllib3.exceptions.ProtocolError
                        | requests.packages.urllib3.exceptions.MaxRetryError
                        | requests.packages.urllib3.exceptions.NewConnectionError,
                    )
                    and e.__context__
                ):
                    e = e.__context__
                self.request_meta["exception"] = e
            self._report_request()
            self.url = orig_url
        return True

    def _report_request(self, exc=None) -> None:
        self._request_event.fire(**self.request_meta)

    def success(self) -> None:
        """Report the response as successful"""
        if not self._entered:
            raise LocustError(
                "Tried to set status on a request that has not yet been made. Make sure you use a with-block, like "
                "this:\n\nwith self.client.request(..., catch_response=True) as response:\n    response.success()"
            )
        self._manual_result = True

    def failure(self, exc) -> None:
        """Report the response as a failure. A non-exception (a string) is wrapped in a ``CatchResponseError``."""
        if not self._entered:
            raise LocustError(
                "Tried to set status on a request that has not yet been made. Make sure you use a with-block, like "
                "this:\n\nwith self.client.request(..., catch_response=True) as response:\n    response.failure(...)"
            )
        if not isinstance(exc, Exception):
            exc = CatchResponseError(exc)
        self._manual_result = exc


class RestResponseContextManager(ResponseContextManager):
    js: dict


_rcm_classes: dict[tuple[type, type], type] = {}


def _rcm_class(response_cls: type, cm_cls: type) -> type:
    if response_cls is Response:
        return cm_cls
    if issubclass(response_cls, cm_cls):
        return response_cls
    key = (response_cls, cm_cls)
    cls = _rcm_classes.get(key)
    if cls is None:
        cls = _rcm_classes[key] = type(cm_cls.__name__, (cm_cls, response_cls), {})
    return cls


class _Resender:
    """``response.connection`` while response hooks run: what requests' hooks call to send a prepared request
    again (``HTTPDigestAuth.handle_401`` answers a 401 with ``r.connection.send(prep, **kwargs)``)."""

    __slots__ = ("session",)

    def __init__(self, session) -> None:
        self.session = session

    def send(self, request, **kwargs):
        kw = {k: v for k, v in kwargs.items() if k in ("timeout", "stream", "verify", "cert", "proxies")}
        kw["headers"] = dict(request.headers)
        kw["allow_redirects"] = False
        return self.session._send(request.method, request.url, request.body, None, kw, resend=True)


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


class _SessionHeaders(CaseInsensitiveDict):
    """``session.headers``: counts changes so a request only merges them when they differ from the defaults."""

    version = 0

    def __init__(self, data=None, **kwargs) -> None:
        super().__init__(data, **kwargs)
        # Filling it is not a change: the count starts once it holds what it was built with.
        self.version = 0

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.version += 1

    def __delitem__(self, key) -> None:
        super().__delitem__(key)
        self.version += 1


class _SessionCookies(CookieJarView, RequestsCookieJar):
    """``session.cookies``: a ``RequestsCookieJar`` over the Rust cookie store (reads refresh from it, writes go to it).

    A cookie set without a domain (``session.cookies.set("a", "b")``) is sent to every host, as requests sends it."""

    def __init__(self, client) -> None:
        RequestsCookieJar.__init__(self)
        self._client = client

    def set_cookie(self, cookie: Cookie, *args, **kwargs) -> None:
        if hasattr(cookie.value, "startswith") and cookie.value.startswith('"') and cookie.value.endswith('"'):
            cookie.value = cookie.value.replace('\\"', "")
        if not cookie.domain:
            if cookie.expires is None or cookie.expires > time.time():
                self._client.set_cookie_anywhere(cookie.name, cookie.value or "", cookie.path or "/")
            return
        CookieJarView.set_cookie(self, cookie)

    def copy(self) -> RequestsCookieJar:
        jar = RequestsCookieJar()
        jar.update(self)
        return jar

    def __getstate__(self):
        return {"cookies": list(self)}


def _native_pool(pool_manager) -> ConnectionPool | None:
    """A urllib3 ``PoolManager`` from an unchanged locustfile shares one native pool, without a limit on requests in
    flight (urllib3's pools do not block by default)."""
    return shared_pool(pool_manager, lambda: _UNLIMITED)


def _timeouts(timeout) -> tuple | None:
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        try:
            connect, read = timeout
        except ValueError:
            raise ValueError(
                f"Invalid timeout {timeout}. Pass a (connect, read) timeout tuple, or a single float to set both "
                "timeouts to the same value."
            ) from None
        return (connect, read)
    return (timeout, timeout)


def _path_url(url: str) -> str:
    """requests' ``PreparedRequest.path_url``: path (at least "/") and query of ``url``."""
    rest = url.split("://", 1)[-1]
    slash = rest.find("/")
    question = rest.find("?")
    if slash == -1 or (question != -1 and question < slash):
        path = "/" + (rest[question:] if question != -1 else "")
    else:
        path = rest[slash:]
    return path.split("#", 1)[0]


_plain_urls: dict[str, bool] = {}


def _is_plain(url: str) -> bool:
    """``_PLAIN_URL.match(url)``, remembered: a locustfile requests the same few URLs over and over."""
    plain = _plain_urls.get(url)
    if plain is None:
        if len(_plain_urls) >= 10_000:
            _plain_urls.clear()
        plain = _plain_urls[url] = _PLAIN_URL.match(url) is not None
    return plain


def _prepare_url(url: str, params) -> str:
    p = PreparedRequest()
    p.prepare_url(url, params)
    return p.url


_NO_CONNECTION_ARGS = (None, None, None)


def _connection_args(url: str, verify, cert, proxies: dict | None) -> tuple:
    """The engine's (ca_bundle, client_cert, proxies) for requests' ``verify`` (a CA bundle path), ``cert`` and
    ``proxies``, after the checks requests' adapter makes before it connects, raising what it raises (``OSError`` for
    a missing file, ``InvalidProxyURL``/``InvalidURL``/``ValueError`` for a proxy URL it cannot use)."""
    native_proxies = ca_bundle = client_cert = None
    if proxies:
        proxy = select_proxy(url, proxies)
        if proxy:
            proxy = prepend_scheme_if_needed(proxy, "http")
            parsed = parse_url(proxy)
            if not parsed.host:
                raise rex.InvalidProxyURL("Please check proxy URL. It is malformed and could be missing the host.")
            if proxy.lower().startswith("socks"):
                # SOCKS is built in (requests needs PySocks for it); urllib3's check of the version stays.
                if parsed.scheme not in ("socks4", "socks4a", "socks5", "socks5h"):
                    raise ValueError(f"Unable to determine SOCKS version from {proxy}")
            elif parsed.scheme not in ("http", "https"):
                raise rex.InvalidURL(ProxySchemeUnknown(parsed.scheme))
        native_proxies = [(str(k), str(v)) for k, v in proxies.items()]
    if verify.__class__ is str:
        if url[:5].lower() == "https" and not os.path.exists(verify):
            raise OSError(f"Could not find a suitable TLS CA certificate bundle, invalid path: {verify}")
        ca_bundle = verify
    if cert:
        cert_file, key_file = (cert, None) if isinstance(cert, str) else (cert[0], cert[1])
        if cert_file and not os.path.exists(cert_file):
            raise OSError(f"Could not find the TLS certificate file, invalid path: {cert_file}")
        if key_file and not os.path.exists(key_file):
            raise OSError(f"Could not find the TLS key file, invalid path: {key_file}")
        if cert_file:
            client_cert = (os.fspath(cert_file), os.fspath(key_file) if key_file else None)
    return ca_bundle, client_cert, native_proxies


class HttpSession(SessionCommon, requests.Session):
    """An HTTP session for one user, with the constructor, attributes and methods of ``locust.clients.HttpSession``
    (a ``requests.Session``): cookies, default headers, auth and verify persist across requests, each request is
    reported to Locust. The request itself runs in Rust.

    :param pool_manager: share connections between sessions: a :py:class:`locust_rs.ConnectionPool`, or a urllib3
        ``PoolManager`` (each one maps to one native pool).
    """

    def __init__(self, base_url, request_event, user, *args, pool_manager=None, **kwargs) -> None:
        # requests.Session.__init__ is not called: it would mount urllib3 adapters that are never used.
        self.base_url = base_url
        self.request_event = request_event
        self.user = user
        self.request_name: str | None = None
        self.explicit_name: str | None = None
        self._headers = _SessionHeaders(default_headers())
        self.auth = None
        self.proxies: dict = {}
        self.hooks = default_hooks()
        self.params: dict = {}
        self.stream = False
        self.verify = True
        self.cert = None
        self.max_redirects = DEFAULT_MAX_REDIRECTS
        self.trust_env = True
        self._co_interval = _metrics.session_interval(user)
        self.adapters: dict = {}
        self._client = _native.Client(
            network_timeout=None,
            connection_timeout=None,
            max_redirects=self.max_redirects,
            max_retries=0,
            insecure=False,
            headers=dict(self._headers),
            pool=_native_pool(pool_manager),
            concurrency=_UNLIMITED,
        )
        self._owns_pool = pool_manager is None
        self._headers_version = (self._headers, 0)
        self._cookies = _SessionCookies(self._client)

        credentials = split_credentials(self.base_url)
        if credentials is not None:
            self.base_url, username, password = credentials
            self.auth = HTTPBasicAuth(username, password)

    @property
    def headers(self) -> CaseInsensitiveDict:
        return self._headers

    @headers.setter
    def headers(self, value) -> None:
        self._headers = value if isinstance(value, _SessionHeaders) else _SessionHeaders(value)

    @property
    def cookies(self) -> RequestsCookieJar:
        """The session's cookies: a ``RequestsCookieJar`` view of the Rust cookie store."""
        return self._cookies

    @cookies.setter
    def cookies(self, jar) -> None:
        # Assigning a jar (or a dict, as requests' cookiejar_from_dict takes) replaces the session's cookies with
        # a copy of its own; the store stays in Rust, so later changes to that object are not seen.
        if jar is self._cookies:
            return
        self._cookies.clear()
        if isinstance(jar, dict):
            jar = cookiejar_from_dict(jar)
        for cookie in jar or ():
            self._cookies.set_cookie(copy.copy(cookie))

    @property
    def base_url(self):
        return self._base_url

    @base_url.setter
    def base_url(self, value) -> None:
        self._base_url = value
        # scheme://host[:port] and nothing else: a path joined to it is its own name in Locust's statistics
        self._plain_base = bool(value) and re.match(r"^https?://[A-Za-z0-9.\-]+(:\d+)?$", value) is not None

    def _default_name(self, path: str, complete_url: str, sent_url: str) -> str:
        """Locust's default event name: the path and query of the (first) request sent. For a plain path on a plain
        base URL, sent as built, that is the path itself (no parsing)."""
        if sent_url is complete_url and self._plain_base and path[:1] == "/":
            return path
        return _path_url(sent_url)

    def _session_headers(self) -> dict | None:
        """The session's headers, or None while they are the defaults the client holds."""
        h = self._headers
        if h.version == 0 and self._headers_version[0] is h:
            return None
        return h

    def request(
        self,
        method,
        url,
        name: str | None = None,
        catch_response: bool = False,
        context: dict = {},  # noqa: B006 - Locust's signature
        *,
        data: Any = None,
        json: Any = None,
        **kwargs,
    ):
        """Constructs and sends a request; arguments and return value are those of
        ``locust.clients.HttpSession.request`` (and so of ``requests.Session.request``)."""
        if self.request_name and not name:
            name = self.request_name
        self.explicit_name = name
        complete_url = self._base_url + url if url[:1] == "/" and self._base_url else self._build_url(url)
        start_time = time.time()
        response = self._send(method, complete_url, data, json, kwargs, name, url)

        # The event names the first request of a redirect chain, as Locust does.
        req = response._args if response._native is not None else None
        if req is not None:
            if not name:
                name = self._default_name(url, complete_url, req.url)
            complete_url = req.url
        elif response.request is not None and getattr(response.request, "url", None):
            complete_url = str(response.request.url)
            if not name:
                name = response.request.path_url
        elif not name:
            name = str(url)

        if self.user:
            context = {**self.user.context(), **context}

        if self._co_interval:
            # Read by the statistics core's listener: this user's expected interval, for the corrected histogram.
            response._locust_rs_interval = self._co_interval
        native = response._native
        if native is None:
            response_time = (time.time() - start_time) * 1000
            response_length = 0
        else:
            response_time = (time.time() - start_time) * 1000 if response._resent else native.response_time
            if kwargs.get("stream", False):
                response_length = int(response.headers.get("content-length") or 0)
            elif response._stream:
                # As Locust: only the stream= argument counts here; a session-wide stream is read for its length.
                response_length = len(response.content or b"")
            else:
                response_length = native.content_length
        request_meta = {
            "request_type": method,
            "response_time": response_time,
            "name": name,
            "context": context,
            "response": response,
            "exception": None,
            "start_time": start_time,
            "url": complete_url,
            "response_length": response_length,
        }
        rcm = ResponseContextManager.wrap_response(
            response, request_event=self.request_event, request_meta=request_meta, catch_response=catch_response
        )
        if not catch_response:
            if rcm.error is None and rcm.status_code < 400:
                # What __exit__ does for a response raise_for_status() would pass, without the calls.
                self.request_event.fire(**request_meta)
            else:
                rcm.__exit__(None, None, None)
        return rcm

    def _send(self, method, url: str, data, json, kwargs: dict, name: str | None = None, path: str = "", resend=False):
        """Sends one request. ``resend``: a prepared request sent again by a response hook (an auth object's second
        round trip), as requests' adapter sends it: no auth, session params or hooks applied again."""
        if kwargs:
            get = kwargs.get
            params = get("params")
            headers = get("headers")
            files = get("files")
            auth = get("auth") or self.auth
            cookies = get("cookies")
            timeout = _timeouts(get("timeout"))
            verify = get("verify")
            allow_redirects = get("allow_redirects", True)
            stream = get("stream", False) or self.stream
            hooks = get("hooks")
            cert = get("cert")
            if cert is None:
                cert = self.cert
            proxies = get("proxies")
        else:
            # The common case (a GET of a path) reads no keyword arguments at all.
            params = headers = files = cookies = timeout = verify = hooks = proxies = None
            auth, allow_redirects, stream, cert = self.auth, True, self.stream, self.cert
        if resend:
            auth = hooks = None
        elif self.params:
            params = {**self.params, **(params or {})} if not isinstance(params, str | bytes) else params
        send_url = url if not params and _is_plain(url) else _prepare_url(url, params)

        session_headers = self._session_headers()
        replace = session_headers is not None or (headers is not None and None in headers.values())
        if replace:
            # The whole set is sent (the client's defaults are not added): merged as requests merges, a request
            # header replacing the session's of any case, None removing one.
            merged = CaseInsensitiveDict(session_headers if session_headers is not None else self._headers)
            if headers:
                merged.update(headers)
            hdrs: dict | None = {k: v for k, v in merged.items() if v is not None}
            # What urllib3 and http.client add when a header is missing altogether.
            if "user-agent" not in merged:
                hdrs["User-Agent"] = _URLLIB3_USER_AGENT
            if "accept-encoding" not in merged:
                hdrs["Accept-Encoding"] = "identity"
        else:
            hdrs = dict(headers) if headers else None
        body = None
        if data or files or json is not None:
            p = PreparedRequest()
            p.method = method.upper() if isinstance(method, str) else method
            p.headers = CaseInsensitiveDict()
            p.prepare_body(data, files, json)
            body = p.body
            if body is not None and not isinstance(body, bytes):
                if isinstance(body, str):
                    body = body.encode("utf-8")
                elif hasattr(body, "read"):
                    body = body.read()
                    body = body.encode("utf-8") if isinstance(body, str) else body
                else:
                    # A generator: collected here, then sent chunked as requests does (hyper keeps the header).
                    body = b"".join(c.encode("utf-8") if isinstance(c, str) else c for c in body)
            extra = {k: v for k, v in p.headers.items() if k.lower() != "content-length"}
            if extra:
                hdrs = {**extra, **hdrs} if hdrs else extra
        elif method not in ("GET", "HEAD", "get", "head"):
            # requests announces an empty body for every method but GET and HEAD.
            hdrs = {"Content-Length": "0", **hdrs} if hdrs else {"Content-Length": "0"}
        auth_hooks = None
        if auth:
            hdrs, auth_hooks = self._apply_auth(auth, method, send_url, hdrs, body)
        if cookies:
            hdrs = self._with_cookies(cookies, send_url, hdrs)

        if self.trust_env:
            # requests' merge_environment_settings (Locust's HttpUser turns trust_env off, so users pay nothing).
            proxies = dict(proxies) if proxies else {}
            for k, v in get_environ_proxies(send_url, no_proxy=proxies.get("no_proxy")).items():
                proxies.setdefault(k, v)
            if verify is True or verify is None:
                verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
        if proxies or self.proxies:
            # requests' merge_setting: the request's entries over the session's, None removing one.
            merged = {**self.proxies, **proxies} if proxies else self.proxies
            proxies = {k: v for k, v in merged.items() if v is not None}
        if verify is None:
            verify = self.verify
        ca_bundle, client_cert, native_proxies = (
            _connection_args(send_url, verify, cert, proxies)
            if cert or proxies or verify.__class__ is str
            else _NO_CONNECTION_ARGS
        )
        args = _RequestArgs(method, send_url, hdrs, body)
        value = _bridge.wait(
            self._client.request(
                method,
                send_url,
                hdrs,
                body,
                allow_redirects,
                stream,
                timeout,
                None if verify else True,
                replace,
                None if self.max_redirects == DEFAULT_MAX_REDIRECTS else self.max_redirects,
                True,
                ca_bundle,
                client_cert,
                native_proxies,
            )
        )
        limits = (*(timeout or (None, None)), self.max_redirects)
        if type(value) is _NativeResponse:
            body_error = value.body_error
            if body_error is None:
                # Built as the context manager it becomes in request(), which saves the class swap.
                response: Any = ResponseContextManager(value, args, bool(stream))
                if not resend and (hooks or auth_hooks or self.hooks["response"]):
                    hook_kwargs = {
                        "timeout": kwargs.get("timeout"),
                        "stream": stream,
                        "verify": verify,
                        "cert": cert,
                        "proxies": proxies or {},
                    }
                    response = self._dispatch_hooks(hooks, auth_hooks, response, hook_kwargs)
                return response
            expected = value.header("content-length")
            # requests raises these while reading the body, where the exception carries no request.
            exc = body_exception(body_error, send_url, limits, None, len(value.content), expected)
        else:
            proxy = select_proxy(send_url, proxies) if proxies else None
            # After redirects the exception carries the request of the last hop, as requests' does.
            last = value.request
            prepared = (_RequestArgs(last[0], last[1], hdrs, None) if last else args).prepared()
            exc = to_requests_exception(value, send_url, limits, prepared, proxy)
        if isinstance(exc, rex.InvalidURL | rex.MissingSchema | rex.InvalidSchema):
            raise exc
        return _ErrorContextManager(exc)

    def _dispatch_hooks(self, hooks, auth_hooks, response, hook_kwargs: dict):
        # requests' merge_hooks: a request's own response hooks replace the session's; the auth object's follow.
        extra = (hooks or {}).get("response", [])
        chain = list(extra) if isinstance(extra, list | tuple) else [extra]
        if not chain:
            chain = list(self.hooks["response"])
        if auth_hooks:
            chain += auth_hooks
        response.connection = _Resender(self)
        result = dispatch_hook("response", {"response": chain}, response, **hook_kwargs)
        if result is not response:
            # A hook sent the request again (digest auth): the reported time spans both round trips, as Locust's.
            result._resent = True
        return result

    def _apply_auth(self, auth, method, url: str, hdrs: dict | None, body) -> tuple[dict, list | None]:
        """The headers with the auth object's, and the response hooks it registered (digest auth's 401 handler)."""
        if isinstance(auth, tuple) and len(auth) == 2:
            auth = HTTPBasicAuth(*auth)
        if type(auth) is HTTPBasicAuth:
            return {**(hdrs or {}), "Authorization": _basic_auth_str(auth.username, auth.password)}, None
        # Any other requests auth object is called on a PreparedRequest, as requests does.
        p = _RequestArgs(method, url, hdrs, body).prepared()
        r = auth(p)
        if r.url != url:
            raise NotImplementedError("locust-rs HttpSession: an auth object that rewrites the URL is not supported")
        return dict(r.headers), r.hooks.get("response") or None

    def _with_cookies(self, cookies, url: str, hdrs: dict | None) -> dict:
        if hdrs and any(k.lower() == "cookie" for k in hdrs):
            return hdrs
        # As requests: the session's cookies, then the request's (domain-less, so a same-named one is sent too).
        pairs = [self._client.cookie_header(url)]
        if isinstance(cookies, dict):
            pairs += [f"{k}={v}" for k, v in cookies.items() if v is not None]
        else:
            pairs += [f"{c.name}={c.value}" for c in cookies]
        return {**(hdrs or {}), "Cookie": "; ".join(p for p in pairs if p)}

    def send(self, request, **kwargs):
        """Sends a ``PreparedRequest`` through the engine (reported to Locust like any request)."""
        kwargs.pop("name", None)
        return self.request(request.method, request.url, data=request.body, headers=dict(request.headers), **kwargs)

    def prepare_request(self, request) -> PreparedRequest:
        prep = super().prepare_request(request)
        if self.explicit_name:
            prep._explicit_name = self.explicit_name  # type: ignore[attr-defined]
        return prep

    def close(self) -> None:
        """Drops this session's idle connections (when it does not share a pool), as requests' close does."""
        if self._owns_pool:
            self._client.pool.close()

    def get(self, url, *, data=None, json=None, **kwargs):
        """Sends a GET request"""
        if kwargs:
            kwargs.setdefault("allow_redirects", True)
        return self.request("GET", url, data=data, json=json, **kwargs)

    def options(self, url, *, data=None, json=None, **kwargs):
        """Sends a OPTIONS request"""
        if kwargs:
            kwargs.setdefault("allow_redirects", True)
        return self.request("OPTIONS", url, data=data, json=json, **kwargs)

    def head(self, url, *, data=None, json=None, **kwargs):
        """Sends a HEAD request"""
        kwargs.setdefault("allow_redirects", False)
        return self.request("HEAD", url, data=data, json=json, **kwargs)

    def post(self, url, data=None, json=None, **kwargs):
        """Sends a POST request"""
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url, data=None, *, json=None, **kwargs):
        """Sends a PUT request"""
        return self.request("PUT", url, data=data, json=json, **kwargs)

    def patch(self, url, data=None, *, json=None, **kwargs):
        """Sends a PATCH request"""
        return self.request("PATCH", url, data=data, json=json, **kwargs)

    def delete(self, url, *, data=None, json=None, **kwargs):
        """Sends a DELETE request"""
        return self.request("DELETE", url, data=data, json=json, **kwargs)


class HttpUser(User, RestMixin[RestResponseContextManager]):
    """A drop-in for Locust's ``HttpUser`` whose HTTP work runs in Rust. Change ``from locust import HttpUser`` to
    ``from locust_rs import HttpUser`` (or run the unchanged locustfile with ``locust-rs``)."""

    abstract: bool = True
    """If abstract is True, the class is meant to be subclassed, and users will not choose this locust during a test"""

    pool_manager = None
    """Connections shared by every instance: a :py:class:`locust_rs.ConnectionPool` or a urllib3 ``PoolManager``.
    If not given, each user has its own connections."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.host is None:
            raise StopTest(
                "You must specify the base host. Either in the host attribute in the User class, or on the command "
                "line using the --host option."
            )
        self.client = HttpSession(
            base_url=self.host,
            request_event=self.environment.events.request,
            user=self,
            pool_manager=self.pool_manager,
        )
        self.client.trust_env = False
