"""Engine errors become the exceptions each facade's users already catch: one module per facade.

The Rust side reports a failed request as a ``NativeError`` (kind, message, errno). ``fasthttp`` maps it as Locust's
FastHttpUser (geventhttpclient) would raise it, ``requests`` as Locust's HttpUser (requests, urllib3), ``websocket``
to locust-rs's WebSocket exceptions. Each module states what it does with every kind: ``MAPPED`` (a kind it turns
into its own exception) or ``NOT_RAISED`` (a kind its client never produces); ``tests/test_errors.py`` fails when a
kind of ``_native.ERROR_KINDS`` is in neither.
"""

from __future__ import annotations

from requests.exceptions import RequestException

from locust_rs import _native

KINDS: frozenset[str] = frozenset(_native.ERROR_KINDS)


class BodyTooLarge(RequestException):
    """A response body over the session's ``max_body_size`` (``--max-body-size``): the request failed, and the body
    read so far was dropped. A ``requests.RequestException``, so also an ``OSError``, as the other transport errors
    of both clients are."""
