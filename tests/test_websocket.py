"""WebSocketUser and its connections against a local `websockets` server (tests/ws_server.py), plain and TLS."""

import locust  # noqa: F401,I001 - monkey-patches first

import json
import subprocess
import sys
import time
from pathlib import Path

import gevent
import gevent.event
import gevent.monkey
import gevent.pool
import pytest
import trustme
from locust.env import Environment

import child_servers
import locust_rs
from locust_rs import websocket
from locust_rs._gevent import bridge as _bridge
from locust_rs.websocket import (
    MessageTooBig,
    WebSocketClosed,
    WebSocketConnectionError,
    WebSocketHandshakeError,
    WebSocketProtocolError,
    WebSocketTimeout,
    WebSocketUser,
)

real_sleep = gevent.monkey.get_original("time", "sleep")
SERVER = Path(__file__).with_name("ws_server.py")


@pytest.fixture(scope="module")
def ws_server(tmp_path_factory):
    ca = trustme.CA()
    pem = tmp_path_factory.mktemp("wstls") / "server.pem"
    ca.issue_cert("localhost", "127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    proc, ports = child_servers.spawn(SERVER, "--tls", str(pem), what="the WebSocket test server")
    yield ports
    child_servers.stop(proc)


@pytest.fixture
def make_user(ws_server):
    """``make_user(**class_attrs) -> (user, events)``: a WebSocketUser on the plain port, recording its events."""
    users = []

    def make(host=None, **attrs):
        cls = type("U", (WebSocketUser,), {"host": host or f"http://127.0.0.1:{ws_server['port']}", **attrs})
        env = Environment(user_classes=[cls])
        events = []
        env.events.request.add_listener(lambda **kw: events.append(kw))
        user = cls(env)
        users.append(user)
        return user, events

    yield make
    for u in users:
        u.close_websockets(wait=True)


def _settle(deadline=5.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end and _bridge.pending():
        gevent.sleep(0.01)
    assert _bridge.pending() == 0


def test_text_binary_and_json_messages(make_user):
    user, events = make_user()
    ws = user.connect("/echo?token=secret")
    assert ws.open
    ws.send("hello")
    assert ws.recv() == "hello"
    ws.send(b"\x00\x01\xff")
    assert ws.recv() == b"\x00\x01\xff"
    ws.send(bytearray(b"ba"))
    assert ws.recv() == b"ba"
    ws.send_json({"a": [1, 2], "b": "ü"})
    assert ws.recv_json() == {"a": [1, 2], "b": "ü"}
    assert ws.stats() == {"messages_sent": 4, "bytes_sent": 5 + 3 + 2 + len(json.dumps({"a": [1, 2], "b": "ü"})),
                          "messages_received": 4, "bytes_received": ws.stats()["bytes_sent"]}  # fmt: skip
    # The handshake is the one event; the query string (often a token) is not part of the name.
    assert len(events) == 1
    e = events[0]
    assert (e["request_type"], e["name"], e["exception"]) == ("WS", "/echo", None)
    assert e["url"] == f"{user.host.replace('http', 'ws')}/echo?token=secret"
    assert 0 < e["response_time"] < 5000 and e["response_time"] == ws.handshake_time
    assert e["response"] is ws
    assert abs(e["start_time"] - time.time()) < 10
    with pytest.raises(TypeError):
        ws.send(12)  # type: ignore[arg-type]


def test_request_reply_reports_the_round_trip(make_user):
    user, events = make_user()
    ws = user.connect("/echo", name="echo")
    r = ws.request({"type": "ping"}, reply="pong", name="ping")
    assert r.json() == {"type": "pong"}
    assert len(r.messages) == 1
    e = events[-1]
    assert (e["request_type"], e["name"], e["exception"]) == ("WSRT", "ping", None)
    assert e["response_length"] == len('{"type": "pong"}')
    assert e["response"] is r
    assert 0 < e["response_time"] == r.response_time < 5000
    # Default name: the connection's; a plain text request matches the next message by default.
    r = ws.request("plain text")
    assert r.text == "plain text"
    assert events[-1]["name"] == "echo" and events[-1]["request_type"] == "WSRT"


def test_streamed_reply_reports_first_and_last_frame(make_user):
    user, events = make_user()
    ws = user.connect("/echo")
    before = len(events)
    r = ws.request({"type": "stream", "n": 20}, reply=("chunk", "done"), until="done", name="stream")
    assert [json.loads(m)["type"] for m in r.messages] == ["chunk"] * 20 + ["done"]
    assert [json.loads(m)["i"] for m in r.messages[:-1]] == list(range(20))
    ff, rt = events[before:]
    assert (ff["request_type"], ff["name"]) == ("WSFF", "stream")
    assert (rt["request_type"], rt["name"]) == ("WSRT", "stream")
    assert ff["exception"] is None and rt["exception"] is None
    assert 0 < ff["response_time"] <= rt["response_time"]
    assert ff["response_length"] == len(r.messages[0])
    assert rt["response_length"] == sum(len(m) for m in r.messages) == r.response_length
    # A predicate works as well as a type.
    r = ws.request({"type": "stream", "n": 3}, until=lambda m: '"done"' in m)
    assert len(r.messages) == 4


def test_messages_outside_the_reply_are_kept_for_recv(make_user):
    user, _ = make_user()
    ws = user.connect("/echo")
    r = ws.request({"type": "push", "n": 3}, reply="pong")
    assert r.json() == {"type": "pong"}
    assert [json.loads(ws.recv())["i"] for _ in range(3)] == [0, 1, 2]


def test_background_receiver_routes_replies_and_other_messages(make_user):
    user, events = make_user()
    got = []
    ws = user.connect("/echo", on_message=got.append)
    r = ws.request({"type": "push", "n": 3}, reply="pong", timeout=5)
    assert r.json() == {"type": "pong"}
    gevent.sleep(0.05)
    assert [json.loads(m)["i"] for m in got] == [0, 1, 2]
    with pytest.raises(RuntimeError):
        ws.recv()
    ws.send("unsolicited")
    gevent.sleep(0.2)
    assert got[-1] == "unsolicited"
    ws.close()
    assert not ws.open
    assert not [e for e in events if e["exception"]]  # a close by us is not a failure
    _settle()


def test_server_ping_is_answered_automatically(make_user):
    user, _ = make_user()
    ws = user.connect("/echo")
    assert ws.request({"type": "ping-me"}, reply="pinged", timeout=10).json() == {"type": "pinged"}


def test_subprotocols_and_headers(make_user):
    user, _ = make_user(ws_headers={"X-Default": "d"})
    ws = user.connect("/echo", subprotocols=["chat.v2"], headers={"Authorization": "Bearer abc"})
    assert ws.subprotocol == "chat.v2"
    sent = ws.request({"type": "headers"}).json()
    assert sent["authorization"] == "Bearer abc"
    assert sent["x-default"] == "d"
    assert sent["sec-websocket-protocol"] == "chat.v2"
    assert ws.response_headers["sec-websocket-protocol"] == "chat.v2"


def test_server_closing_with_code_and_reason(make_user):
    user, events = make_user()
    ws = user.connect("/echo")
    with pytest.raises(WebSocketClosed) as info:
        ws.request({"type": "close", "code": 4001, "reason": "go away"}, reply="pong", name="bye")
    assert info.value.code == 4001 and info.value.reason == "go away"
    assert "4001" in str(info.value) and "go away" in str(info.value)
    e = events[-1]
    assert (e["request_type"], e["name"]) == ("WSRT", "bye")
    assert e["exception"] is info.value
    assert not ws.open
    assert ws.close_status == (4001, "go away")
    with pytest.raises(WebSocketClosed):
        ws.send("too late")
    assert events[-1]["request_type"] == "WSSEND" and "4001" in str(events[-1]["exception"])
    with pytest.raises(WebSocketClosed):
        ws.recv()
    assert events[-1]["request_type"] == "WSRECV"
    _settle()


def test_server_dropping_the_connection_without_close_frame(make_user):
    user, events = make_user()
    ws = user.connect("/drop")
    with pytest.raises(WebSocketClosed) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1006
    assert "without a close frame" in str(info.value)
    assert events[-1]["request_type"] == "WSRECV" and events[-1]["exception"] is info.value


def test_protocol_error(make_user):
    user, events = make_user()
    ws = user.connect("/garbage")
    with pytest.raises(WebSocketProtocolError) as info:
        ws.recv(timeout=5)
    assert "protocol error" in str(info.value).lower()
    assert events[-1]["request_type"] == "WSRECV" and events[-1]["exception"] is info.value
    assert not ws.open


def test_background_receiver_reports_a_close_by_the_server(make_user):
    user, events = make_user()
    got = []
    ws = user.connect("/echo", on_message=got.append)
    ws.send_json({"type": "close", "code": 1011, "reason": "overloaded"})
    deadline = time.monotonic() + 5
    while ws.open and time.monotonic() < deadline:
        gevent.sleep(0.02)
    gevent.sleep(0.05)
    e = events[-1]
    assert e["request_type"] == "WSRECV" and isinstance(e["exception"], WebSocketClosed)
    assert e["exception"].code == 1011 and "overloaded" in str(e["exception"])
    assert got == []
    # A request routed through the receiver while the server closes fails with the close, not a timeout.
    ws2 = user.connect("/echo", on_message=got.append)
    with pytest.raises(WebSocketClosed) as info:
        ws2.request({"type": "close", "code": 4002, "reason": "later"}, reply="pong", timeout=5)
    assert info.value.code == 4002
    assert events[-1]["request_type"] == "WSRT" and events[-1]["exception"] is info.value
    assert events[-2]["request_type"] == "WS"  # reported once, by the request


def test_mixin_with_fast_http_user(http_server, ws_server):
    from locust_rs import FastHttpUser, WebSocketMixin

    class Both(WebSocketMixin, FastHttpUser):
        host = http_server

    env = Environment(user_classes=[Both])
    events = []
    env.events.request.add_listener(lambda **kw: events.append(kw))
    user = Both(env)
    assert user.client.get("/bytes/3").status_code == 200
    ws = user.connect(f"http://127.0.0.1:{ws_server['port']}/echo")
    assert ws.url.startswith("ws://")
    assert ws.request("hi").text == "hi"
    assert [e["request_type"] for e in events] == ["GET", "WS", "WSRT"]
    user.close_websockets(wait=True)
    assert not ws.open


def test_reply_timeout_is_a_failure_and_the_connection_survives(make_user):
    user, events = make_user()
    ws = user.connect("/echo")
    started = time.monotonic()
    with pytest.raises(WebSocketTimeout):
        ws.request({"type": "silence"}, timeout=0.3, name="silence")
    assert 0.25 < time.monotonic() - started < 3
    assert events[-1]["request_type"] == "WSRT" and isinstance(events[-1]["exception"], WebSocketTimeout)
    assert events[-1]["response_time"] >= 250
    with pytest.raises(WebSocketTimeout):
        ws.recv(timeout=0.2)
    assert events[-1]["request_type"] == "WSRECV"
    assert ws.request({"type": "ping"}, reply="pong").json() == {"type": "pong"}
    _settle()


def test_handshake_timeout(make_user, ws_server):
    user, events = make_user()
    started = time.monotonic()
    with pytest.raises(WebSocketTimeout):
        user.connect(f"ws://127.0.0.1:{ws_server['silent_port']}/x", timeout=0.3)
    assert time.monotonic() - started < 3
    e = events[-1]
    assert (e["request_type"], e["name"]) == ("WS", f"ws://127.0.0.1:{ws_server['silent_port']}/x")
    assert isinstance(e["exception"], WebSocketTimeout)


@pytest.mark.parametrize(
    "value, message",
    [(0, "Timeout value out of range"), (-1, "Timeout value out of range"), (float("nan"), "Invalid value NaN")],
)
def test_timeouts_of_zero_below_zero_or_nan_raise_value_error(make_user, value, message):
    """Before, each meant "wait forever"; now every place a timeout is given refuses it, and nothing is reported."""
    user, events = make_user()
    ws = user.connect("/echo")
    ws.send("queued")  # a waiting message must not let a bad timeout through
    assert ws.request("hello", timeout=5).text == "queued"
    for call in (
        lambda: ws.recv(timeout=value),
        lambda: ws.request("x", timeout=value),
        lambda: ws.request("x", reply=lambda m: True, timeout=value),
        lambda: user.connect("/echo", timeout=value),
        lambda: ws._native.wait(value),
        lambda: locust_rs._native.ws_connect("ws://127.0.0.1:1/", None, None, value),
    ):
        before = len(events)
        with pytest.raises(ValueError, match=message):
            call()
        assert len(events) == before
    ws.timeout = value
    with pytest.raises(ValueError, match=message):
        ws.recv()
    user.ws_timeout = value
    with pytest.raises(ValueError, match=message):
        user.connect("/echo")
    _settle()


def test_huge_timeouts_are_long_waits_not_panics(make_user):
    user, events = make_user(ws_connect_timeout=1e20, ws_timeout=float("inf"))
    ws = user.connect("/echo")
    assert ws.request("a", timeout=1e20).text == "a"
    ws.send("b")
    assert ws.recv(timeout=1e300) == "b"
    assert ws.request("c").text == "c"
    _settle()


def test_kill_during_recv_leaves_nothing_pending_and_loses_no_message(make_user):
    user, events = make_user()
    ws = user.connect("/echo")
    g = gevent.spawn(ws.recv, timeout=None)
    gevent.sleep(0.1)
    assert _bridge.pending() == 1
    g.kill()
    assert _bridge.pending() == 0
    # A message arriving just as the waiter is killed stays for the next recv.
    g = gevent.spawn(ws.recv, timeout=None)
    gevent.sleep(0.05)
    ws.send("kept")
    deadline = time.monotonic() + 5
    while ws._native.pending == 0 and time.monotonic() < deadline:
        # The hub does not run, so the waiter cannot take it: a real sleep, and on the inline engine a turn of the
        # engine alone (it runs only when asked; the hub's turn would also hand the message out).
        locust_rs._native.drive()
        real_sleep(0.001)
    assert ws._native.pending == 1
    assert not g.dead
    g.kill()
    assert _bridge.pending() == 0
    # gevent's kill lands at the hub's next turn of callbacks; a reply the hub handed out first resumed the waiter,
    # which then returned the message. Either the waiter has it or the next recv does: never both, never neither.
    if not (g.successful() and g.value == "kept"):
        assert ws.recv(timeout=5) == "kept"
    ws.send("next")
    assert ws.recv(timeout=5) == "next"
    assert [e["request_type"] for e in events] == ["WS"]  # a kill is not a failure
    _settle()


def test_handshake_refused_with_401(make_user):
    user, events = make_user()
    with pytest.raises(WebSocketHandshakeError) as info:
        user.connect("/refuse")
    assert info.value.status == 401
    assert "401" in str(info.value) and "Unauthorized" in str(info.value)
    e = events[-1]
    assert (e["request_type"], e["name"]) == ("WS", "/refuse")
    assert e["exception"] is info.value


def test_connection_refused(make_user, ws_server):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    user, events = make_user()
    with pytest.raises(WebSocketConnectionError, match="Connection refused"):
        user.connect(f"ws://127.0.0.1:{port}/")
    assert events[-1]["exception"] is not None


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "ws://", "ws://[::1"])
def test_malformed_urls_fail_cleanly(make_user, url):
    user, events = make_user()
    with pytest.raises(locust_rs.WebSocketError):
        user.connect(url)
    assert events[-1]["exception"] is not None


