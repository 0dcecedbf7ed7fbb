"""The demo server's access log, and its realtime counters, through the program.

The admin routes and the request metrics are tested in process, in crates/voiceassist-demo/tests/admin.rs. What stays
here needs the program: the access log it writes (to a file or to stderr, with the client's address), and the realtime
WebSocket counters, which need a real connection and which `DemoServer.realtime_stats()` reads too.
"""

import os
import re
import signal
import subprocess
import sys
import uuid

import pytest
import requests

from locust_rs import demo

pytestmark = pytest.mark.timeout(30)

ADMIN = ("admin@voiceassist.local", "admin12345")
T = 5
FAST = {"register_per_minute": 0, "login_attempts_per_minute": 0, "password_hash_iterations": 10}
LINE = re.compile(
    r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1:\d+ "(?P<method>[A-Z]+) (?P<path>\S+)" '
    r"(?P<status>\d{3}) (?P<ms>\d+\.\d{3})ms$"
)


def login(s, email=ADMIN[0], password=ADMIN[1]):
    r = requests.post(s.url + "/api/auth/login", json={"email": email, "password": password}, timeout=T)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def get(s, path, token=None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(s.url + path, headers=headers, timeout=T, **kw)


# --- metrics ----------------------------------------------------------------------------------


def test_metrics_include_the_realtime_websocket_counters():
    import websocket

    with demo.start(chat_latency_ms=0, **FAST) as s:
        token = login(s)
        before = get(s, "/api/admin/metrics", token).json()["realtime"]
        assert before["connections_open"] == 0 and before["connections_total"] == 0
        ws = websocket.create_connection(s.url.replace("http", "ws") + f"/api/realtime/ws?token={token}", timeout=T)
        try:
            ws.send('{"type": "ping", "id": 1}')
            assert '"pong"' in ws.recv()
            now = get(s, "/api/admin/metrics", token).json()["realtime"]
            assert now["connections_open"] == 1 and now["connections_total"] == 1
            assert now["messages_in"] == 1 and now["messages_out"] == 1
            assert now["bytes_in"] > 0 and now["bytes_out"] > 0
            assert now == s.realtime_stats()
        finally:
            ws.close()


def test_injected_faults_are_logged(tmp_path):
    # error_rate 1 answers the metrics route 500 too: the access log (same middleware) shows them
    log = tmp_path / "access.log"
    with demo.start(error_rate=1.0, access_log=str(log), **FAST) as s:
        for _ in range(3):
            assert get(s, "/api/admin/metrics").status_code == 500
    statuses = [LINE.match(line).group("status") for line in log.read_text().splitlines()]
    assert statuses == ["500"] * 3


# --- access log -------------------------------------------------------------------------------


def test_the_access_log_has_one_line_per_request_and_no_secrets(tmp_path):
    log = tmp_path / "sub" / "access.log"
    log.parent.mkdir()
    password = "hunter2-" + uuid.uuid4().hex
    email = f"u-{uuid.uuid4().hex[:10]}@example.com"
    with demo.start(access_log=str(log), chat_latency_ms=0, **FAST) as s:
        r = requests.post(s.url + "/api/auth/register", json={"email": email, "password": password}, timeout=T)
        assert r.status_code == 201
        token = login(s, email, password)
        refresh = requests.post(
            s.url + "/api/auth/login", json={"email": email, "password": password}, timeout=T
        ).json()["refresh_token"]
        assert get(s, "/api/users/me", token).status_code == 200
        # tokens in query strings (as on the WebSocket route) are masked
        get(s, "/api/realtime/ws", params={"token": token})
        get(s, "/health", params={"access_token": token, "page": "2", "Password": password})
        requests.post(s.url + "/api/auth/refresh", json={"refresh_token": refresh}, timeout=T)
        requests.post(s.url + "/api/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=T)
        # a file upload's name and body are not logged either
        admin = login(s)
        requests.post(
            s.url + "/api/admin/kb/documents",
            headers={"Authorization": f"Bearer {admin}"},
            files={"file": ("a.txt", password.encode())},
            timeout=T,
        )
    text = log.read_text()
    lines = text.splitlines()
    assert len(lines) == 10, text
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), text
    # the WebSocket route answers a plain GET with some 4xx (404 before it exists)
    assert parsed[4]["status"].startswith("4")
    assert [(m["method"], m["status"]) for i, m in enumerate(parsed) if i != 4] == [
        ("POST", "201"),
        ("POST", "200"),
        ("POST", "200"),
        ("GET", "200"),
        ("GET", "200"),
        ("POST", "200"),
        ("POST", "204"),
        ("POST", "200"),
        ("POST", "201"),
    ]
    assert parsed[4]["path"] == "/api/realtime/ws?token=***"
    assert parsed[5]["path"] == "/health?access_token=***&page=2&Password=***"
    assert parsed[0]["path"] == "/api/auth/register"
    for secret in (token, refresh, admin, password, token.split(".")[2]):
        assert secret not in text
    assert "hunter2" not in text


def test_the_access_log_is_off_by_default(capfd):
    with demo.start(**FAST) as s:
        assert get(s, "/health").status_code == 200
    out, err = capfd.readouterr()
    assert "/health" not in out + err


def test_the_access_log_appends(tmp_path):
    log = tmp_path / "access.log"
    log.write_text("earlier line\n")
    with demo.start(access_log=str(log), **FAST) as s:
        get(s, "/health")
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier line"
    assert LINE.match(lines[1])


def test_an_unwritable_access_log_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="access_log"):
        demo.start(access_log=str(tmp_path / "missing-dir" / "x.log"))
    with pytest.raises(ValueError, match="access_log"):
        demo.start(access_log="")


def test_the_cli_logs_to_stderr():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust_rs.demo", "--port", "0", "--access-log", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = proc.stdout.readline()
        url = re.search(r"http://\S+", first).group(0)
        assert requests.get(url + "/health?token=abc123", timeout=T).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0
    lines = [line for line in err.splitlines() if LINE.match(line)]
    assert len(lines) == 1, err
    assert '"GET /health?token=***" 200' in lines[0]
    assert "abc123" not in err
