"""What locust-rs's two sessions share (Locust's ``HttpSession`` and ``FastHttpSession`` repeat it): the pool behind a
session, the cookie-jar view of the Rust cookie store, credentials in a base URL, URL building,
``rename_request`` and the ``catch_response=True`` with-block of their responses."""

from __future__ import annotations

from locust.exception import (
    CatchResponseError,
    LocustError,
    ResponseError,
)

import re
import time
from collections.abc import Callable, Generator
from contextlib import contextmanager
from http.cookiejar import Cookie, CookieJar
from typing import Any
from urllib.parse import unquote, urlparse, urlunparse
from weakref import ref as _ref

from locust_rs import _native
from locust_rs.stats import record as _record

absolute_http_url_regexp = re.compile(r"^https?://", re.IGNORECASE)

MAX_BODY_SIZE = 256 * 1024 * 1024
"""The default ``max_body_size``: the most bytes of one response body a session holds in memory."""

_SIZE = re.compile(r"\s*(\d+)\s*(?:([kmg])(i?b)?|b)?\s*", re.IGNORECASE)


def parse_size(value: int | str) -> int:
    """Bytes from an int or a string such as ``"1048576"``, ``"512k"``, ``"256MiB"`` or ``"1GB"`` (the units are
    powers of 1024, as for memory)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"max_body_size must be 0 (no limit) or more bytes, not {value}")
        return value
    m = _SIZE.fullmatch(str(value))
    if m is None:
        raise ValueError(f"max_body_size: {value!r} is not a size (bytes, or a number with k, M or G: 256MiB)")
    unit = (m.group(2) or "").lower()
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]


def body_limit(value, user) -> int | None:
    """The body limit of a session in bytes (None: none). ``value`` is the session's or its user's ``max_body_size``;
    if it is None, the run's ``--max-body-size``, else :py:data:`MAX_BODY_SIZE`. 0 turns the limit off."""
    if value is None:
        options = getattr(getattr(user, "environment", None), "parsed_options", None)
        value = getattr(options, "max_body_size", None)
        # Locust's web form posts a field left empty as "": the default, as when the option is not given.
        if isinstance(value, str) and not value.strip():
            value = None
    limit = parse_size(MAX_BODY_SIZE if value is None else value)
    return limit or None


def add_options(parser) -> None:
    """The sessions' command-line option, ``--max-body-size``."""
    parser.add_argument(
        "--max-body-size",
        default=None,
        metavar="SIZE",
        env_var="LOCUST_MAX_BODY_SIZE",
        help="The most bytes of a response body a locust-rs user holds in memory; a larger body fails the request "
        "(bytes, or 512k, 256MiB, 1G; 0: no limit; default 256MiB). A user class's max_body_size attribute wins. "
        "Bodies read with stream=True are not limited.",
    )


class WeakResponse(_ref):
    """A weak reference to a response that reads as the response while it lives, as ``weakref.proxy`` does, and
    stays harmless after it dies. A dead ``weakref.proxy`` raises ReferenceError even on ``isinstance()`` and
    ``type()`` checks through ``__class__``, so code that walks ``gc.get_objects()`` (Locust's own test helpers,
    objgraph) crashed on the ones that exceptions kept in Locust's ``errors`` hold; this one then reads as itself.
    A dead one still raises ReferenceError for any attribute a task reads, as the proxy did.

    A subclass of ``weakref.ref``, so that making one (once per HttpSession request) costs what ``weakref.proxy``
    did: a class of its own with a slot took five times as long (0.51 µs against 0.09)."""

    __slots__ = ()

    def _target(self):
        target = self()
        if target is None:
            raise ReferenceError("weakly-referenced object no longer exists")
        return target

    @property  # type: ignore[misc]  # read-only on purpose, where object's is writable
    def __class__(self):  # isinstance() asks for it: the response's class while it lives
        target = self()
        return WeakResponse if target is None else type(target)

    def __getattr__(self, name):
        return getattr(self._target(), name)

    def __setattr__(self, name, value):
        setattr(self._target(), name, value)

    def __bool__(self) -> bool:
        return bool(self._target())

    def __iter__(self):
        return iter(self._target())

    def __enter__(self):
        return self._target().__enter__()

    def __exit__(self, *exc):
        return self._target().__exit__(*exc)

    def __repr__(self) -> str:
        target = self()
        return "<WeakResponse to a dead response>" if target is None else repr(target)


def _untangle(exception, response) -> None:
    """Breaks the cycles a reported exception makes with its response, which holds it in ``request_meta``: its
    traceback's frames hold the response, and so does requests' ``HTTPError.response``. Without this, the response
    and its body live until the cycle collector runs. The traceback is not reported; ``.response`` stays usable."""
    exception.__traceback__ = None
    if getattr(exception, "response", None) is response:
        exception.response = WeakResponse(response)


