"""Response times end at the kernel's receive stamp of their last bytes, not when the engine thread read them
(docs/metrics.md, "Which clock"). A test hook parks the engine thread for 50 ms after a socket becomes readable and
before it reads, as a starved thread would be: the response time leaves the park out, and without the stamps
(``LOCUST_RS_RX_STAMPS=0``, in a process of its own) it does not."""

import locust  # noqa: F401,I001 - monkey-patches first

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import trustme

import child_servers
from locust_rs import _native
from sessions import recording_session

PARK_MS = 50

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the kernel's receive stamps are Linux's")


@pytest.fixture(autouse=True)
def park_hook():
    if not hasattr(_native, "_park_after_readiness"):
        if os.environ.get("CI"):
            pytest.fail("_native was built without the test-hooks feature (make install FEATURES=test-hooks)")
        pytest.skip("built without the test-hooks feature (make install FEATURES=test-hooks)")
    yield
    _native._park_after_readiness(0, 0)


def _parked_request(session, path: str) -> tuple[float, float]:
    """(the response time the engine recorded, the wall time the call took) of one request whose response waits
    ``PARK_MS`` in the engine between its arrival and its read; the connection is opened before, so that the park
    falls on the response."""
    assert session.get(path).status_code == 200
    _native._park_after_readiness(PARK_MS, 1)
    t0 = time.perf_counter()
    r = session.get(path)
    wall = (time.perf_counter() - t0) * 1000
    assert r.status_code == 200
    return r.elapsed.total_seconds() * 1000, wall


def test_a_stall_between_arrival_and_read_is_not_in_the_response_time(http_server):
    session, events = recording_session(http_server)
    before = _native.clock_counts()
    rt, wall = _parked_request(session, "/echo")
    assert wall >= PARK_MS, "the hook parked the engine"
    assert wall - rt >= 0.9 * PARK_MS, (rt, wall)
    assert events[-1]["response_time"] == pytest.approx(rt, abs=0.001)
    stamped, unstamped, _ = _native.clock_counts()
    assert stamped >= before[0] + 2 and unstamped == before[1]


# Each response in one TLS record and one segment (TCP_NODELAY): a server that writes its headers and body apart,
# with Nagle on, sends the body only after the client's delayed ACK (~40 ms), and the stamp rightly says so.
TLS_SERVER = textwrap.dedent(
    """
    import json, socket, socketserver, ssl, sys, threading

    class H(socketserver.StreamRequestHandler):
        def handle(self):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                while self.rfile.readline() not in (b"\\r\\n", b""):
                    pass
                body = b"tls ok"
                head = b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body)
                self.wfile.write(head + body)
                self.wfile.flush()

    class S(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = S(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(json.dumps({"port": srv.server_address[1]}), flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdin.read()
    """
)


