"""What locust-rs's two sessions share (Locust's ``HttpSession`` and ``FastHttpSession`` repeat it): the pool behind a
session, the cookie-jar view of the Rust cookie store, credentials in a base URL, URL building and
``rename_request``."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator
from contextlib import contextmanager
from http.cookiejar import Cookie, CookieJar
from urllib.parse import unquote, urlparse, urlunparse

from locust_rs import _native

absolute_http_url_regexp = re.compile(r"^https?://", re.IGNORECASE)

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