class ClosesOnStop:
    """Mixed into both HTTP user classes: a user that stops closes its client's own connections at once, as its
    WebSocket connections do, not when the cycle collector finds the user, often a minute later (a ramp down held
    every stopped user's file descriptors meanwhile)."""

    def start(self, group):
        greenlet = super().start(group)  # type: ignore[misc]
        greenlet.link(lambda _g: _close_client(self))
        return greenlet


def _close_client(user) -> None:
    # if it has a client that can: a task may have replaced it
    close = getattr(getattr(user, "client", None), "close", None)
    if callable(close):
        close()


ConnectionPool = _native.ConnectionPool
"""Connections (and the ``concurrency`` limit) shared by every user that names this pool as its
``client_pool``, like geventhttpclient's ``HTTPClientPool``: ``client_pool = ConnectionPool(concurrency=5)``."""


_foreign_pools: dict[int, tuple[object, ConnectionPool]] = {}


def shared_pool(pool, concurrency: Callable[[], int]) -> ConnectionPool | None:
    """The native pool behind a session's pool argument: ours as it is, and for a foreign one (geventhttpclient's
    ``HTTPClientPool``, urllib3's ``PoolManager``) one native pool per such object, made with ``concurrency()``."""
    if pool is None or isinstance(pool, ConnectionPool):
        return pool
    entry = _foreign_pools.get(id(pool))
    if entry is None or entry[0] is not pool:
        entry = _foreign_pools[id(pool)] = (pool, ConnectionPool(int(concurrency())))
    return entry[1]


class CookieJarView(CookieJar):
    """The session's cookies as a ``CookieJar``. Reads are rebuilt from the Rust cookie store; ``set_cookie`` and
    ``clear`` write through to it, so a cookie set here is sent by the next matching request."""

    def __init__(self, client) -> None:
        super().__init__()
        self._client = client

    def _refresh(self) -> None:
        CookieJar.clear(self)
        for name, value, domain, path in self._client.cookies():
            CookieJar.set_cookie(
                self,
                Cookie(0, name, value, None, False, domain, bool(domain), False, path, True, False, None, False, None,
                       None, {}),
            )  # fmt: skip

    def __iter__(self):
        self._refresh()
        return super().__iter__()

    def __len__(self) -> int:
        self._refresh()
        return super().__len__()

    def set_cookie(self, cookie: Cookie) -> None:
        host = cookie.domain.lstrip(".") or "localhost"
        attrs = [f"{cookie.name}={cookie.value or ''}", f"Path={cookie.path or '/'}"]
        if cookie.domain_specified or cookie.domain.startswith("."):
            attrs.append(f"Domain={host}")
        if cookie.secure:
            attrs.append("Secure")
        if cookie.expires is not None:
            attrs.append(f"Max-Age={max(0, int(cookie.expires - time.time()))}")
        scheme = "https" if cookie.secure else "http"
        self._client.set_cookie("; ".join(attrs), f"{scheme}://{host}{cookie.path or '/'}")

    def clear(self, domain=None, path=None, name=None) -> None:
        if domain is None and path is None and name is None:
            self._client.clear_cookies()
            CookieJar.clear(self)
            return
        # A partial clear: keep every other cookie by clearing all and writing the rest back.
        keep = [c for c in self if not _cookie_matches(c, domain, path, name)]
        self._client.clear_cookies()
        for c in keep:
            self.set_cookie(c)


def _cookie_matches(cookie: Cookie, domain, path, name) -> bool:
    return (
        (domain is None or cookie.domain.lstrip(".") == domain.lstrip("."))
        and (path is None or cookie.path == path)
        and (name is None or cookie.name == name)
    )


def split_credentials(base_url) -> tuple[str, str, str] | None:
    """Locust's treatment of ``user:password@`` in a base URL: the URL without them, and the user and password
    (percent-decoded); None unless both are there."""
    parsed = urlparse(base_url)
    if not (parsed.username and parsed.password):
        return None
    netloc = parsed.netloc.rpartition("@")[2]
    url = urlunparse((parsed.scheme, netloc, parsed.path, parsed.params, parsed.query, parsed.fragment))
    return str(url), unquote(parsed.username), unquote(parsed.password)


