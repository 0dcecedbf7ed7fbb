"""The engine on the Python thread (``LOCUST_RS_ENGINE=inline``) and on a thread of its own (``thread``).

Each case runs in a process of its own, since a process picks its engine once, when it first needs it. The same script
runs on both engines: requests from many greenlets, a timeout with nothing else to wake the hub, a greenlet killed while
it waits, and a request from a greenlet that a callback of gevent's resumed.
"""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import child_servers

HERE = Path(__file__).parent

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the inline engine finds its epoll fd in /proc")


@pytest.fixture(scope="module")
def stall_server():
    proc, info = child_servers.spawn(HERE / "stall_server.py", "--delay", "0", what="the stall server")
    yield f"http://127.0.0.1:{info['port']}"
    child_servers.stop(proc)


def _run(script: str, url: str, engine: str, **env: str) -> dict:
    """Runs ``script`` against ``url`` with ``LOCUST_RS_ENGINE=engine`` in a process of its own; the JSON it printed
    last. Bounded in time: a hang fails the test instead of stalling the suite."""
    full_env = {**os.environ, "LOCUST_RS_ENGINE": engine, "PYTHONPATH": os.pathsep.join(sys.path), **env}
    out = subprocess.run(
        [sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60, env=full_env, cwd=HERE
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


PRELUDE = """
import locust  # gevent's monkey-patching first
import json, sys, time
import gevent
from locust.env import Environment
from locust_rs import _native
from locust_rs._gevent import bridge
from locust_rs.fasthttp import FastHttpSession

url = sys.argv[1]
events = Environment().events
"""

MANY = (
    PRELUDE
    + """
done = []

def user():
    s = FastHttpSession(url, events.request, None)
    for _ in range(200):
        r = s.get("/")
        assert r.status_code == 200 and r.text == "ok", (r.status_code, r.text)
        done.append(1)

users = [gevent.spawn(user) for _ in range(20)]
gevent.joinall(users, timeout=30, raise_error=True)
print(json.dumps({"engine": _native.engine(), "done": len(done), "pending": bridge.pending()}))
"""
)


@pytest.mark.parametrize("engine", ["inline", "thread"])
def test_requests_from_many_greenlets_all_finish(stall_server, engine):
    result = _run(MANY, stall_server, engine)
    assert result["engine"] == [engine, None]
    assert result["done"] == 20 * 200
    assert result["pending"] == 0


TIMEOUT = (
    PRELUDE
    + """
# Nothing but this one request: no other socket or timer wakes the hub, so only the engine's own turns make the
# timeout fire.
s = FastHttpSession(url, events.request, None, network_timeout=0.2, max_retries=0)
t0 = time.monotonic()
r = s.get("/never")
took = time.monotonic() - t0
ok = s.get("/")
print(json.dumps({"error": type(r.error).__name__ if r.error else None, "took": took, "after": ok.status_code,
                  "pending": bridge.pending()}))
"""
)


@pytest.mark.parametrize("engine", ["inline", "thread"])
def test_a_timeout_fires_with_nothing_else_to_wake_the_hub(stall_server, engine):
    result = _run(TIMEOUT, stall_server, engine)
    assert result["error"] is not None, result
    # Not before its time; and not a hang (the bound is the process's 60 s, not a speed).
    assert result["took"] >= 0.2, result
    assert result["after"] == 200 and result["pending"] == 0, result


KILLED = (
    PRELUDE
    + """
s = FastHttpSession(url, events.request, None, network_timeout=30)
waiting = gevent.spawn(s.get, "/never")
gevent.sleep(0.2)
assert bridge.pending() == 1
waiting.kill()
left = bridge.pending()
r = s.get("/")
print(json.dumps({"left": left, "after": r.status_code, "pending": bridge.pending()}))
"""
)


@pytest.mark.parametrize("engine", ["inline", "thread"])
def test_a_greenlet_killed_while_it_waits_leaves_nothing_behind(stall_server, engine):
    result = _run(KILLED, stall_server, engine)
    assert result == {"left": 0, "after": 200, "pending": 0}


FROM_A_CALLBACK = (
    PRELUDE
    + """
# The first request comes from a greenlet that gevent starts from its callbacks, which run as the hub's loop prepares
# to wait; and then from one woken by a timer. Each must start before the hub waits (here for up to 30 s).
s = FastHttpSession(url, events.request, None)
codes = []
first = gevent.spawn(lambda: codes.append(s.get("/").status_code))
first.join(timeout=30)
later = gevent.spawn_later(0.05, lambda: codes.append(s.get("/").status_code))
later.join(timeout=30)
print(json.dumps({"codes": codes}))
"""
)


@pytest.mark.parametrize("engine", ["inline", "thread"])
def test_a_request_from_a_greenlet_gevent_just_started_goes_out_at_once(stall_server, engine):
    result = _run(FROM_A_CALLBACK, stall_server, engine)
    assert result["codes"] == [200, 200]


FORKS = (
    PRELUDE
    + """
import os, signal
# Each fork comes from a greenlet the bridge just resumed, so the child's hub is inside the parent's turn when it
# first runs. The child's own request must still come back to it.
s = FastHttpSession(url, events.request, None)
statuses = []
for _ in range(10):
    assert s.get("/").status_code == 200
    pid = os.fork()
    if pid == 0:
        signal.alarm(10)  # a hang ends the child, and fails the test, instead of stalling it
        child = FastHttpSession(url, events.request, None)
        os._exit(0 if child.get("/").status_code == 200 and bridge.pending() == 0 else 3)
    statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print(json.dumps({"statuses": statuses, "after": s.get("/").status_code}))
"""
)


@pytest.mark.parametrize("engine", ["inline", "thread"])
def test_a_child_forked_from_a_resumed_greenlet_gets_its_own_replies(stall_server, engine):
    result = _run(FORKS, stall_server, engine)
    assert result == {"statuses": [0] * 10, "after": 200}


STALE_TURN = (
    PRELUDE
    + """
# What a fork child's hub does when the fork came from inside a turn: it finishes the parent's turn. That turn is
# the old bridge's; left to run, it would drain the child's completions into the old bridge, whose waiters are gone.
# No fork is needed to show it: the child's fork hook, then the old turn run over and over before the hub gets a
# chance to run the new bridge's.
old = bridge._get()
bridge._after_fork_in_child()
s = FastHttpSession(url, events.request, None)
g = gevent.spawn(s.get, "/")
gevent.sleep(0)  # g submits its request and parks on the new bridge
end = time.monotonic() + 0.5
while time.monotonic() < end:
    old._turn()
g.join(timeout=10)
print(json.dumps({"status": g.value.status_code if g.successful() else repr(g.exception), "pending": bridge.pending()}))
"""
)


def test_a_turn_left_over_from_before_a_fork_takes_nothing_of_the_childs(stall_server):
    result = _run(STALE_TURN, stall_server, "inline")
    assert result == {"status": 200, "pending": 0}


SCHEDULED_IN_A_TURN = (
    PRELUDE
    + """
# A turn that schedules another (work left over, or a greenlet resumed in it that submits) does so as one of gevent's
# callbacks. It must run in the same pass of the loop, not after the hub's next poll, here up to 0.5 s.
b = bridge._get()
own = b.prepare.callback
order = []
armed = [True]

def turn():
    if armed[0]:
        armed[0] = False
        b.hub.loop.run_callback(order.append, "scheduled")
    own()

b.prepare.stop()
b.prepare.start(turn)
gevent.sleep(0.5)
order.append("slept")
print(json.dumps({"order": order}))
"""
)


@pytest.mark.parametrize("engine", ["inline", "thread"])
def test_a_callback_scheduled_in_a_turn_runs_before_the_hub_waits(stall_server, engine):
    assert _run(SCHEDULED_IN_A_TURN, stall_server, engine) == {"order": ["scheduled", "slept"]}


ENGINE = PRELUDE + "print(json.dumps({'engine': _native.engine()}))"


def test_the_engine_runs_on_its_own_thread_unless_asked_otherwise(stall_server):
    assert _run(ENGINE, stall_server, "")["engine"] == ["thread", None]
    assert _run(ENGINE, stall_server, "inline")["engine"] == ["inline", None]
    assert _run(ENGINE, stall_server, "thread")["engine"] == ["thread", None]
    assert _run(ENGINE, stall_server, "threads")["engine"] == [
        "thread",
        'LOCUST_RS_ENGINE is "threads", not "inline" or "thread"',
    ]


def test_more_than_one_worker_thread_keeps_the_threads_and_says_why(stall_server):
    result = _run(ENGINE, stall_server, "inline", LOCUST_RS_WORKER_THREADS="2")
    assert result["engine"] == ["thread", "LOCUST_RS_WORKER_THREADS is more than 1"]
