"""The gevent <-> tokio bridge: many waiters, cancellation, timeouts, fork, bad peers."""

import locust  # noqa: F401,I001 - monkey-patches first

import os
import subprocess
import sys
import textwrap
import time

import gevent
import gevent.event
import pytest

import locust_rs
from sessions import recording_session
from locust_rs._gevent import bridge as _bridge


def _session(base_url, pool=None, **kwargs):
    return recording_session(base_url, client_pool=pool, **kwargs)


def _settle(pool=None, deadline=5.0):
    """Waits until nothing is pending in the bridge (and the pool has no request in flight)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if _bridge.pending() == 0 and (pool is None or pool.in_flight() == 0):
            return
        gevent.sleep(0.02)
    raise AssertionError(f"still pending: waiters={_bridge.pending()} in_flight={pool and pool.in_flight()}")


def test_thousand_concurrent_greenlets_all_complete(http_server):
    pool = locust_rs.ConnectionPool(concurrency=64)
    session, events = _session(http_server, pool)
    peak = 0
    go = gevent.event.Event()

    def one(i):
        go.wait()  # all start in the same hub iteration, so they are in flight together
        r = session.get(f"/bytes/16?i={i}", name="/bytes")
        assert r.status_code == 200, r.error
        assert len(r.content) == 16

    def sample():
        nonlocal peak
        while True:
            peak = max(peak, _bridge.pending())
            gevent.sleep(0.001)

    greenlets = [gevent.spawn(one, i) for i in range(1000)]
    gevent.sleep(0.05)
    sampler = gevent.spawn(sample)
    go.set()
    gevent.joinall(greenlets, timeout=60, raise_error=True)
    sampler.kill()
    assert all(g.successful() for g in greenlets)
    assert len(events) == 1000
    assert all(e["exception"] is None for e in events)
    # They really were waiting at the same time, not one after another.
    assert peak >= 900
    _settle(pool)


def test_killed_greenlet_leaves_no_waiter_and_late_completion_is_dropped(http_server):
    pool = locust_rs.ConnectionPool(concurrency=4)
    session, events = _session(http_server, pool)
    g = gevent.spawn(session.get, "/slow?delay=0.5")
    gevent.sleep(0.15)
    assert _bridge.pending() == 1
    g.kill()
    assert isinstance(g.value, gevent.GreenletExit)
    assert _bridge.pending() == 0
    # The Rust task was aborted: its concurrency slot is free at once, and no event fires.
    _settle(pool, deadline=0.3)
    gevent.sleep(0.6)  # past the time the server answers: the late completion must go nowhere
    assert events == []
    r = session.get("/bytes/3")
    assert r.status_code == 200 and r.content == b"\x00\x00\x00" or len(r.content) == 3
    assert len(events) == 1


def test_gevent_timeout_around_a_request(http_server):
    pool = locust_rs.ConnectionPool(concurrency=2)
    session, events = _session(http_server, pool)
    started = time.monotonic()
    with pytest.raises(gevent.Timeout):
        with gevent.Timeout(0.3):
            session.get("/never")
    assert time.monotonic() - started < 2
    assert _bridge.pending() == 0
    _settle(pool, deadline=0.5)
    assert events == []
    assert session.get("/bytes/1").status_code == 200


def test_server_that_never_answers_times_out(http_server):
    session, events = _session(http_server, network_timeout=0.5)
    started = time.monotonic()
    r = session.get("/never")
    assert time.monotonic() - started < 3
    assert r.status_code == 0
    assert events[-1]["exception"] is r.error
    assert "timed out" in repr(r.error)


@pytest.mark.parametrize("timeout", [1e20, float("inf"), 1e308])
def test_a_huge_timeout_means_none_instead_of_a_panic(http_server, timeout):
    # a float too large for a Duration used to panic in Rust and surface as PanicException, a BaseException
    session, events = _session(http_server, network_timeout=timeout, connection_timeout=timeout)
    assert session.get("/bytes/3").status_code == 200
    assert events[-1]["exception"] is None


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan")])
def test_a_timeout_of_zero_or_less_or_nan_raises_from_each_request(http_server, timeout):
    # as gevent's socket raises it from Locust's requests; the constructor must not, or no user would spawn
    session, events = _session(http_server, network_timeout=timeout)
    for _ in range(2):
        with pytest.raises(ValueError, match="Timeout value out of range|Invalid value NaN"):
            session.get("/bytes/3")
    assert events == []


def test_the_wakeup_is_the_platform_one_unless_the_pipe_is_asked_for():
    from locust_rs import _native

    _bridge._get()  # builds the runtime
    backend = _native.wakeup_backend()
    if os.environ.get("LOCUST_RS_WAKEUP") == "pipe":
        assert backend == "pipe"
    elif sys.platform.startswith("linux"):
        assert backend == "eventfd"
    else:
        assert backend == ("socketpair" if os.name == "nt" else "pipe")
    assert _native.wakeup_fd() == _bridge._get().fd


def test_server_closing_mid_body_is_a_readable_failure(http_server):
    session, events = _session(http_server)
    session.get("/close-mid-body")
    assert events[-1]["exception"] is not None
    assert str(events[-1]["exception"])
    assert _bridge.pending() == 0


@pytest.mark.parametrize("url", ["http://[::1", "ftp://127.0.0.1/x", "http://"])
def test_malformed_urls_fail_cleanly(url):
    session, events = _session("http://127.0.0.1:1")
    r = session.get(url)
    assert r.status_code == 0
    assert isinstance(events[-1]["exception"], ValueError)


FORK_SCRIPT = textwrap.dedent(
    """
    import locust  # noqa
    import os, sys
    import gevent
    from locust.event import EventHook
    import locust_rs
    from locust_rs import _native

    base = sys.argv[1]
    s = locust_rs.FastHttpSession(base, EventHook(), None)
    assert s.get("/bytes/4").status_code == 200          # the parent's runtime is running
    pid = os.fork()
    if pid == 0:
        assert not _native.runtime_started()             # the child starts clean
        results = gevent.joinall([gevent.spawn(s.get, f"/bytes/{i}") for i in range(1, 21)], timeout=20)
        ok = [g.value.status_code for g in results] == [200] * 20
        ok = ok and _native.runtime_started()
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    assert s.get("/bytes/4").status_code == 200          # and the parent still works
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


