"""End-to-end runs of the real ``locust`` command on locustfiles that use ``locust_rs.FastHttpUser``.

Each test writes a locustfile to a temporary directory, runs ``python -m locust`` on it as a subprocess against the
session's test server (``tests/servers.py``), and checks what locust itself recorded: the ``--csv`` files, the
``--html`` report, the web UI's JSON and the exit code. The contract tests check the session object by object; these
check that the pieces hold together inside locust's own runners, forked workers and web UI included.

Every run is bounded twice: by locust's ``-t`` (or the user quitting by itself) and by a hard subprocess timeout,
after which the whole process group (``--processes`` forks workers) is killed.
"""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

# What every locustfile here starts with. No wait at shutdown: locust-rs writes the CSV files once more with the
# final figures as Locust closes them (locust_rs.stats), where Locust's own last write can miss the run's last second.
LOCUSTFILE_PREAMBLE = """\
from locust import events
from locust.runners import WorkerRunner

import gevent

from locust_rs import FastHttpUser
"""

# start-up (imports, forking, web UI) and shutdown on top of the run time, before a run counts as hung
RUN_GRACE_S = 30
# how long processes of the run (forked workers) may outlive the locust process itself
LINGER_S = 5.0
# one more -f file that ends a run on a condition, as --run-time would (start_locust's stop_when)
STOP_WHEN_LOCUSTFILE = Path(__file__).with_name("stop_when.py")


@dataclass
class LocustRun:
    returncode: int
    pid: int
    output: str  # stdout and stderr together, for assertion messages
    csv_prefix: Path
    leftover: list[int]  # processes of the run still alive after the locust process exited (then killed)

    @property
    def stopped_on_condition(self) -> bool:
        """The run ended on its ``stop_when`` condition, not at the end of its ``-t``."""
        return "STOP_WHEN" in self.output and "holds, shutting down" in self.output

    def assert_exit(self, code: int) -> None:
        assert self.returncode == code, f"locust exited with {self.returncode}, expected {code}:\n{self.output}"
        assert self.leftover == [], f"processes {self.leftover} outlived locust by {LINGER_S} s:\n{self.output}"

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        """The rows of ``_stats.csv``, keyed by (Type, Name); the Aggregated row has an empty Type."""
        with open(f"{self.csv_prefix}_stats.csv", newline="") as f:
            return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}

    def failures(self) -> list[dict[str, str]]:
        """The rows of ``_failures.csv``: Method, Name, Error, Occurrences."""
        with open(f"{self.csv_prefix}_failures.csv", newline="") as f:
            return list(csv.DictReader(f))


def write_locustfile(directory: Path, body: str) -> Path:
    path = directory / "locustfile.py"
    path.write_text(LOCUSTFILE_PREAMBLE + "\n\n" + textwrap.dedent(body))
    return path


def locust_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # LOCUST_* and OTEL_* variables from the caller's shell would silently change the runs (Locust's settings; an
    # --otel run's exporters, endpoints and sampling), except the wakeup and the engine the suite's second pass
    # (`make test-py-portable`) sets on purpose, for every process of the run
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOCUST_", "OTEL_")) or k in ("LOCUST_RS_WAKEUP", "LOCUST_RS_ENGINE")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start_locust(
    locustfile: Path,
    *args: str,
    env_extra: dict[str, str] | None = None,
    module: str = "locust",
    run_dir: Path | None = None,
    stop_when: str | None = None,
) -> subprocess.Popen:
    """Starts ``python -m MODULE`` (``locust``, or ``locust_rs.cli``: the ``locust-rs`` command) in ``run_dir`` (the
    locustfile's directory by default), with its output in ``locust.log`` there. With ``stop_when``, the run ends as
    ``--run-time`` would once that condition holds (``tests/stop_when.py``; ``-t`` is then the upper bound, and
    ``LocustRun.stopped_on_condition`` says whether it did).

    A file rather than a pipe: forked workers inherit the output, and a pipe held open by a worker that outlived
    its master would block the reader, where a file lets ``finish_locust`` see the master end and the worker linger.
    """
    run_dir = run_dir or locustfile.parent
    files = str(locustfile)
    if stop_when is not None:
        files += f",{STOP_WHEN_LOCUSTFILE}"
        env_extra = {**(env_extra or {}), "STOP_WHEN": stop_when}
    with open(run_dir / "locust.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module, "-f", files, *args],
            # the temporary directory holds no locust.conf nor pyproject.toml that locust would read
            cwd=run_dir,
            env=locust_env(env_extra),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # own process group: a timeout then kills forked workers too
            start_new_session=True,
        )