class SessionCommon:
    """What Locust's two sessions share, for both of ours (each has ``base_url``, ``request_name`` and ``_client``)."""

    # Set by each subclass's __init__.
    base_url: str | None
    request_name: str | None
    _client: _native.Client

    @property
    def pool(self) -> _native.ConnectionPool:
        """The connection pool this session's requests use."""
        return self._client.pool

    def _build_url(self, path: str) -> str:
        """prepend url with hostname unless it's already an absolute URL"""
        if absolute_http_url_regexp.match(path):
            return path
        return f"{self.base_url}{path}"

    @contextmanager
    def rename_request(self, name: str) -> Generator[None]:
        """Group requests using the "with" keyword"""
        self.request_name = name
        try:
            yield
        finally:
            self.request_name = None


_context_classes: dict[tuple[type, type], type] = {}


class CatchResponse:
    """The with-block of a ``ResponseContextManager`` (``catch_response=True``), as Locust's ``HttpSession`` and
    ``FastHttpSession`` each have it: ``success()`` or ``failure()`` decide how the request is reported, else the
    response's own ``raise_for_status()`` does.

    It comes before the response class in the bases, whose own ``success``/``failure``/``__enter__`` it replaces. A
    subclass names ``_response_class`` (the response its session makes) and defines ``_report_status()``."""

    _response_class: type
    _manual_result: bool | Exception | None = None
    _entered: bool = False
    _catch_response: bool
    _request_event: Any
    request_meta: dict

    @classmethod
    def _context_class(cls, response_cls: type) -> type:
        """The class a response of ``response_cls`` becomes: ``cls`` for the session's own responses, else (a hook's
        response, an error's) a class made once of both, so that response keeps its behaviour."""
        if response_cls is cls._response_class:
            return cls
        if issubclass(response_cls, cls):
            return response_cls
        key = (response_cls, cls)
        combined = _context_classes.get(key)
        if combined is None:
            # type() would name this module; reprs should name the module cls is imported from.
            combined = _context_classes[key] = type(cls.__name__, (cls, response_cls), {"__module__": cls.__module__})
        return combined

    def __enter__(self):
        self._entered = True
        if not self._catch_response:
            raise LocustError("In order to use a with-block for requests, you must also pass catch_response=True")
        return self

    def __exit__(self, exc, value, traceback):
        manual = self._manual_result
        if manual is not None:
            if manual is True:
                self.request_meta["exception"] = None
            elif isinstance(manual, Exception):
                self.request_meta["exception"] = manual
            self._report_request()
            return exc is None

        if exc:
            if not isinstance(value, ResponseError):
                return False
            self.request_meta["exception"] = value
            self._report_request()
        else:
            self._report_status()
        return True

    def _report_status(self) -> None:
        """Reports the request of a block that ended without an exception and without ``success()``/``failure()``:
        as a failure if ``raise_for_status()`` raises one of the exceptions the session reports."""
        raise NotImplementedError

    def _report_request(self, exc=None) -> None:
        meta = self.request_meta
        exception = meta["exception"]
        if (core := _record.only_core(self._request_event)) is not None:
            interval = getattr(self, "_locust_rs_interval", 0)
            lead = getattr(self, "_locust_rs_lead", None)
            _record.record(core, meta["request_type"], meta["name"], meta["response_time"], meta["response_length"],
                           exception, interval, lead)  # fmt: skip
        elif type(meta["response"]) is WeakResponse:
            # HttpSession keeps a weak reference to itself there (see clients.py); listeners get the response.
            self._request_event.fire(**{**meta, "response": self})
        else:
            self._request_event.fire(**meta)
        if exception is not None:
            _untangle(exception, self)

    def raise_for_status(self) -> None:
        """The response's ``raise_for_status()``, unless ``success()`` (nothing is raised) or ``failure()`` (its
        exception is) decided."""
        __tracebackhide__ = True
        manual = self._manual_result
        if not manual:
            super().raise_for_status()  # type: ignore[misc]
        elif isinstance(manual, Exception):
            raise manual

    def success(self) -> None:
        """Report the response as successful

        Example::

            with self.client.get("/does/not/exist", catch_response=True) as response:
                if response.status_code == 404:
                    response.success()
        """
        if not self._entered:
            raise LocustError(
                "Tried to set status on a request that has not yet been made. Make sure you use a with-block, "
                "like this:\n\nwith self.client.request(..., catch_response=True) as response:\n    response.success()"
            )
        self._manual_result = True

    def failure(self, exc) -> None:
        """Report the response as a failure. A non-exception (a string) is wrapped in a
        ``CatchResponseError``.

        Example::

            with self.client.get("/", catch_response=True) as response:
                if response.content == "":
                    response.failure("No data")
        """
        if not self._entered:
            raise LocustError(
                "Tried to set status on a request that has not yet been made. Make sure you use a with-block, "
                "like this:\n\nwith self.client.request(..., catch_response=True) as response:\n"
                "    response.failure(...)"
            )
        if not isinstance(exc, Exception):
            exc = CatchResponseError(exc)
        self._manual_result = exc
