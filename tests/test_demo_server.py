"""Starting and stopping the demo server, as a child process and from the command line, and a user's way through it.

The routes themselves are tested in process, in crates/voiceassist-demo/tests/; the smoke test here walks the main
flow over a real socket.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from locust_rs import demo

pytestmark = pytest.mark.timeout(60)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_start_returns_a_listening_server_and_stop_closes_it():
    server = demo.start()
    try:
        assert server.host == "127.0.0.1"
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.running
        assert requests.get(server.url + "/health", timeout=5).json()["status"] == "ok"
    finally:
        assert server.stop() is True
    assert not server.running
    assert server.stop() is True  # twice is fine
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/health", timeout=5)


def test_a_user_registers_logs_in_and_chats_through_a_real_server():
    with demo.start(chat_latency_ms=0, register_per_minute=0, password_hash_iterations=10) as s:
        email = f"user-{uuid.uuid4().hex[:12]}@example.com"
        creds = {"email": email, "password": "password123"}
        r = requests.post(s.url + "/api/auth/register", json=creds, timeout=5)
        assert r.status_code == 201, r.text
        r = requests.post(s.url + "/api/auth/login", json=creds, timeout=5)
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        me = requests.get(s.url + "/api/users/me", headers=headers, timeout=5)
        assert me.status_code == 200
        assert me.json()["email"] == email
        r = requests.post(
            s.url + "/api/chat/query", json={"query": "How much does the Team plan cost?"}, headers=headers, timeout=5
        )
        assert r.status_code == 200, r.text
        assert r.json()["citations"][0]["id"] == "kb-003"


def test_context_manager_stops_even_with_a_kept_alive_connection():
    with requests.Session() as session:
        with demo.start() as server:
            assert session.get(server.url + "/health", timeout=5).status_code == 200
            started = time.monotonic()
        assert time.monotonic() - started < 5
        assert not server.running


def test_an_explicit_port_is_used():
    port = free_port()
    with demo.start(port=port) as server:
        assert server.port == port


def test_a_busy_port_raises_oserror():
    with demo.start() as server:
        with pytest.raises(OSError):
            demo.start(port=server.port)


def test_unknown_and_invalid_options_raise():
    with pytest.raises(TypeError):
        demo.start(no_such_option=1)
    with pytest.raises(ValueError, match="access_token_ttl"):
        demo.start(access_token_ttl=0)


def test_defaults_are_documented_values():
    d = demo.DemoServer.default_options()
    assert d["admin_email"] == "admin@voiceassist.local"
    assert d["password_hash_iterations"] == 1000
    assert d["access_token_ttl"] == 900


def test_cli_serves_health_until_sigterm():
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust_rs.demo",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--register-per-minute",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.communicate(timeout=5)
                assert time.monotonic() < deadline, "the CLI did not start listening"
                time.sleep(0.1)
        assert r.json()["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert f"listening on http://127.0.0.1:{port}" in out.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)


def test_cli_help_lists_the_options():
    out = subprocess.run(
        [sys.executable, "-m", "locust_rs.demo", "--help"], capture_output=True, timeout=30, check=True
    ).stdout.decode()
    for flag in ("--port", "--admin-password", "--password-hash-iterations", "--login-attempts-per-minute"):
        assert flag in out


def test_cli_reports_a_busy_port():
    with demo.start() as server:
        r = subprocess.run(
            [sys.executable, "-m", "locust_rs.demo", "--port", str(server.port)], capture_output=True, timeout=30
        )
    assert r.returncode == 2
    assert b"cannot listen" in r.stderr


def _thread_names(pid):
    return {(task / "comm").read_text().strip() for task in Path(f"/proc/{pid}/task").iterdir()}


def test_the_server_is_a_process_of_its_own_with_its_own_threads():
    with demo.start() as server:
        assert server.pid is not None and server.pid != os.getpid()
        assert server.running
        if sys.platform.startswith("linux"):
            # the kernel keeps 15 characters of a thread's name
            assert "voiceassist-dem" in _thread_names(server.pid)
            assert not any(name.startswith("voiceassist") for name in _thread_names(os.getpid()))
    assert server.pid is None and not server.running


def test_the_server_stops_when_its_parent_dies():
    script = "from locust_rs import demo; s = demo.start(); print(s.url, flush=True); import time; time.sleep(60)"
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        url = parent.stdout.readline().strip()
        assert requests.get(url + "/health", timeout=5).status_code == 200
    finally:
        parent.kill()  # no clean-up runs: only the end of the server's standard input tells it
        parent.wait(timeout=10)
        parent.stdout.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/health", timeout=2)
        except requests.ConnectionError:
            return
        time.sleep(0.1)
    raise AssertionError("the demo server outlived its parent")


def test_realtime_stats_outlive_the_server_and_a_killed_one_is_a_clear_error():
    server = demo.start()
    assert server.realtime_stats()["connections_open"] == 0
    server.stop()
    assert server.realtime_stats()["connections_total"] == 0  # the final counters, printed as it stopped
    killed = demo.start()
    os.kill(killed.pid, signal.SIGKILL)
    killed.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        killed.realtime_stats()


def test_the_program_is_found_and_can_be_chosen(monkeypatch, tmp_path):
    assert os.path.isfile(demo.executable())
    monkeypatch.setenv("VOICEASSIST_DEMO_BIN", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError):
        demo.start()


def test_the_documented_options_are_the_programs_and_their_defaults_match():
    # docs/demo-server.md's table is written by hand: every option of the program is in it, with its default
    doc = (Path(__file__).resolve().parent.parent / "docs" / "demo-server.md").read_text()
    table = doc.split("| option | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)`[^|]*\| `([^`]*)`", table, flags=re.M))
    names = set(re.findall(r"^\| `(\w+)`", table, flags=re.M)) - {"host", "port"}
    defaults = demo.DemoServer.default_options()
    assert names == set(defaults)
    for name, value in defaults.items():
        if value is not None:  # jwt_secret and access_log: "random per start", "off"
            assert rows[name] == str(value), name