def live_group_members(pgid: int) -> list[int]:
    """Pids of the processes in group ``pgid`` that still run: zombies left to a non-reaping init do not count."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the command name, in parentheses, may hold spaces; state, ppid and pgrp follow it
            state, _ppid, pgrp = stat.read_text().rpartition(")")[2].split()[:3]
        except (OSError, ValueError):
            continue  # the process ended while we looked
        if int(pgrp) == pgid and state != "Z":
            pids.append(int(stat.parent.name))
    return pids


def finish_locust(proc: subprocess.Popen, timeout: float, csv_prefix: Path) -> LocustRun:
    log = csv_prefix.parent / "locust.log"
    leftover: list[int] = []
    try:
        proc.wait(timeout=timeout)
        # Locust's master polls its forked workers only once (WNOHANG) before exiting, so a worker stuck at exit
        # would outlive it unnoticed. The run's own session holds exactly its processes.
        deadline = time.monotonic() + LINGER_S
        while (leftover := live_group_members(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        pytest.fail(f"locust did not exit within {timeout} s; its output:\n{log.read_text(errors='replace')}")
    finally:
        # whatever is left would keep loading the test server the other tests share
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return LocustRun(proc.returncode, proc.pid, log.read_text(errors="replace"), csv_prefix, leftover)


def run_locust(
    locustfile: Path,
    host: str,
    run_time_s: int,
    *args: str,
    env_extra: dict[str, str] | None = None,
    stop_when: str | None = None,
) -> LocustRun:
    """A headless run of ``run_time_s`` seconds at most (until ``stop_when`` holds, if given: see
    ``start_locust``), with its CSV files next to the locustfile."""
    csv_prefix = locustfile.parent / "run"
    proc = start_locust(
        locustfile,
        "--headless",
        "--host",
        host,
        "-t",
        f"{run_time_s}s",
        "--csv",
        str(csv_prefix),
        "--only-summary",
        *args,
        env_extra=env_extra,
        stop_when=stop_when,
    )
    return finish_locust(proc, run_time_s + RUN_GRACE_S, csv_prefix)


def count(row: dict[str, str], column: str = "Request Count") -> int:
    return int(row[column])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes(count: int) -> list[str]:
    """``--processes COUNT`` on a free master port: Locust's default, 5557, may be held by another run on the machine,
    such as the other shard of `make test-py`'s end-to-end tier."""
    port = str(free_port())
    return ["--processes", str(count), "--master-bind-port", port, "--master-port", port]


# ---------------------------------------------------------------------------------------------------------------------
# a mixed workload: successes, bad statuses, grouped names, catch_response both ways

MIXED_LOCUSTFILE = """
import random

from locust import constant, task


class Mixed(FastHttpUser):
    wait_time = constant(0.01)

    @task(3)
    def ok(self):
        self.client.get("/echo/ok")

    @task
    def not_found(self):
        self.client.get("/status/404")

    @task
    def grouped(self):
        self.client.get(f"/echo/item/{random.randint(1, 10_000)}", name="/echo/item/[id]")

    @task
    def rejected_by_check(self):
        with self.client.get("/json", catch_response=True) as resp:
            # a body that did not arrive intact makes .json() raise, and the request then never reaches the stats
            if resp.json()["hello"] == "world":
                resp.failure("hello world is not welcome")

    @task
    def accepted_by_check(self):
        with self.client.get("/status/404", name="404 accepted", catch_response=True) as resp:
            if resp.status_code == 404:
                resp.success()

    @task
    def post_json(self):
        with self.client.post("/echo/post", json={"n": 1}, catch_response=True) as resp:
            if resp.json()["body"] != '{"n": 1}':
                resp.failure(f"body not echoed: {resp.text[:200]}")
"""

MIXED_ROWS = {
    ("GET", "/echo/ok"),
    ("GET", "/status/404"),
    ("GET", "/echo/item/[id]"),
    ("GET", "/json"),
    ("GET", "404 accepted"),
    ("POST", "/echo/post"),
}


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory, http_server) -> LocustRun:
    directory = tmp_path_factory.mktemp("mixed")
    locustfile = write_locustfile(directory, MIXED_LOCUSTFILE)
    # until every kind of request has been made and 30 in all (-t: the upper bound)
    every_row = " and ".join(f"requests({name!r}, {method!r})" for method, name in sorted(MIXED_ROWS))
    run = run_locust(
        locustfile, http_server, 20, "-u", "5", "-r", "5", "--html", str(directory / "report.html"),
        stop_when=f"requests() >= 30 and {every_row}",
    )  # fmt: skip
    assert run.stopped_on_condition, run.output
    return run


