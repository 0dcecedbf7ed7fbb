"""One place maps the engine's error kinds to exceptions: every facade decides what to do with every kind."""

import locust  # noqa: F401,I001 - monkey-patches first

import errno

import pytest

from locust_rs import _errors, _native
from locust_rs._errors import fasthttp, requests, websocket

FACADES = {"fasthttp": fasthttp, "requests": requests, "websocket": websocket}


class FakeError:
    """What a NativeError carries, for any kind."""

    def __init__(self, kind, errno=None, message="boom"):
        self.kind, self.errno, self.message, self.request = kind, errno, message, None


def test_the_engine_reports_its_kinds():
    assert _errors.KINDS == set(_native.ERROR_KINDS)
    assert {"connect_refused", "timeout", "ws_closed", "internal"} <= _errors.KINDS
    assert len(_native.ERROR_KINDS) == len(_errors.KINDS)  # no kind named twice


@pytest.mark.parametrize("facade", FACADES)
def test_every_facade_decides_on_every_kind(facade):
    module = FACADES[facade]
    assert not module.MAPPED & module.NOT_RAISED, "a kind is both mapped and said never to be raised"
    missing = _errors.KINDS - module.MAPPED - module.NOT_RAISED
    assert not missing, f"{facade} has no mapping for {sorted(missing)}: map it, or list it in NOT_RAISED"
    assert not (module.MAPPED | module.NOT_RAISED) - _errors.KINDS, "a kind the engine does not have"


def _map(facade, err):
    if facade == "fasthttp":
        return fasthttp.to_exception(err, "http://127.0.0.1:1/x", "GET", 0)
    if facade == "requests":
        return requests.to_requests_exception(err, "http://127.0.0.1:1/x", (1.0, 2.0, 30), None)
    return websocket.to_exception(err)


@pytest.mark.parametrize("facade", FACADES)
@pytest.mark.parametrize("kind", sorted(_native.ERROR_KINDS))
def test_every_kind_becomes_an_exception_in_every_facade(facade, kind):
    for code in (None, errno.ECONNREFUSED):
        exc = _map(facade, FakeError(kind, code))
        assert isinstance(exc, BaseException)
        assert str(exc) or repr(exc)


@pytest.mark.parametrize("url", ["http://[::1", "ftp://127.0.0.1/x", "http://"])
def test_a_bad_argument_raises_valueerror_at_once(url):
    # a synchronous engine error is the exception a Python user expects, not a RuntimeError
    client = _native.Client()
    with pytest.raises(ValueError):
        client.cookie_header(url)