def test_fork_then_requests_in_the_child(http_server, tmp_path):
    script = tmp_path / "fork_child.py"
    script.write_text(FORK_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), http_server], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_panic_in_the_engine_reaches_the_waiter_as_an_error():
    from locust_rs import _native

    if not hasattr(_native, "_submit_panicking_task"):
        # release builds leave the hook out; .ci/run builds it in, and fails here if it is missing
        if os.environ.get("CI"):
            pytest.fail("_native was built without the test-hooks feature (make install FEATURES=test-hooks)")
        pytest.skip("built without the test-hooks feature (make install FEATURES=test-hooks)")
    value = _bridge.wait(_native._submit_panicking_task())
    assert isinstance(value, _native.NativeError)
    assert value.kind == "internal"
    assert "panicked" in value.message
    assert _bridge.pending() == 0


def test_a_geventhttpclient_pool_is_shared_with_its_concurrency(http_server):
    from geventhttpclient.client import HTTPClientPool

    foreign = HTTPClientPool(concurrency=3)
    a, _ = _session(http_server, foreign)
    b, _ = _session(http_server, foreign)
    assert a.pool is b.pool
    assert a.pool.concurrency == 3
    greenlets = [gevent.spawn(s.get, "/slow?delay=0.2") for s in (a, b) for _ in range(3)]
    gevent.sleep(0.1)
    assert a.pool.in_flight() == 3  # six requests, three slots
    gevent.joinall(greenlets, timeout=10, raise_error=True)
    assert all(g.value.status_code == 200 for g in greenlets)