def test_headless_run_counts_successes_and_failures(mixed_run):
    run = mixed_run
    # failures make locust exit with --exit-code-on-error, 1 by default; anything else is a crash
    run.assert_exit(1)
    stats = run.stats()
    total = stats.pop(("", "Aggregated"))

    assert set(stats) == MIXED_ROWS, run.output
    for key, row in stats.items():
        assert count(row) > 0, key
    assert count(total) == sum(count(row) for row in stats.values())
    assert count(total) >= 30, "the run stops once it has made 30 requests"
    assert float(total["Average Response Time"]) > 0

    for ok in [("GET", "/echo/ok"), ("GET", "/echo/item/[id]"), ("GET", "404 accepted"), ("POST", "/echo/post")]:
        assert count(stats[ok], "Failure Count") == 0, (ok, run.failures())
    assert float(stats["GET", "/echo/ok"]["Average Content Size"]) > 0
    for failing in [("GET", "/status/404"), ("GET", "/json")]:
        assert count(stats[failing], "Failure Count") == count(stats[failing]), failing
    assert count(total, "Failure Count") == count(stats["GET", "/status/404"]) + count(stats["GET", "/json"])


def test_headless_run_failure_messages(mixed_run):
    stats = mixed_run.stats()
    failures = {(row["Method"], row["Name"]): row for row in mixed_run.failures()}

    assert set(failures) == {("GET", "/status/404"), ("GET", "/json")}, failures
    bad_status = failures["GET", "/status/404"]
    assert "LocustBadStatusCode(code=404)" in bad_status["Error"]
    assert count(bad_status, "Occurrences") == count(stats["GET", "/status/404"], "Failure Count")
    rejected = failures["GET", "/json"]
    assert "hello world is not welcome" in rejected["Error"]
    assert count(rejected, "Occurrences") == count(stats["GET", "/json"], "Failure Count")


def test_html_report_lists_requests(mixed_run):
    report = mixed_run.csv_prefix.parent / "report.html"
    assert report.is_file(), mixed_run.output
    html = report.read_text(encoding="utf-8")
    for _method, name in MIXED_ROWS:
        assert name in html, name
    assert "LocustBadStatusCode(code=404)" in html
    assert "hello world is not welcome" in html


# ---------------------------------------------------------------------------------------------------------------------
# an exact count: each user makes a fixed number of requests, then the last one to finish ends the run

USERS = 3
REQUESTS_PER_USER = 25
BODY_SIZE = 123

COUNTED_LOCUSTFILE = f"""
from locust import constant, task
from locust.exception import StopUser

USERS = {USERS}
REQUESTS_PER_USER = {REQUESTS_PER_USER}
BODY_SIZE = {BODY_SIZE}
finished = 0


class Counted(FastHttpUser):
    wait_time = constant(0)

    @task
    def burst(self):
        global finished
        for _ in range(REQUESTS_PER_USER):
            self.client.get(f"/bytes/{{BODY_SIZE}}", name="bytes")
        with self.client.post("/echo", data=b"x" * 1000, name="post", catch_response=True) as resp:
            if resp.json()["body_length"] != 1000:
                resp.failure(f"server got {{resp.json()['body_length']}} bytes")
        finished += 1
        if finished == USERS:
            self.environment.runner.quit()
        # one burst per user: a user that stopped is not replaced, so nothing runs twice
        raise StopUser()
"""


def test_exact_request_count(tmp_path, http_server):
    locustfile = write_locustfile(tmp_path, COUNTED_LOCUSTFILE)
    # -t is only the safety net: the run must end long before, when the last user quits
    run = run_locust(locustfile, http_server, 20, "-u", str(USERS), "-r", "100")

    run.assert_exit(0)
    assert "--run-time limit reached" not in run.output, "the users' own quit() should have ended the run"
    stats = run.stats()
    assert count(stats["GET", "bytes"]) == USERS * REQUESTS_PER_USER, run.output
    assert count(stats["GET", "bytes"], "Failure Count") == 0, run.failures()
    # the engine reports the body length it read; every body is exactly BODY_SIZE bytes
    assert float(stats["GET", "bytes"]["Average Content Size"]) == BODY_SIZE
    assert count(stats["POST", "post"]) == USERS
    assert count(stats["POST", "post"], "Failure Count") == 0, run.failures()
    assert count(stats["", "Aggregated"]) == USERS * (REQUESTS_PER_USER + 1)
    assert run.failures() == []


# ---------------------------------------------------------------------------------------------------------------------
# --processes: locust imports the locustfile, then forks the workers

