"""``max_body_size``: a response body is held in memory up to a limit, and a larger one fails the request with
``BodyTooLarge`` instead of growing the process without end (a server that streams a body forever took it to 3 GiB
in 3 to 5 s before). Both HTTP users, the raw body, a Content-Length over the limit, a body that decodes past it,
and ``stream=True`` (the user reads it, so it is not limited)."""

import locust  # noqa: F401,I001 - monkey-patches first

import time

import gevent
import psutil
import pytest
from locust.argument_parser import parse_options
from locust.env import Environment

import locust_rs
from locust_rs import BodyTooLarge
from locust_rs._facade.sessions import MAX_BODY_SIZE, body_limit, parse_size

MIB = 1 << 20


def _user(kind, host, **attrs):
    base = locust_rs.FastHttpUser if kind == "fast" else locust_rs.HttpUser
    cls = type("U", (base,), {"host": host, **attrs})
    env = Environment(user_classes=[cls])
    events = []
    env.events.request.add_listener(lambda **kw: events.append(kw))
    return cls(env), events


def _rss() -> int:
    return psutil.Process().memory_info().rss


@pytest.fixture(params=["fast", "http"])
def kind(request):
    return request.param


def test_an_endless_body_fails_at_the_limit_with_bounded_memory(kind, http_server):
    user, events = _user(kind, http_server, max_body_size="4MiB")
    before = _rss()
    started = time.monotonic()
    with gevent.Timeout(20, AssertionError("the endless body was never cut off")):
        for _ in range(5):
            user.client.get("/endless")
    assert time.monotonic() - started < 15
    assert _rss() - before < 64 * MIB, f"RSS grew by {(_rss() - before) / MIB:.0f} MiB"
    assert len(events) == 5
    for e in events:
        exc = e["exception"]
        assert isinstance(exc, BodyTooLarge) and isinstance(exc, OSError), repr(exc)
        assert "max_body_size (4194304 bytes)" in str(exc) and "stream=True" in str(exc)
        assert e["response_length"] == 0


@pytest.mark.parametrize("path", ["/bytes/2097152", "/gzip-bomb/16"], ids=["content-length", "decoded"])
def test_a_body_over_the_limit_is_a_failure(kind, http_server, path):
    user, events = _user(kind, http_server, max_body_size=MIB)
    r = user.client.get(path)
    assert isinstance(events[-1]["exception"], BodyTooLarge)
    assert r.content in (b"", None)
    assert "max_body_size (1048576 bytes)" in str(events[-1]["exception"])
    # The connection was dropped, not poisoned: the next request works.
    assert user.client.get("/bytes/1000").content and events[-1]["exception"] is None


def test_a_body_at_the_limit_passes(kind, http_server):
    user, events = _user(kind, http_server, max_body_size=MIB)
    assert len(user.client.get(f"/bytes/{MIB}").content) == MIB
    assert len(user.client.get("/gzip-bomb/1").content) == MIB
    assert [e["exception"] for e in events] == [None, None]


def test_zero_means_no_limit(kind, http_server):
    user, events = _user(kind, http_server, max_body_size=0)
    assert len(user.client.get("/gzip-bomb/16").content) == 16 * MIB
    assert events[-1]["exception"] is None


@pytest.mark.parametrize("kind", ["fast", "http"])
def test_a_streamed_body_is_not_limited(http_server, kind):
    user, events = _user(kind, http_server, max_body_size=MIB)
    read = 0
    with gevent.Timeout(20):
        r = user.client.get("/endless", stream=True)
        for chunk in r.iter_content(64 * 1024):
            read += len(chunk)
            if read > 4 * MIB:
                break
        if kind == "http":
            r.close()  # requests' way to give up on a streamed body
    assert read > 4 * MIB and events[-1]["exception"] is None


def test_the_run_option_sets_the_default_and_the_class_attribute_wins(kind, http_server):
    options = parse_options(["--max-body-size", "1MiB", "--headless"])
    assert options.max_body_size == "1MiB"
    base = locust_rs.FastHttpUser if kind == "fast" else locust_rs.HttpUser
    cls = type("U", (base,), {"host": http_server})
    env = Environment(user_classes=[cls], parsed_options=options)
    events = []
    env.events.request.add_listener(lambda **kw: events.append(kw))
    cls(env).client.get("/bytes/2097152")
    assert isinstance(events[-1]["exception"], BodyTooLarge)
    roomy = type("Roomy", (base,), {"host": http_server, "max_body_size": "4m"})
    roomy(env).client.get("/bytes/2097152")
    assert events[-1]["exception"] is None


def test_sizes():
    assert parse_size(123) == 123
    assert parse_size("512k") == 512 << 10
    assert parse_size("256MiB") == 256 << 20
    assert parse_size(" 1 GB ") == 1 << 30
    assert parse_size("17B") == 17
    for bad in ("-1", "1.5M", "lots", "1T", -1, True):
        with pytest.raises(ValueError, match="max_body_size"):
            parse_size(bad)
    assert body_limit(None, None) == MAX_BODY_SIZE == 256 * MIB
    assert body_limit(0, None) is None
    assert body_limit("0", None) is None
