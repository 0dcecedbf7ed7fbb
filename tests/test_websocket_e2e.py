"""An end-to-end `locust --headless` run of a locustfile using locust_rs.WebSocketUser, checked via its CSV stats."""

import locust  # noqa: F401,I001 - monkey-patches first

import csv
import os
import subprocess
import sys
import textwrap

from test_websocket import ws_server  # noqa: F401 - the module-scoped server fixture

LOCUSTFILE = textwrap.dedent(
    """
    from locust import constant, events, task
    from locust.runners import WorkerRunner

    import time

    import gevent

    from locust_rs import WebSocketUser, WebSocketTimeout
    from locust_rs.websocket import counters


    @events.quitting.add_listener
    def _print_counters(environment, **_kwargs):
        # The users closed their connections as they stopped; the engine finishes closing them on its own thread.
        # Wait for that (a condition, bounded), not for a fixed time. (The final CSV needs no wait: locust-rs writes
        # it as Locust closes the files.)
        deadline = time.monotonic() + 10
        while counters()["connections_open"] and time.monotonic() < deadline:
            gevent.sleep(0.01)
        print("COUNTERS", counters(), flush=True)


    class Chat(WebSocketUser):
        wait_time = constant(0.01)

        def on_start(self):
            self.ws = self.connect("/echo?token=abc")

        @task(3)
        def ping(self):
            self.ws.request({"type": "ping"}, reply="pong", name="ping")

        @task(1)
        def stream(self):
            self.ws.request({"type": "stream", "n": 5}, reply=("chunk", "done"), until="done", name="stream")

        @task(1)
        def silence(self):
            try:
                self.ws.request({"type": "silence"}, name="silence", timeout=0.05)
            except WebSocketTimeout:
                pass
    """
)


def test_locust_headless_run_with_websocket_user(ws_server, tmp_path):  # noqa: F811
    path = tmp_path / "locustfile.py"
    path.write_text(LOCUSTFILE)
    prefix = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "locust", "-f", str(path), "--headless", "-u", "10", "-r", "10", "-t", "3s",
        "--host", f"http://127.0.0.1:{ws_server['port']}", "--csv", str(prefix), "--only-summary",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=dict(os.environ))
    output = proc.stdout + proc.stderr
    # Failures (the silence timeouts) make locust exit with 1.
    assert proc.returncode == 1, output
    # No traceback at all: not ours, and not Locust's CSV writer's shutdown race either (locust_rs.stats ends it).
    assert "Traceback" not in output, output
    with open(f"{prefix}_stats.csv", newline="") as f:
        stats = {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}
    connect = stats[("WS", "/echo")]
    assert int(connect["Request Count"]) == 10 and int(connect["Failure Count"]) == 0
    ping = stats[("WSRT", "ping")]
    assert int(ping["Request Count"]) > 50 and int(ping["Failure Count"]) == 0
    assert float(ping["Average Content Size"]) == len('{"type": "pong"}')
    first, last = stats[("WSFF", "stream")], stats[("WSRT", "stream")]
    assert int(first["Request Count"]) == int(last["Request Count"]) > 10
    assert int(first["Failure Count"]) == int(last["Failure Count"]) == 0
    assert float(first["Average Response Time"]) <= float(last["Average Response Time"])
    assert float(last["Average Content Size"]) > float(first["Average Content Size"])
    silence = stats[("WSRT", "silence")]
    assert int(silence["Failure Count"]) == int(silence["Request Count"]) > 0
    with open(f"{prefix}_failures.csv", newline="") as f:
        failures = list(csv.DictReader(f))
    assert [(r["Method"], r["Name"]) for r in failures] == [("WSRT", "silence")]
    assert "timed out" in failures[0]["Error"]
    # The users' connections were closed at the end of the test.
    counters_line = next(line for line in output.splitlines() if line.startswith("COUNTERS"))
    assert "'connections_open': 0" in counters_line and "'connections_opened': 10" in counters_line