FORKED_LOCUSTFILE = """
import os

from locust import constant, events, task

from locust_rs import ConnectionPool, FastHttpSession

# made at import time, so before locust forks: every worker inherits the parent's pool object
SHARED_POOL = ConnectionPool(concurrency=4)

# A request before the fork too: the parent's runtime, gevent bridge and a pooled keep-alive connection then all
# exist when locust forks. A worker that kept using any of them would hang, or read answers meant for another process.
_warmup = FastHttpSession(os.environ["E2E_TARGET"], events.request, None, client_pool=SHARED_POOL)
assert _warmup.get("/echo/warmup").status_code == 200


class Forked(FastHttpUser):
    wait_time = constant(0.02)
    client_pool = SHARED_POOL

    def on_start(self):
        self.own_client = FastHttpSession(self.host, self.environment.events.request, self)

    # the stats rows name the process that made the request
    @task
    def shared(self):
        self.client.get("/echo/shared", name=f"shared pid={os.getpid()}")

    @task
    def own(self):
        self.own_client.get("/echo/own", name=f"own pid={os.getpid()}")
"""


def test_processes_fork(tmp_path, http_server):
    locustfile = write_locustfile(tmp_path, FORKED_LOCUSTFILE)
    run = run_locust(
        locustfile, http_server, 3, "-u", "4", "-r", "4", *processes(2), env_extra={"E2E_TARGET": http_server}
    )

    run.assert_exit(0)
    stats = run.stats()
    total = stats.pop(("", "Aggregated"))
    assert count(total) > 0, run.output
    assert count(total, "Failure Count") == 0, run.failures()
    assert count(total) == sum(count(row) for row in stats.values())

    # the warmup request fired before locust listened to requests: only the users' rows are there
    pids: dict[str, set[int]] = {}
    for (method, name), row in stats.items():
        assert method == "GET" and " pid=" in name, name
        kind, _, pid = name.partition(" pid=")
        assert count(row) > 0, name
        pids.setdefault(kind, set()).add(int(pid))
    assert set(pids) == {"shared", "own"}, list(stats)
    assert len(pids["shared"]) == 2, f"expected requests from 2 worker processes, got {sorted(pids['shared'])}"
    assert pids["own"] == pids["shared"], "every worker should have used both kinds of session"
    assert run.pid not in pids["shared"], "the master process should not run users"


# ---------------------------------------------------------------------------------------------------------------------
# the web UI: --autostart runs the test with the UI up, --autoquit ends the process afterwards

WEB_UI_LOCUSTFILE = """
from locust import constant, task


class WebUser(FastHttpUser):
    wait_time = constant(0.01)

    @task
    def hit(self):
        self.client.get("/echo/web", name="web")
"""


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read()


def test_web_ui_autostart(tmp_path, http_server):
    locustfile = write_locustfile(tmp_path, WEB_UI_LOCUSTFILE)
    csv_prefix = tmp_path / "run"
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    run_time_s = 4
    started = time.monotonic()
    proc = start_locust(
        locustfile,
        "--host",
        http_server,
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(port),
        "--autostart",
        "--autoquit",
        "1",
        "-u",
        "5",
        "-r",
        "5",
        "-t",
        f"{run_time_s}s",
        "--csv",
        str(csv_prefix),
    )
    live_stats = None
    try:
        # while the test runs, the UI must answer and show the requests being counted
        deadline = started + run_time_s
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, body = http_get(f"{web}/stats/requests")
            except OSError:
                time.sleep(0.2)
                continue
            live_stats = json.loads(body)
            if status == 200 and any(s["name"] == "web" and s["num_requests"] > 0 for s in live_stats["stats"]):
                break
            time.sleep(0.2)
        page_status, page = http_get(f"{web}/") if proc.poll() is None else (None, b"")
    finally:
        run = finish_locust(proc, run_time_s + RUN_GRACE_S, csv_prefix)

    assert live_stats is not None, f"the web UI never answered on {web}; locust output:\n{run.output}"
    assert any(s["name"] == "web" and s["num_requests"] > 0 for s in live_stats["stats"]), live_stats
    assert page_status == 200 and b"<html" in page.lower(), page[:300]
    run.assert_exit(0)
    stats = run.stats()
    assert count(stats["GET", "web"]) > 0, run.output
    assert count(stats["GET", "web"], "Failure Count") == 0, run.failures()
    assert count(stats["", "Aggregated"]) == count(stats["GET", "web"])
    # the final count can only have grown since the UI showed it
    live = next(s for s in live_stats["stats"] if s["name"] == "web")
    assert count(stats["GET", "web"]) >= live["num_requests"]