@pytest.fixture(scope="module")
def https_url(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    pem = directory / "server.pem"
    trustme.CA().issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    script = directory / "tls_server.py"
    script.write_text(TLS_SERVER)
    proc, info = child_servers.spawn(script, str(pem), what="the TLS server")
    try:
        yield f"https://127.0.0.1:{info['port']}"
    finally:
        child_servers.stop(proc)


def test_over_tls_the_stamp_is_the_ciphertexts(https_url):
    session, _ = recording_session(https_url, insecure=True)
    rt, wall = _parked_request(session, "/x")
    assert wall >= PARK_MS
    assert wall - rt >= 0.9 * PARK_MS, (rt, wall)


UNSTAMPED = textwrap.dedent(
    """
    import locust, json, sys, time
    from locust_rs import _native
    from sessions import recording_session

    session, events = recording_session(sys.argv[1])
    session.get("/echo")
    _native._park_after_readiness(int(sys.argv[2]), 1)
    t0 = time.perf_counter()
    r = session.get("/echo")
    wall = (time.perf_counter() - t0) * 1000
    print(json.dumps({"rt": r.elapsed.total_seconds() * 1000, "wall": wall, "counts": _native.clock_counts()}))
    """
)


def _unstamped(script: str, url: str) -> dict:
    """Runs ``script`` against ``url`` in a process of its own with the stamps off; the JSON it printed last."""
    env = {**os.environ, "LOCUST_RS_RX_STAMPS": "0", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", script, url, str(PARK_MS)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).parent,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_without_the_stamps_the_stall_is_in_the_response_time(http_server):
    """The same request with the stamps turned off: the park is in the time. This is what the stamps take out."""
    result = _unstamped(UNSTAMPED, http_server)
    assert result["rt"] >= PARK_MS, result
    stamped, unstamped, why = result["counts"]
    assert stamped == 0 and unstamped == 2 and why == "turned off by LOCUST_RS_RX_STAMPS", result


# ---- HTTP/2: the connection's last stamped read when the stream is seen to end -----------------------------------

from test_http2 import h2_servers  # noqa: E402,F401 - the Hypercorn fixture


@pytest.mark.parametrize("kind", ["h2c", "tls"])
def test_an_http2_stream_leaves_the_stall_out(h2_servers, kind):  # noqa: F811 - the fixture imported above
    if kind == "tls":
        session, _ = recording_session(h2_servers["tls"], insecure=True)
    else:
        session, _ = recording_session(h2_servers["plain"], http2_prior_knowledge=True)
    assert session.get("/warm").text == "2 GET /warm"
    rt, wall = _parked_request(session, "/x")
    assert wall >= PARK_MS
    assert wall - rt >= 0.9 * PARK_MS, (rt, wall)


# ---- WebSocket: round trips, and the first and last frames of a streamed reply ----------------------------------

WS_SERVER = Path(__file__).with_name("ws_server.py")


@pytest.fixture(scope="module")
def ws_ports(tmp_path_factory):
    pem = tmp_path_factory.mktemp("wstls") / "server.pem"
    trustme.CA().issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    proc, ports = child_servers.spawn(WS_SERVER, "--tls", str(pem), what="the WebSocket test server")
    try:
        yield ports
    finally:
        child_servers.stop(proc)


def _ws_user(host: str):
    from locust.env import Environment

    from locust_rs.websocket import WebSocketUser

    cls = type("U", (WebSocketUser,), {"host": host, "insecure": True})
    events: list[dict] = []
    env = Environment(user_classes=[cls])
    env.events.request.add_listener(lambda **kw: events.append(kw))
    return cls(env), events


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_a_websocket_round_trip_leaves_the_stall_out(ws_ports, scheme):
    port = ws_ports["port"] if scheme == "ws" else ws_ports["tls_port"]
    user, events = _ws_user(f"{'https' if scheme == 'wss' else 'http'}://127.0.0.1:{port}")
    try:
        ws = user.connect("/echo")
        assert ws.request("warm").text == "warm"
        before = _native.clock_counts()
        _native._park_after_readiness(PARK_MS, 1)
        t0 = time.perf_counter()
        reply = ws.request("hello")
        wall = (time.perf_counter() - t0) * 1000
        assert reply.text == "hello"
        assert wall >= PARK_MS, "the hook parked the engine"
        assert wall - reply.response_time >= 0.9 * PARK_MS, (reply.response_time, wall)
        assert events[-1]["request_type"] == "WSRT"
        assert events[-1]["response_time"] == reply.response_time
        assert _native.clock_counts()[0] > before[0]
    finally:
        user.close_websockets(wait=True)


def test_a_streamed_reply_times_its_first_and_last_frames_by_their_stamps(ws_ports):
    user, events = _ws_user(f"http://127.0.0.1:{ws_ports['port']}")
    try:
        ws = user.connect("/echo")
        ws.request({"type": "ping"}, reply="pong")
        # The park falls on the read of the first frame; the last frame's read comes after it.
        _native._park_after_readiness(PARK_MS, 1)
        t0 = time.perf_counter()
        reply = ws.request({"type": "stream", "n": 3}, reply=("chunk", "done"), until="done")
        wall = (time.perf_counter() - t0) * 1000
        assert len(reply.messages) == 4
        assert wall >= PARK_MS
        assert wall - reply.time_to_first_frame >= 0.9 * PARK_MS, (reply.time_to_first_frame, wall)
        assert 0 <= reply.time_to_first_frame <= reply.response_time
        assert [e["request_type"] for e in events[-2:]] == ["WSFF", "WSRT"]
    finally:
        user.close_websockets(wait=True)


WS_UNSTAMPED = textwrap.dedent(
    """
    import locust, json, sys, time
    from locust_rs import _native
    from test_kernel_stamps import _ws_user

    user, _ = _ws_user(sys.argv[1])
    ws = user.connect("/echo")
    ws.request("warm")
    _native._park_after_readiness(int(sys.argv[2]), 1)
    t0 = time.perf_counter()
    reply = ws.request("hello")
    wall = (time.perf_counter() - t0) * 1000
    user.close_websockets(wait=True)
    print(json.dumps({"rt": reply.response_time, "wall": wall, "counts": _native.clock_counts()}))
    """
)


def test_without_the_stamps_a_websocket_round_trip_has_the_stall(ws_ports):
    result = _unstamped(WS_UNSTAMPED, f"http://127.0.0.1:{ws_ports['port']}")
    assert result["rt"] >= PARK_MS, result
    stamped, unstamped, why = result["counts"]
    assert stamped == 0 and unstamped >= 2 and why == "turned off by LOCUST_RS_RX_STAMPS", result