def test_oversize_message(make_user):
    user, events = make_user(ws_max_message_size=1000)
    ws = user.connect("/echo")
    assert len(ws.request({"type": "big", "size": 1000}).last) == 1000
    with pytest.raises(MessageTooBig) as info:
        ws.request({"type": "big", "size": 1001}, name="big")
    assert "1001" in str(info.value) and "max_message_size" in str(info.value)
    assert events[-1]["request_type"] == "WSRT" and events[-1]["exception"] is info.value
    assert not ws.open
    assert ws.close_status is None or ws.close_status[0] in (1009, 1006)


def test_wss_with_the_insecure_rule(make_user, ws_server):
    user, events = make_user(host=f"https://127.0.0.1:{ws_server['tls_port']}")
    ws = user.connect("/echo")  # insecure=True, Locust's default: the test CA is not trusted, and that is fine
    assert ws.url.startswith("wss://")
    assert ws.request({"type": "ping"}, reply="pong").json() == {"type": "pong"}
    strict, events = make_user(host=f"https://127.0.0.1:{ws_server['tls_port']}", insecure=False)
    with pytest.raises(WebSocketConnectionError) as info:
        strict.connect("/echo")
    assert "certificate" in str(info.value).lower()
    assert events[-1]["request_type"] == "WS"


