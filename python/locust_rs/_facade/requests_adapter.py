"""The requests adapter of ``locust_rs.clients.HttpSession``: what requests' ``Session.request`` and
``HTTPAdapter.send`` do to a request (URL, params, headers, body, auth, cookies, proxies, TLS files, response
hooks), done here only where there is something to do, and then the request sent through the Rust engine.

The functions take the session first: ``HttpSession`` holds them as its methods (``_send`` is ``send``), so a
request pays no extra call.
"""

from __future__ import annotations

import os
import re
from typing import Any

from requests import exceptions as rex
from requests.auth import HTTPBasicAuth, _basic_auth_str
from requests.hooks import dispatch_hook
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict
from requests.utils import check_header_validity, get_environ_proxies, prepend_scheme_if_needed, select_proxy
from urllib3.connection import _get_default_user_agent
from urllib3.exceptions import ProxySchemeUnknown
from urllib3.util import Timeout, parse_url

from locust_rs import _native
from locust_rs._errors.requests import body_exception, to_requests_exception
from locust_rs._facade.requests_response import ResponseContextManager, _ErrorContextManager, _RequestArgs
from locust_rs._gevent import bridge as _bridge

# A URL that requests' prepare_url would leave exactly as it is: plain ASCII, nothing to quote or IDNA-encode.
_PLAIN_URL = re.compile(
    r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?(/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*)?(\?[^\s#\"<>`{}|\\^]*)?$"
)
_NativeResponse = _native.NativeResponse
# How the engine words a header it refuses (crates/locust-rs/src/http: client.rs, mod.rs).
_ENGINE_HEADER_REFUSAL = re.compile("invalid header field name |invalid value for header field |too many headers")
_URLLIB3_USER_AGENT = _get_default_user_agent()
# requests' Session.max_redirects
DEFAULT_MAX_REDIRECTS = 30


def send(session, method, url: str, data, json, kwargs: dict, resend=False):
    """Sends one request. ``resend``: a prepared request sent again by a response hook (an auth object's second
    round trip), as requests' adapter sends it: no auth, session params or hooks applied again."""
    if kwargs:
        get = kwargs.get
        params = get("params")
        headers = get("headers")
        files = get("files")
        auth = get("auth") or session.auth
        cookies = get("cookies")
        timeout = _timeouts(get("timeout"))
        verify = get("verify")
        allow_redirects = get("allow_redirects", True)
        stream = get("stream", False) or session.stream
        hooks = get("hooks")
        cert = get("cert")
        if cert is None:
            cert = session.cert
        proxies = get("proxies")
    else:
        # The common case (a GET of a path) reads no keyword arguments at all.
        params = headers = files = cookies = timeout = verify = hooks = proxies = None
        auth, allow_redirects, stream, cert = session.auth, True, session.stream, session.cert
    if resend:
        auth = hooks = None
    elif session.params:
        params = {**session.params, **(params or {})} if not isinstance(params, str | bytes) else params
    send_url = url if not params and _is_plain(url) else _prepare_url(url, params)

    session_headers = session._session_headers()
    replace = session_headers is not None or (headers is not None and None in headers.values())
    hdrs: dict | None
    if replace:
        # The whole set is sent (the client's defaults are not added): merged as requests merges, a request
        # header replacing the session's of any case, None removing one.
        merged = CaseInsensitiveDict(session_headers if session_headers is not None else session._headers)
        if headers:
            merged.update(headers)
        hdrs = {k: v for k, v in merged.items() if v is not None}
        # What urllib3 and http.client add when a header is missing altogether.
        if "user-agent" not in merged:
            hdrs["User-Agent"] = _URLLIB3_USER_AGENT
        if "accept-encoding" not in merged:
            hdrs["Accept-Encoding"] = "identity"
    else:
        hdrs = dict(headers) if headers else None
    if hdrs is not None:  # as `headers or replace`: the request's headers, or the whole set
        try:
            _check_headers(hdrs)
        except rex.InvalidHeader as e:
            return _ErrorContextManager(e)
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
        hdrs, auth_hooks = session._apply_auth(auth, method, send_url, hdrs, body)
    if cookies:
        hdrs = session._with_cookies(cookies, send_url, hdrs)

    if session.trust_env:
        # requests' merge_environment_settings (Locust's HttpUser turns trust_env off, so users pay nothing).
        proxies = dict(proxies) if proxies else {}
        for k, v in get_environ_proxies(send_url, no_proxy=proxies.get("no_proxy")).items():
            proxies.setdefault(k, v)
        if verify is True or verify is None:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
    if proxies or session.proxies:
        # requests' merge_setting: the request's entries over the session's, None removing one.
        merged_proxies = {**session.proxies, **proxies} if proxies else session.proxies
        proxies = {k: v for k, v in merged_proxies.items() if v is not None}
    if verify is None:
        verify = session.verify
    ca_bundle, client_cert, native_proxies = (
        _connection_args(send_url, verify, cert, proxies)
        if cert or proxies or verify.__class__ is str
        else _NO_CONNECTION_ARGS
    )
    args = _RequestArgs(method, send_url, hdrs, body)
    try:
        ticket = session._client.request(
            method,
            send_url,
            hdrs,
            body,
            allow_redirects,
            stream,
            timeout,
            None if verify else True,
            replace,
            None if session.max_redirects == DEFAULT_MAX_REDIRECTS else session.max_redirects,
            True,
            ca_bundle,
            client_cert,
            native_proxies,
        )
    except ValueError as e:
        # A header the engine cannot send although requests' checks passed it (a name that is not an HTTP token) is a
        # failed request, as requests' InvalidHeader is; any other refusal (a NaN timeout) raises, as documented.
        if not _ENGINE_HEADER_REFUSAL.match(str(e)):
            raise
        return _ErrorContextManager(rex.InvalidHeader(str(e)))
    value = _bridge.wait(ticket)
    limits = (*(timeout or (None, None)), session.max_redirects)
    if type(value) is _NativeResponse:
        body_error = value.body_error
        if body_error is None:
            # Built as the context manager it becomes in request(), which saves the class swap.
            response: Any = ResponseContextManager(value, args, bool(stream))
            if not resend and (hooks or auth_hooks or session.hooks["response"]):
                hook_kwargs = {
                    "timeout": kwargs.get("timeout"),
                    "stream": stream,
                    "verify": verify,
                    "cert": cert,
                    "proxies": proxies or {},
                }
                response = session._dispatch_hooks(hooks, auth_hooks, response, hook_kwargs)
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


def dispatch_hooks(session, hooks, auth_hooks, response, hook_kwargs: dict):
    # requests' merge_hooks: a request's own response hooks replace the session's; the auth object's follow.
    extra = (hooks or {}).get("response", [])
    chain = list(extra) if isinstance(extra, list | tuple) else [extra]
    if not chain:
        chain = list(session.hooks["response"])
    if auth_hooks:
        chain += auth_hooks
    response.connection = _Resender(session)
    # Any: whatever the hooks returned (a requests.Response, or ours when a hook sent the request again).
    result: Any = dispatch_hook("response", {"response": chain}, response, **hook_kwargs)
    if result is not response:
        # A hook sent the request again (digest auth): the reported time spans both round trips, as Locust's.
        result._resent = True
    return result


def apply_auth(session, auth, method, url: str, hdrs: dict | None, body) -> tuple[dict, list | None]:
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


def with_cookies(session, cookies, url: str, hdrs: dict | None) -> dict:
    if hdrs and any(k.lower() == "cookie" for k in hdrs):
        return hdrs
    # As requests: the session's cookies, then the request's (domain-less, so a same-named one is sent too).
    pairs = [session._client.cookie_header(url)]
    if isinstance(cookies, dict):
        pairs += [f"{k}={v}" for k, v in cookies.items() if v is not None]
    else:
        pairs += [f"{c.name}={c.value}" for c in cookies]
    return {**(hdrs or {}), "Cookie": "; ".join(p for p in pairs if p)}


def default_name(session, path: str, complete_url: str, sent_url: str) -> str:
    """Locust's default event name: the path and query of the (first) request sent. For a plain path on a plain
    base URL, sent as built, that is the path itself (no parsing)."""
    if sent_url is complete_url and session._plain_base and path[:1] == "/":
        return path
    return _path_url(sent_url)


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


def _check_headers(hdrs: dict) -> None:
    """What requests and http.client check before sending: ``InvalidHeader`` (a failed request, in Locust) for a name
    or value requests refuses, ``UnicodeEncodeError`` (raised) for a ``str`` value that latin-1 cannot encode."""
    for header in hdrs.items():
        check_header_validity(header)
        value = header[1]
        if value.__class__ is str and not value.isascii():
            value.encode("latin-1")


def _timeouts(timeout) -> tuple | None:
    """(connect, read) seconds, checked by urllib3's ``Timeout`` as requests' adapter checks them: the same
    ``ValueError``, with the same words, for a boolean, a non-number, zero or less."""
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        try:
            connect, read = timeout
            Timeout(connect=connect, read=read)
        except ValueError:
            raise ValueError(
                f"Invalid timeout {timeout}. Pass a (connect, read) timeout tuple, or a single float to set both "
                "timeouts to the same value."
            ) from None
        return (connect, read)
    Timeout(connect=timeout, read=timeout)
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
    """requests' URL preparation (``MissingSchema``, ``InvalidURL``), then its adapter lookup: a URL that is not
    http(s) has no adapter (``InvalidSchema``)."""
    p = PreparedRequest()
    p.prepare_url(url, params)
    assert p.url is not None  # prepare_url sets it, or raises
    if not p.url.lower().startswith(("http://", "https://")):
        raise rex.InvalidSchema(f"No connection adapters were found for {p.url!r}")
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
