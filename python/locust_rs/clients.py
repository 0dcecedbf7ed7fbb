"""Drop-in ``HttpUser`` and ``HttpSession`` (Locust's requests-style client) on the Rust engine of ``FastHttpUser``.

The names, signatures and events mirror ``locust.clients`` and ``locust.user.users.HttpUser``; responses are
``requests.Response`` objects whose body and headers stay in Rust until read. The request is encoded with requests'
own machinery where there is anything to encode (bodies, files, params, auth objects); a plain GET skips all of it.
``tests/test_contract_httpsession.py`` compares this module with Locust's HttpSession side by side.

The responses are in ``_facade.requests_response``, the encoding and sending of a request (requests' adapter) in
``_facade.requests_adapter``; this module keeps the session's state and Locust's reporting.
"""

from __future__ import annotations

from locust.exception import StopTest
from locust.user import User
from locust.user.users import RestMixin

import copy
import functools
import re
import time
from collections.abc import Callable
from http.cookiejar import Cookie
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.auth import HTTPBasicAuth
from requests.cookies import RequestsCookieJar, cookiejar_from_dict
from requests.hooks import default_hooks
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict
from requests.utils import default_headers

from locust_rs import (
    _native,
    otel,
)
from locust_rs import arrival as _arrival
from locust_rs import stats as _stats
from locust_rs._facade import requests_adapter as _requests_adapter
from locust_rs._facade.requests_adapter import DEFAULT_MAX_REDIRECTS
from locust_rs._facade.requests_response import (  # noqa: F401 - Locust's names, importable from here as from locust.clients
    Response,
    ResponseContextManager,
    RestResponseContextManager,
)
from locust_rs._facade.sessions import (  # noqa: F401 - absolute_http_url_regexp: Locust's module-level name
    ClosesOnStop,
    ConnectionPool,
    CookieJarView,
    SessionCommon,
    WeakResponse,
    absolute_http_url_regexp,
    body_limit,
    shared_pool,
    split_credentials,
)
from locust_rs._locust import plugin  # noqa: F401 - its Locust listeners (HDR outputs, thresholds) come with our users
from locust_rs.stats.record import fire_request

# requests has no limit on requests in flight per session (urllib3 opens extra connections when its pool is busy).
_UNLIMITED = 1 << 16


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
        value: Any = cookie.value  # whatever the caller set: only a string-like one is unquoted, as requests did
        if hasattr(value, "startswith") and value.startswith('"') and value.endswith('"'):
            cookie.value = value.replace('\\"', "")
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


class HttpSession(SessionCommon, requests.Session):
    """An HTTP session for one user, with the constructor, attributes and methods of ``locust.clients.HttpSession``
    (a ``requests.Session``): cookies, default headers, auth and verify persist across requests, each request is
    reported to Locust. The request itself runs in Rust.

    :param pool_manager: share connections between sessions: a :py:class:`locust_rs.ConnectionPool`, or a urllib3
        ``PoolManager`` (each one maps to one native pool).
    :param max_body_size: locust-rs only: the most bytes of a response body held in memory (see
        ``HttpUser.max_body_size``).
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
        self._co_interval = _stats.session_interval(user)
        self._arrival = _arrival.iteration(user)
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
            max_body_size=body_limit(kwargs.get("max_body_size"), user),
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

    def _session_headers(self) -> _SessionHeaders | None:
        """The session's headers, or None while they are the defaults the client holds."""
        h = self._headers
        if h.version == 0 and self._headers_version[0] is h:
            return None
        return h

    def request(  # type: ignore[override]  # Locust's signature, which differs from requests'
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
        lead = None if (arrival := self._arrival) is None else arrival.lead()
        response = self._send(method, complete_url, data, json, kwargs)

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
        if lead is not None:
            response._locust_rs_lead = lead
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
            # The response holds request_meta: a strong reference back would make a cycle, which only the cycle
            # collector frees, and a 100 MB body would outlive `del response`. Events get the response itself.
            "response": WeakResponse(response),
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
                fire_request(self.request_event, method, name, response_time, response_length, None, rcm, context,
                             start_time, complete_url, self._co_interval, lead)  # fmt: skip
            else:
                rcm.__exit__(None, None, None)
        return rcm

    # requests' adapter lives in its own module; its functions take the session first, so they are methods here.
    _send = _requests_adapter.send
    _dispatch_hooks = _requests_adapter.dispatch_hooks
    _apply_auth = _requests_adapter.apply_auth
    _with_cookies = _requests_adapter.with_cookies
    _default_name = _requests_adapter.default_name

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

    def get(self, url, *, data=None, json=None, **kwargs):  # type: ignore[override]  # Locust's signature
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


class HttpUser(ClosesOnStop, User, RestMixin[RestResponseContextManager]):
    """A drop-in for Locust's ``HttpUser`` whose HTTP work runs in Rust. Change ``from locust import HttpUser`` to
    ``from locust_rs import HttpUser`` (or run the unchanged locustfile with ``locust-rs``)."""

    abstract: bool = True
    """If abstract is True, the class is meant to be subclassed, and users will not choose this locust during a test"""

    pool_manager = None
    """Connections shared by every instance: a :py:class:`locust_rs.ConnectionPool` or a urllib3 ``PoolManager``.
    If not given, each user has its own connections."""

    max_body_size: int | str | None = None
    """locust-rs only: the most bytes of one response body held in memory (decoded); a larger body fails the request
    with :py:class:`locust_rs.BodyTooLarge`. None: the run's ``--max-body-size`` (default 256 MiB); 0: no limit.
    ``stream=True`` bodies are not limited."""

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
            max_body_size=self.max_body_size,
        )
        self.client.trust_env = False


def _traced_request(request: Callable) -> Callable:
    """``HttpSession.request``, traced while OpenTelemetry is instrumented (:py:func:`locust_rs.otel.traceable`)."""

    @functools.wraps(request)
    def traced(self, method, url, name=None, catch_response=False, context={}, **kwargs):  # noqa: B006
        state = otel.tracing()
        url = str(url)
        full = self._base_url + url if url[:1] == "/" and self._base_url else self._build_url(url)
        headers = kwargs.get("headers")
        sent = otel.lower_headers(self.headers, headers)
        label = name or self.request_name or (urlsplit(full).path or "/")
        call = state.start(method, full, f"{method.upper()} {label}", sent) if state is not None else None
        if state is None or call is None:
            return request(self, method, url, name, catch_response, context, **kwargs)
        trace_headers = state.headers_for(call, sent)
        if trace_headers:
            kwargs["headers"] = otel.with_headers(headers, trace_headers)
        response = state.run(call, request, (self, method, url, name, catch_response, context), kwargs)
        meta = getattr(response, "request_meta", None)
        duration = meta["response_time"] if meta else otel.elapsed_ms(call.start_time)
        if meta and meta["url"] != full:
            # The URL sent, with params (the request's and the session's) that requests' rules merged.
            state.set_url(call, meta["url"])
        native = response._native
        if native is None:
            state.finish(call, duration, error=response.error)
        else:
            headers = response.headers if state.captured_response else None
            state.finish(call, duration, response.status_code, native=native, response_headers=headers)
        return response

    return traced


otel.traceable(HttpSession, "request", _traced_request)