def test_thousand_concurrent_connections(make_user):
    user, events = make_user()
    n = 1000
    before = locust_rs.websocket.counters()
    go = gevent.event.Event()
    release = gevent.event.Event()
    peak = 0

    def one(i):
        ws = user.connect("/echo")
        go.wait()
        assert ws.request(f"m{i}").text == f"m{i}"
        release.wait()
        ws.close()

    pool = gevent.pool.Pool()
    greenlets = [pool.spawn(one, i) for i in range(n)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        peak = max(peak, locust_rs.websocket.counters()["connections_open"] - before["connections_open"])
        if sum(1 for e in events if e["request_type"] == "WS") >= n:
            break
        gevent.sleep(0.05)
    go.set()
    while time.monotonic() < deadline and sum(1 for e in events if e["request_type"] == "WSRT") < n:
        gevent.sleep(0.05)
    peak = max(peak, locust_rs.websocket.counters()["connections_open"] - before["connections_open"])
    release.set()
    gevent.joinall(greenlets, timeout=max(deadline - time.monotonic(), 1), raise_error=True)
    assert all(g.successful() for g in greenlets)
    assert peak == n
    assert [e["exception"] for e in events if e["exception"]] == []
    after = locust_rs.websocket.counters()
    assert after["connections_open"] == before["connections_open"]
    assert after["connections_opened"] - before["connections_opened"] == n
    assert after["messages_sent"] - before["messages_sent"] == n
    assert after["messages_received"] - before["messages_received"] == n
    assert user.ws_stats()["messages_received"] == n
    _settle()


def test_context_manager_and_counters(make_user):
    user, _ = make_user()
    before = locust_rs.websocket.counters()
    with user.connect("/echo") as ws:
        assert locust_rs.websocket.counters()["connections_open"] == before["connections_open"] + 1
        ws.send("x")
        assert ws.recv() == "x"
    assert not ws.open
    assert ws.close_status == (1000, "")
    after = locust_rs.websocket.counters()
    assert after["connections_open"] == before["connections_open"]
    assert after["bytes_sent"] - before["bytes_sent"] == 1
    assert after["bytes_received"] - before["bytes_received"] == 1
    assert user.ws_connections == []


def test_connections_close_when_the_user_is_killed(make_user):
    connected = gevent.event.Event()

    def task(self):
        self.ws = self.connect("/echo")
        connected.set()
        self.ws.recv(timeout=None)

    user, _ = make_user(tasks=[task], wait_time=lambda self: 1)
    before = locust_rs.websocket.counters()["connections_open"]
    group = gevent.pool.Group()
    user.start(group)
    assert connected.wait(10)
    assert locust_rs.websocket.counters()["connections_open"] == before + 1
    user.stop(force=True)
    deadline = time.monotonic() + 10
    while locust_rs.websocket.counters()["connections_open"] > before and time.monotonic() < deadline:
        gevent.sleep(0.02)
    assert locust_rs.websocket.counters()["connections_open"] == before
    assert user.ws.close_status == (1000, "")
    _settle()


@pytest.mark.parametrize(
    ("host", "path", "url"),
    [
        ("http://h:1", "/a?b=c", "ws://h:1/a?b=c"),
        ("https://h", "/a", "wss://h/a"),
        ("http://h:1/base/", "/a", "ws://h:1/base/a"),
        ("ws://h:1", "a", "ws://h:1/a"),
        ("http://h:1", "wss://other/x", "wss://other/x"),
        ("http://h:1", "https://other/x", "wss://other/x"),
        (None, "ws://other/x", "ws://other/x"),
    ],
)
def test_url_from_host(host, path, url):
    assert websocket._ws_url(host, path) == url


FORK_SCRIPT = """
import locust  # noqa
import os, sys
from locust.env import Environment
from locust_rs import WebSocketUser, WebSocketClosed

class U(WebSocketUser):
    host = sys.argv[1]

user = U(Environment(user_classes=[U]))
ws = user.connect("/echo")
assert ws.request("parent").text == "parent"
pid = os.fork()
if pid == 0:
    ok = not ws.open
    try:
        ws.send("from the child")
        ok = False
    except WebSocketClosed as e:
        ok = ok and "parent process" in str(e)
    fresh = user.connect("/echo")
    ok = ok and fresh.request("child").text == "child"
    fresh.close()
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
assert ws.request("parent again").text == "parent again"
ws.close()
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_connection_used_after_fork_fails_clearly_and_new_ones_work(ws_server, tmp_path):
    script = tmp_path / "ws_fork.py"
    script.write_text(FORK_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), f"http://127.0.0.1:{ws_server['port']}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- hostile servers: every buffer is bounded, and nothing is lost ------------------------------------------------


def _wait_for(condition, timeout=20.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "the condition did not hold in time"
        gevent.sleep(0.01)


def test_a_connection_not_read_stops_at_its_queue_cap_then_delivers_everything(make_user):
    """A server streaming 1 KiB frames to a user that does not call recv: the inbox stops at ws_max_queue (the
    socket is not read, so TCP makes the server wait), then every frame arrives, in order, once the user reads."""
    cap = 256 * 1024
    user, events = make_user(ws_max_queue=cap)
    ws = user.connect("/flood")
    per_frame = 1024 + 64  # payload, and what an entry counts beyond it
    _wait_for(lambda: ws._native.pending * per_frame >= cap)
    for _ in range(3):  # the cap holds however long the user looks away
        gevent.sleep(0.2)
        assert ws._native.pending <= cap // per_frame + 1
    for i in range(64 * 1024):
        message = ws.recv(timeout=10)
        assert int.from_bytes(message[:8], "big") == i and len(message) == 1024
    with pytest.raises(WebSocketClosed) as info:
        ws.recv(timeout=10)
    assert info.value.code == 1000
    assert [e["request_type"] for e in events] == ["WS", "WSRECV"]


def test_a_ping_flood_to_a_server_that_does_not_read_fails_the_connection(make_user):
    """tungstenite owes a pong for every ping; while the server does not read they wait in its write buffer, which
    is capped by ws_max_write_buffer: the connection fails clearly instead of growing."""
    user, events = make_user(ws_max_write_buffer=512 * 1024)
    ws = user.connect("/pingflood")
    with pytest.raises(WebSocketClosed) as info:
        ws.recv(timeout=60)
    assert info.value.code == 1006
    assert "the server is not reading" in str(info.value) and "ws_max_write_buffer" in str(info.value)
    assert events[-1]["request_type"] == "WSRECV" and events[-1]["exception"] is info.value
    assert not ws.open


def test_sending_to_a_server_that_does_not_read_fails_at_the_cap(make_user):
    user, events = make_user(ws_max_write_buffer=256 * 1024)
    ws = user.connect("/deaf")
    with pytest.raises(WebSocketClosed) as info:
        for _ in range(64 * 1024):  # 64 MiB: far more than the kernel's buffers hold
            ws.send(b"x" * 1024)
            gevent.sleep(0)
    assert "the server is not reading" in str(info.value)
    assert "over ws_max_write_buffer (262144 bytes)" in str(info.value)
    assert events[-1]["request_type"] == "WSSEND" and events[-1]["exception"] is info.value
    assert not ws.open
    # One message over the cap could never be written whole: refused at once, and the connection stays.
    ws = user.connect("/deaf")
    with pytest.raises(ValueError, match=r"a WebSocket message of 262145 bytes is over ws_max_write_buffer \(262144"):
        ws.send(b"x" * (256 * 1024 + 1))
    assert ws.open


def test_a_burst_of_sends_to_a_server_that_reads_is_not_a_backlog(make_user):
    """Sends are counted against ws_max_write_buffer only while the socket pushes back: a burst larger than the cap,
    queued in one greenlet turn to a server that reads, all arrives."""
    user, _ = make_user(ws_max_write_buffer=64 * 1024)
    ws = user.connect("/echo")
    for i in range(64):  # 2 MiB in one turn, 32 times the cap
        ws.send(bytes([i]) * 32 * 1024)
    for i in range(64):
        assert ws.recv(timeout=10) == bytes([i]) * 32 * 1024


@pytest.mark.parametrize("attr", ["ws_max_queue", "ws_max_write_buffer"])
@pytest.mark.parametrize("value", [0, -1, 1.5, None, True, 2**64])
def test_buffer_caps_must_be_positive_byte_counts(make_user, attr, value):
    user, _ = make_user(**{attr: value})
    with pytest.raises(ValueError, match=f"{attr} must be a positive number of bytes"):
        user.connect("/")


@pytest.mark.parametrize(
    ("path", "what"),
    [("/badclose", "the reason in the server's close frame is not valid UTF-8"), ("/badtext", "a text message")],
)
def test_invalid_utf8_says_whether_it_was_a_close_reason_or_a_text_message(make_user, path, what):
    user, _ = make_user()
    ws = user.connect(path)
    with pytest.raises(WebSocketProtocolError) as info:
        ws.recv(timeout=5)
    assert what in str(info.value)
