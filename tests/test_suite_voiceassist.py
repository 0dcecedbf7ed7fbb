"""The VoiceAssist load-test suite (locustfiles/) run end to end against the bundled demo server: the smoke test,
the user-journey, admin-workflow and arrival-rate scenarios, a local distributed run, the tag filter, and
scripts/check_results.py. Each run is bounded by ``--run-time`` and a subprocess timeout; together they take about
two minutes."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests

from locust_rs import demo

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "locustfiles"
RUN_TESTS = SUITE / "run-tests.sh"
CHECK = ROOT / "scripts" / "check_results.py"
STOP_WHEN_LOCUSTFILE = ROOT / "tests" / "stop_when.py"
sys.path.insert(0, str(ROOT / "scripts"))

import check_results  # noqa: E402

_spec = importlib.util.spec_from_file_location("voiceassist_config", SUITE / "config.py")
SUITE_CONFIG = sys.modules["voiceassist_config"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(SUITE_CONFIG)

RATE_LIMITED = " [429 rate-limited]"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def suite_env(results: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VOICEASSIST_BASE_URL", None)
    env.pop("VOICEASSIST_WS_URL", None)
    # nothing answers there: run-tests.sh starts the bundled demo server, as on a fresh machine
    env["VOICEASSIST_DEFAULT_HOST"] = "http://127.0.0.1:9"
    env["RESULTS_DIR"] = str(results)
    env["PY"] = sys.executable
    # locust_rs itself comes from the installed package (as on a fresh machine after `pip install .`), never from
    # the source tree, which has no built native module
    return env


class Run:
    def __init__(self, results: Path, mode: str, proc: subprocess.CompletedProcess) -> None:
        self.proc = proc
        self.output = proc.stdout
        stats = sorted(results.glob(f"{mode}_test_*_stats.csv"))
        assert len(stats) == 1, f"expected one {mode} run in {results}: {stats}\n{self.output[-3000:]}"
        self.prefix = Path(str(stats[0])[: -len("_stats.csv")])
        with stats[0].open(newline="") as f:
            self.rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}
        metrics = Path(f"{self.prefix}_custom_metrics.json")
        self.metrics = json.loads(metrics.read_text()) if metrics.exists() else None

    def count(self, method: str, name: str) -> int:
        row = self.rows.get((method, name))
        return int(row["Request Count"]) if row else 0

    def names(self) -> set[str]:
        return {name for (_t, name) in self.rows if name != "Aggregated"}

    def failures(self) -> int:
        return int(self.rows[("", "Aggregated")]["Failure Count"])

    def rate_limited_rows(self) -> int:
        return sum(int(r["Request Count"]) for (_t, n), r in self.rows.items() if n.endswith(RATE_LIMITED))


def run_suite(
    tmp_path: Path,
    mode: str,
    *args: str,
    timeout: float = 120,
    env_extra=None,
    stop_when: tuple[str, str] | None = None,
) -> Run:
    """``run-tests.sh MODE ARGS``. ``stop_when``, (condition, the mode's locustfile under locustfiles/): the run ends
    as ``--run-time`` would once the condition holds (``tests/stop_when.py``, given to locust after ``--``), and its
    ``--run-time`` is only the upper bound."""
    env = suite_env(tmp_path)
    env.update(env_extra or {})
    if stop_when is not None:
        condition, locustfile = stop_when
        args = (*args, "--", "-f", f"{SUITE / locustfile},{STOP_WHEN_LOCUSTFILE}")
        env["STOP_WHEN"] = condition
    proc = subprocess.run(
        ["bash", str(RUN_TESTS), mode, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"run-tests.sh {mode} exited {proc.returncode}:\n{proc.stdout[-4000:]}"
    assert "started the bundled demo server" in proc.stdout
    assert "stopped the demo server" in proc.stdout
    if stop_when is not None:
        assert "STOP_WHEN" in proc.stdout, f"the run waited out its --run-time:\n{proc.stdout[-3000:]}"
    return Run(tmp_path, mode, proc)


def check_passes(run: Run) -> str:
    proc = subprocess.run(
        [sys.executable, str(CHECK), str(run.prefix)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.returncode == 0, proc.stdout
    assert "PASSED" in proc.stdout
    return proc.stdout


@pytest.fixture(scope="module")
def capabilities():
    """What the demo server of this build offers (routes other branches add later are probed, not assumed)."""
    with demo.start(port=0) as server:
        token = requests.post(
            server.url + "/api/auth/login",
            json={"email": "admin@voiceassist.local", "password": "admin12345"},
            timeout=5,
        ).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        return {
            "documents": requests.get(server.url + "/api/admin/kb/documents", headers=h, timeout=5).status_code != 404,
            "admin_metrics": requests.get(server.url + "/api/admin/metrics", headers=h, timeout=5).status_code != 404,
        }


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    results = tmp_path_factory.mktemp("smoke")
    # Every area the tests below look at has requests, as in the 20 s of `make smoke` (the upper bound here).
    seen = (
        "requests('/api/chat/query') >= 3 and requests('/health') and requests('ws: message')"
        " and requests('/api/conversations') + requests('/api/conversations/[id]/messages')"
        " and requests('/api/auth/login') + requests('/api/users/me')"
        " and any(name.startswith('/api/admin/') for name, _method in stats.entries)"
    )
    return run_suite(results, "smoke", "--run-time=20s", "--headless", timeout=100, stop_when=(seen, "locustfile.py"))


@pytest.mark.timeout(120)
def test_smoke_runs_every_user_type(smoke):
    spawned = re.search(r"All users spawned: (\{.*?\}) \((\d+) total users\)", smoke.output)
    assert spawned, smoke.output[-3000:]
    counts = json.loads(spawned.group(1))
    assert spawned.group(2) == "10"
    assert set(counts) == {"RegularUser", "PowerUser", "AdminUser"}
    assert all(n >= 1 for n in counts.values()), counts
    # the demo server was started by run-tests.sh, not by the locustfile: one target only
    assert "using the bundled VoiceAssist demo server" not in smoke.output


@pytest.mark.timeout(120)
def test_smoke_covers_each_area_and_only_429s_are_not_successes(smoke, capabilities):
    names = smoke.names()
    assert smoke.count("POST", "/api/chat/query") > 0
    assert {"/api/conversations", "/api/conversations/[id]/messages"} & names
    assert smoke.count("GET", "/health") > 0
    assert {"/api/auth/login", "/api/users/me"} & names
    admin_rows = {n for n in names if n.startswith("/api/admin/")}
    assert admin_rows, names
    if not capabilities["admin_metrics"]:
        assert "/api/admin/metrics" not in names  # probed absent: skipped, not failed
    assert smoke.failures() == 0, (Path(f"{smoke.prefix}_failures.csv").read_text(), smoke.output[-2000:])
    assert smoke.metrics["custom_metrics"]["rate_limit_hits"] == smoke.rate_limited_rows()


@pytest.mark.timeout(120)
def test_smoke_fills_in_the_custom_metrics_and_passes_the_check(smoke):
    m = smoke.metrics
    assert m is not None, "no _custom_metrics.json beside the CSV"
    custom = m["custom_metrics"]
    for key in ("auth_failures", "rate_limit_hits", "ws_connections", "document_uploads", "citation_rate"):
        assert key in custom
    # chat answers come over HTTP and, in the realtime tasks, over the WebSocket (typed and voice)
    http_answers = smoke.count("POST", "/api/chat/query")
    ws_answers = smoke.count("WSRT", "ws: message") + smoke.count("WSRT", "ws: voice")
    assert custom["queries_answered"] == http_answers + ws_answers
    assert 0 < custom["queries_with_citations"] <= custom["queries_answered"]
    assert 0 < custom["citation_rate"] <= 1
    assert custom["auth_failures"] == 0
    # locust-rs's verdict on the suite's thresholds: every group is checked, or listed as not checked because none
    # of its tasks ran in this short run (one admin may not visit the documents in 20 s)
    checked = {t["key"] for t in m["thresholds"]}
    not_checked = {t["label"] for t in m["thresholds_not_checked"]}
    assert {"error_rate", "chat", "health", "ws_message"} <= checked, m["thresholds"]
    labels = {t.key: t.label for t in SUITE_CONFIG.THRESHOLDS}
    assert {labels[k] for k in checked - {"error_rate"}} | not_checked == set(labels.values()), m
    assert all(t["reason"] == "none of the tasks that make these requests ran" for t in m["thresholds_not_checked"])
    assert m["thresholds_passed"] is True
    assert all(t["count"] > 0 for t in m["thresholds"]), m["thresholds"]
    chat = next(t for t in m["thresholds"] if t["key"] == "chat")
    # the verdict reads the same exact percentile as every output, over the same requests Locust counted
    assert chat["count"] == http_answers
    assert f"{chat['observed']:.3f}" == f"{float(smoke.rows[('POST', '/api/chat/query')]['95%']):.3f}", chat
    # the verdict is the last line locust printed
    assert re.search(r"\nRun passed \(exit code 0\): all [^\n]*\nrun-tests.sh: locust exited with 0", smoke.output), (
        smoke.output[-2000:]
    )
    assert Path(f"{smoke.prefix}.html").stat().st_size > 0
    out = check_passes(smoke)
    assert "citation rate" in out


@pytest.mark.timeout(90)
def test_user_journey_runs_its_steps_in_order(tmp_path):
    # until a journey has ended (its last step): every step has run
    run = run_suite(
        tmp_path, "user-journey", "--run-time=20s", "--users=2", "--headless", timeout=60,
        stop_when=("requests('/api/users/me [after logout]')", "scenarios/user_journey.py"),
    )  # fmt: skip
    steps = [
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/chat/query"),
        ("POST", "/api/auth/logout"),
        ("GET", "/api/users/me [after logout]"),
    ]
    counts = [run.count(*s) for s in steps]
    assert all(counts), dict(zip(steps, counts, strict=True))
    # in order: no step runs more often than the one before it
    assert counts[0] >= counts[1] >= counts[3] >= counts[4], counts
    assert run.failures() == 0
    check_passes(run)


@pytest.mark.timeout(90)
def test_admin_workflow_runs_login_upload_manage_monitor(tmp_path, capabilities):
    # until every step the tests below look for has run once
    steps = ["requests('/api/admin/users')", "requests('/api/admin/dashboard')"]
    if capabilities["documents"]:
        steps += ["requests('/api/admin/kb/documents/[id]', 'DELETE')", "requests('/api/admin/kb/documents', 'GET')"]
    if capabilities["admin_metrics"]:
        steps.append("requests('/api/admin/metrics')")
    run = run_suite(
        tmp_path, "admin-workflow", "--run-time=20s", "--users=1", "--headless", timeout=60,
        stop_when=(" and ".join(steps), "scenarios/admin_workflow.py"),
    )  # fmt: skip
    assert run.count("POST", "/api/auth/login") > 0
    assert run.count("GET", "/api/admin/users") > 0
    assert run.count("GET", "/api/admin/dashboard") > 0
    if capabilities["documents"]:
        assert run.count("POST", "/api/admin/kb/documents [upload]") > 0
        assert run.count("GET", "/api/admin/kb/documents/[id]") > 0  # polled until ready
        assert run.count("GET", "/api/admin/kb/documents") > 0
        assert run.count("DELETE", "/api/admin/kb/documents/[id]") > 0
        assert run.metrics["custom_metrics"]["document_uploads"] == run.count(
            "POST", "/api/admin/kb/documents [upload]"
        )
    if capabilities["admin_metrics"]:
        assert run.count("GET", "/api/admin/metrics") > 0
    assert run.failures() == 0
    check_passes(run)


def arrival_iterations_due(elapsed: float, run_time: float, rate: float = 20.0, spike: float = 3.0) -> float:
    """Iterations the arrival scenario's plan has due in its first ``elapsed`` seconds, from the phases of its
    docstring: the steady rate for 20 % of the run time, a linear ramp to ``spike`` times it over 5 %, that for
    25 %, a ramp back over 5 %, then the steady rate."""
    phases = [  # (duration, rate at its start, rate at its end)
        (0.20 * run_time, rate, rate),
        (0.05 * run_time, rate, spike * rate),
        (0.25 * run_time, spike * rate, spike * rate),
        (0.05 * run_time, spike * rate, rate),
        (float("inf"), rate, rate),
    ]
    due, start = 0.0, 0.0
    for duration, a, b in phases:
        span = min(duration, elapsed - start)
        if span <= 0:
            break
        due += span * (a + (a + (b - a) * span / duration)) / 2  # the trapezoid under the ramp's first `span`
        start += duration
    return due


@pytest.mark.timeout(90)
def test_arrival_scenario_keeps_its_rate_through_the_spike(tmp_path):
    """The open-model scenario, 12 s: its stages scale with the run time, so the run has the whole shape (20/s, the
    ramp to 60/s, 60/s, the ramp back, 20/s). The iterations due follow the plan, each begun one is one chat query,
    and none is dropped (a locust-rs threshold says so too)."""
    run_time = 12
    run = run_suite(
        tmp_path, "arrival", f"--run-time={run_time}s", "--users=10", "--headless",
        "--", "--threshold", "ArrivalChatUser:dropped_iterations<1", timeout=60,
    )  # fmt: skip
    # --users without --spawn-rate: the whole pool in the first second
    assert "Ramping to 10 users at a rate of 10.00 per second" in run.output, run.output[-3000:]
    assert "Start lag (ms) of arrival-rate iterations" in run.output
    arrival_csv = Path(f"{run.prefix}_arrival.csv")
    assert arrival_csv.exists(), run.output[-3000:]
    with arrival_csv.open(newline="") as f:
        rows = {r["User class"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"ArrivalChatUser"}, rows
    row = rows["ArrivalChatUser"]
    elapsed = float(row["Elapsed"])
    scheduled, iterations = int(row["Scheduled"]), int(row["Iterations"])
    dropped, peak = int(row["Dropped iterations"]), int(row["Peak users"])
    # the clock starts with the first iteration, after the pool of accounts is ready: past the spike, short of -t
    assert 0.55 * run_time < elapsed <= run_time, row
    due = arrival_iterations_due(elapsed, run_time)
    assert due * 0.97 - 1 <= scheduled <= due * 1.03 + 1, (due, row)
    # the clock's own target agrees with the plan
    assert float(row["Target rate"]) * elapsed == pytest.approx(due, rel=0.01), (due, row)
    assert iterations > 0 and dropped == 0, row
    assert 10 <= peak <= 100, row  # the pool, and at most the scenario's max_users
    # iterations handed out as the clock stopped had not begun: at most one per user
    assert scheduled - peak <= iterations + dropped <= scheduled, row
    # one iteration, one chat query (a 429 would be a query too); those in flight at the stop are not counted
    chats = run.count("POST", "/api/chat/query") + run.count("POST", "/api/chat/query" + RATE_LIMITED)
    assert iterations - max(2, 0.02 * iterations) <= chats <= iterations, (chats, row)
    assert run.names() <= {"/api/chat/query", "/api/chat/query" + RATE_LIMITED}, run.names()
    assert run.failures() == 0
    assert run.metrics["custom_metrics"]["queries_answered"] == run.count("POST", "/api/chat/query")
    assert "dropped_iterations<1" in run.output
    check_passes(run)


@pytest.mark.timeout(120)
def test_distributed_with_two_local_workers(tmp_path):
    # until the master has the workers' chat answers over HTTP and the WebSocket
    run = run_suite(
        tmp_path, "distributed", "--workers=2", "--headless", "--run-time=30s", "--users=10", timeout=100,
        stop_when=("requests('/api/chat/query') >= 3 and requests('ws: message')", "locustfile.py"),
    )  # fmt: skip
    assert "local master" in run.output and "2 workers" in run.output
    worker_logs = sorted(tmp_path.glob("distributed_test_*.worker*.log"))
    assert len(worker_logs) == 2
    for log in worker_logs:
        text = log.read_text()
        # each worker learnt the host from the master and prepared its own user pool
        assert "test accounts ready" in text, text[-2000:]
        assert "using the bundled VoiceAssist demo server" not in text
    assert run.count("POST", "/api/chat/query") > 0
    # the workers' custom metrics reached the master
    ws_answers = run.count("WSRT", "ws: message") + run.count("WSRT", "ws: voice")
    assert run.metrics["custom_metrics"]["queries_answered"] == run.count("POST", "/api/chat/query") + ws_answers
    assert run.failures() == 0
    check_passes(run)


def _has_ws_client() -> bool:
    import locust_rs

    return any(isinstance(getattr(locust_rs, n, None), type) for n in ("WebSocketMixin", "WebSocketClientMixin"))


def _has_realtime_endpoint() -> bool:
    with demo.start(port=0) as server:  # a plain GET: 400 upgrade_required where the endpoint exists
        return requests.get(server.url + "/api/realtime/ws", timeout=5).status_code != 404


WS_TYPES = {"WS", "WSRT", "WSFF", "WSRECV", "WSSEND"}  # locust-rs's WebSocket request types (docs/websocket.md)


@pytest.mark.timeout(90)
@pytest.mark.skipif(
    not (_has_ws_client() and _has_realtime_endpoint()),
    reason="needs locust_rs's WebSocket client (issue 5) and the demo server's /api/realtime/ws",
)
def test_tags_websocket_runs_only_the_websocket_tasks(tmp_path):
    run = run_suite(
        tmp_path, "smoke", "--run-time=20s", "--tags=websocket", timeout=60,
        stop_when=(
            "requests('ws: message') and requests('ws: voice') and requests('/api/realtime/ws')", "locustfile.py"
        ),
    )  # fmt: skip
    rows = {k for k in run.rows if k[1] != "Aggregated"}
    assert rows and {t for t, _n in rows} <= WS_TYPES, rows
    assert {("WSRT", "ws: message"), ("WSRT", "ws: voice"), ("WS", "/api/realtime/ws")} <= rows, rows
    assert "not spawning AdminUser" in run.output
    assert run.failures() == 0
    custom = run.metrics["custom_metrics"]
    assert custom["ws_connections"] > 0 and custom["queries_answered"] > 0
    ws_threshold = next(t for t in run.metrics["thresholds"] if t["key"] == "ws_message")
    assert ws_threshold["count"] > 0
    # the groups --tags websocket leaves no task for are listed as not checked, not failed for want of data
    assert {t["label"] for t in run.metrics["thresholds_not_checked"]} == {
        "Login",
        "Chat query",
        "Document upload",
        "Health check",
    }, run.metrics


def test_tags_websocket_leaves_only_the_realtime_users(tmp_path):
    """The tag plumbing, with or without a WebSocket client: AdminUser has no websocket task and is not spawned
    (Locust would spawn it and fail), and no HTTP task runs (the test users' set-up is not part of the stats)."""
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(SUITE / "locustfile.py"), "--headless", "-u", "4", "-r", "4",
         "-t", "4s", "--tags", "websocket", "--only-summary"],
        cwd=tmp_path, env=suite_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "no tasks left after the tag filter: not spawning AdminUser" in proc.stdout
    spawned = json.loads(re.search(r"All users spawned: (\{.*?\})", proc.stdout).group(1))
    assert set(spawned) == {"RegularUser", "PowerUser"}, spawned
    assert not re.search(r"^(GET|POST|DELETE)\s", proc.stdout, re.M), proc.stdout[-3000:]
    if not _has_ws_client():
        assert proc.stdout.count("realtime voice tasks skipped") == 1


def test_tags_filter_leaves_out_user_types_without_tasks(tmp_path):
    """--tags health: every user type has health tasks, so all run, and only /health is requested."""
    env = suite_env(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(SUITE / "locustfile.py"), "--headless", "-u", "3", "-r", "3",
         "-t", "6s", "--tags", "health", "--only-summary"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "using the bundled VoiceAssist demo server at http://127.0.0.1:" in proc.stdout
    assert "not spawning AdminUser" not in proc.stdout  # every type has health tasks
    rows = [line for line in proc.stdout.splitlines() if re.match(r"(GET|POST|DELETE)\s", line)]
    assert rows and all(" /health " in line for line in rows), rows


# --- check_results.py on made-up results ---------------------------------------------------------------------------

STATS_HEADER = ["Type", "Name", "Request Count", "Failure Count"]


def write_run(prefix: Path, rows, failures=(), thresholds_passed=True) -> None:
    with open(f"{prefix}_stats.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(STATS_HEADER)
        w.writerows(rows)
    with open(f"{prefix}_failures.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Method", "Name", "Error", "Occurrences"])
        w.writerows(failures)
    # as the suite writes locust-rs's verdict (Result.as_dict, plus the suite's key and label)
    thresholds = [{"key": "chat", "label": "Chat query", "expression": "p(95)<3000", "target": "Chat query",
                   "observed": 4000.0 if not thresholds_passed else 40.0, "limit": "< 3000.000 ms", "unit": "ms",
                   "count": 10, "passed": thresholds_passed},
                  {"key": "login", "label": "Login", "expression": "p(95)<1000", "target": "Login",
                   "observed": None, "limit": "< 1000.000 ms", "unit": "ms", "count": 0,
                   "passed": thresholds_passed, "did_you_mean": ""}]  # fmt: skip
    not_checked = [{"label": "Document upload", "expression": "p(95)<10000", "reason": "none of its tasks ran"}]
    Path(f"{prefix}_custom_metrics.json").write_text(
        json.dumps(
            {
                "custom_metrics": {"queries_answered": 10},
                "thresholds": thresholds,
                "thresholds_not_checked": not_checked,
            }
        )  # fmt: skip
    )


def test_check_results_counts_429s_as_rate_limit_hits_not_errors(tmp_path, capsys):
    prefix = tmp_path / "load_test_1"
    write_run(
        prefix,
        [
            ["POST", "/api/chat/query", 90, 0],
            ["POST", "/api/auth/login" + RATE_LIMITED, 5, 0],
            ["POST", "/api/auth/register", 5, 5],
            ["", "Aggregated", 100, 5],
        ],
        failures=[["POST", "/api/auth/register", "HTTPError('429 Client Error: Too Many Requests')", 5]],
    )
    assert check_results.main([str(prefix)]) == 0
    out = capsys.readouterr().out
    assert "errors          0" in out and "rate-limit hits 10" in out and "PASSED" in out


def test_check_results_fails_over_five_percent_errors(tmp_path, capsys):
    prefix = tmp_path / "load_test_2"
    write_run(
        prefix,
        [["GET", "/health", 100, 6], ["", "Aggregated", 100, 6]],
        failures=[["GET", "/health", "HTTPError('500 Server Error')", 6]],
    )
    assert check_results.main([str(prefix)]) == 1
    assert "FAIL: error rate 6.00% is over 5.00%" in capsys.readouterr().out
    assert check_results.main(["--max-error-rate", "0.1", str(tmp_path)]) == 0  # a directory: its newest run


def test_check_results_fails_on_a_failed_threshold_and_without_results(tmp_path, capsys):
    prefix = tmp_path / "load_test_3"
    write_run(prefix, [["GET", "/health", 10, 0], ["", "Aggregated", 10, 0]], thresholds_passed=False)
    assert check_results.main([str(prefix)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  Chat query           p(95)<3000     observed 4000.000 ms, limit < 3000.000 ms (n=10)" in out
    assert "FAIL  Login                p(95)<1000     no data: the run made none of these requests (n=0)" in out
    assert "SKIP  Document upload      p(95)<10000    not checked: none of its tasks ran" in out
    assert out.rstrip().endswith("FAILED")
    assert check_results.main([str(tmp_path / "nothing")]) == 2


# --- pieces of the suite, in a subprocess (importing them registers listeners on locust.events) --------------------


def run_python(code: str, tmp_path: Path, env_extra: dict[str, str] | None = None) -> str:
    env = suite_env(tmp_path)
    env.update(env_extra or {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SUITE), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc.stdout


def test_spike_shape_goes_baseline_peak_recovery(tmp_path):
    out = run_python(
        """
        import sys; sys.path.insert(0, "scenarios")
        from types import SimpleNamespace
        import spike_scenario as s
        shape = s.SpikeShape()
        shape.runner = SimpleNamespace(environment=SimpleNamespace(parsed_options=SimpleNamespace(
            num_users=1000, spawn_rate=200, run_time=300)))
        at = {}
        for t in (0, 59, 61, 149, 151, 299, 300):
            shape.get_run_time = lambda t=t: t
            at[t] = shape.tick()
        assert at[0] == (100, 10.0) and at[59] == (100, 10.0), at
        assert at[61] == (1000, 200.0) and at[149] == (1000, 200.0), at
        assert at[151] == (100, 200.0) and at[299] == (100, 200.0), at
        assert at[300] is None, at
        print("ok")
        """.replace('"scenarios"', repr(str(SUITE / "scenarios"))),
        tmp_path,
    )
    assert out.strip().endswith("ok")


@pytest.mark.timeout(150)
def test_a_baseline_fails_the_next_run_on_a_real_regression(tmp_path):
    """The nightly workflow (locustfiles/README.md): a run, then the next with ``--baseline=last``. The second
    target answers chat queries four times slower (the demo server's --latency-scale 4): ``locust-rs compare``
    calls them slower, writes its JUnit and markdown, appends the markdown to $GITHUB_STEP_SUMMARY, and
    run-tests.sh exits 1 although locust itself passed."""
    env = suite_env(tmp_path)
    first = subprocess.run(
        ["bash", str(RUN_TESTS), "arrival", "--run-time=8s", "--users=10", "--headless", "--baseline=last"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
    )  # fmt: skip
    assert first.returncode == 2, first.stdout[-2000:]
    assert "--baseline=last: no earlier arrival run that passed" in first.stdout
    base = run_suite(tmp_path, "arrival", "--run-time=8s", "--users=10", "--headless", timeout=60)
    summary = tmp_path / "step-summary.md"
    summary.write_text("## earlier steps\n")
    env.update(DEMO_ARGS="--latency-scale 4", GITHUB_STEP_SUMMARY=str(summary))
    proc = subprocess.run(
        ["bash", str(RUN_TESTS), "arrival", "--run-time=8s", "--users=10", "--headless", "--baseline=last"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 1, out[-4000:]
    assert f"run-tests.sh: baseline: {base.prefix}\n" in out
    assert "run-tests.sh: locust exited with 0" in out and "compared with the baseline" in out
    candidate = next(p for p in tmp_path.glob("arrival_test_*_compare.xml"))
    cases = {c.get("name"): c for c in ET.parse(candidate).getroot().iter("testcase")}
    chat = cases["POST /api/chat/query"]
    assert chat.find("failure") is not None and chat.find("failure").get("type") == "slower", ET.tostring(chat)
    assert "p50 +" in chat.find("failure").get("message")
    assert summary.read_text().startswith("## earlier steps\n### ❌ Candidate arrival_test_")
    # the regressed run can never be the next one's baseline: --baseline=last takes runs that ended with 0
    exits = sorted(p.read_text().strip() for p in tmp_path.glob("arrival_test_*.exit"))
    assert exits == ["0", "1"], exits
    # the console table is in the output, the slower row marked
    assert re.search(r"^POST /api/chat/query \(corrected\)\s.*slower$", out, re.M), out[-3000:]


def test_realtime_tasks_against_a_scripted_connection(tmp_path):
    """The WebSocket voice tasks' logic, on a stand-in with the interface of locust-rs's WebSocket client
    (docs/websocket.md: ``connect``, ``send``, ``send_json``, ``request(reply=, until=, name=)``, ``close``; its
    errors derive from RescheduleTask and are reported by the client itself)."""
    out = run_python(
        """
        import json
        from types import SimpleNamespace
        from locust.env import Environment
        from locust.exception import InterruptTaskSet, RescheduleTask
        import tasks, utils

        client_events, task_events = [], []

        class WsTimeout(RescheduleTask):
            pass

        class Reply:
            def __init__(self, messages):
                self.messages, self.response_time = messages, 12.0
                self.response_length = sum(len(m) for m in messages)

        class Conn:
            def __init__(self, script):
                self.script, self.sent, self.closed = [json.dumps(f) for f in script], [], False
            def send_json(self, obj): self.sent.append(obj)
            def send(self, data): self.sent.append(data)
            def request(self, message, reply=None, until=None, name=None, timeout=None):
                self.sent.append(message)
                got = []
                while self.script:
                    m = self.script.pop(0)
                    kind = json.loads(m).get("type")
                    if kind in reply:
                        got.append(m)
                    if kind in until:
                        client_events.append((name, None))
                        return Reply(got)
                client_events.append((name, "timeout"))
                raise WsTimeout("timed out waiting for a message")
            def close(self): self.closed = True

        env = Environment(events=__import__("locust").events)
        env.events.request.add_listener(lambda **kw: task_events.append(kw))
        account = utils.Account("a@example.com", "pw")
        utils.AuthHelper.seed(account, utils.Tokens("tok", "ref", 1e12))
        user = SimpleNamespace(environment=env, context=lambda: {}, realtime=None, host="http://127.0.0.1:8000",
                               account=account)
        user.auth = utils.AuthHelper(None)
        ts = tasks.RealtimeVoiceTasks.__new__(tasks.RealtimeVoiceTasks)
        ts._user = user

        # connect: through the user's connect(), to the ws:// URL with the token; a refusal is counted
        urls = []
        user.connect = lambda url, name=None, timeout=None: urls.append((url, name)) or Conn([])
        ts.on_start()
        assert urls == [("ws://127.0.0.1:8000/api/realtime/ws?token=tok", "/api/realtime/ws")], urls
        assert utils.metrics.counts["ws_connections"] == 1
        def refuse(url, name=None, timeout=None):
            raise WsTimeout("WebSocket handshake refused: HTTP 401")
        user.connect, user.realtime = refuse, None
        try:
            ts.on_start()
            raise AssertionError("no interrupt")
        except InterruptTaskSet:
            pass
        assert utils.metrics.counts["ws_connection_failures"] == 1

        user.realtime = Conn([{"type": "chunk", "content": "a"}, {"type": "chunk", "content": "b"},
                              {"type": "message_complete", "answer": "ab", "citations": [{"id": "kb-1"}]}])
        tasks.RealtimeVoiceTasks.streamed_message(ts)
        assert client_events[-1] == ("ws: message", None) and not task_events
        assert user.realtime.sent[0]["type"] == "message"
        assert utils.metrics.counts["queries_with_citations"] == 1

        conn = Conn([{"type": "transcript", "text": "hello"}, {"type": "chunk", "content": "x"},
                     {"type": "message_complete", "citations": []}])
        user.realtime = conn
        tasks.RealtimeVoiceTasks.voice_utterance(ts)
        assert client_events[-1] == ("ws: voice", None) and not task_events
        kinds = [m["type"] if isinstance(m, dict) else "binary" for m in conn.sent]
        assert kinds[0] == "audio_start" and kinds[-1] == "audio_end" and kinds.count("binary") == 10, kinds
        assert utils.metrics.counts["queries_answered"] == 2

        user.realtime = Conn([{"type": "error", "error": "not_found", "detail": "no such conversation"}])
        tasks.RealtimeVoiceTasks.ping(ts)
        assert task_events[-1]["name"] == "ws: ping [invalid reply]", task_events[-1]
        assert "no such conversation" in str(task_events[-1]["exception"])

        user.realtime = Conn([{"type": "message_complete", "citations": []}])
        tasks.RealtimeVoiceTasks.voice_utterance(ts)
        assert "without a transcript" in str(task_events[-1]["exception"]), task_events[-1]

        # a client error (timeout, close) was reported by the client: the task only drops the connection
        conn = Conn([])
        user.realtime = conn
        n = len(task_events)
        tasks.RealtimeVoiceTasks.ping(ts)
        assert client_events[-1] == ("ws: ping", "timeout") and len(task_events) == n
        assert conn.closed and user.realtime is None  # the next visit reconnects
        print("ok")
        """,
        tmp_path,
    )
    assert out.strip().endswith("ok")


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_file_is_valid():
    proc = subprocess.run(
        ["docker-compose", "-f", str(SUITE / "docker-compose.yml"), "config"],
        cwd=SUITE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout
    for service in ("voiceassist-demo", "locust-master", "locust-worker"):
        assert f"{service}:" in proc.stdout


def test_dockerfile_copies_only_what_exists():
    """docker-compose config does not read the Dockerfile: check its sources against the build context here."""
    text = (SUITE / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2, stages
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        *sources, _dest = line.split()
        for src in sources:
            assert src == "." or (ROOT / src).exists(), f"COPY {src}: not in the build context (the repository root)"
    compose = (SUITE / "docker-compose.yml").read_text()
    assert "dockerfile: locustfiles/Dockerfile" in compose and "context: .." in compose
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "target/" in ignored  # the build context must not carry gigabytes of cargo output


def test_the_suites_thresholds_are_locust_rs_thresholds(tmp_path):
    """One verdict: the suite's groups are locust-rs thresholds, judged by its rules. A slow request warns as it
    happens and fails its group; a group whose task began but made no request fails for no data; a group none of whose
    tasks ran is listed as not checked; the exit code is locust-rs's 99; the metrics file holds that same verdict."""
    out = run_python(
        f"""
        import json, logging, locust
        from locust.env import Environment
        from locust_rs import stats
        from locust_rs.stats import thresholds
        import utils

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        env = Environment(events=locust.events)
        env.create_local_runner()
        stats.adopt(env)
        for ms in (900, 20, 30):
            env.events.request.fire(request_type="GET", name="/health", response_time=ms, response_length=0,
                                    exception=None, context={{}}, response=None, start_time=0, url=None)
        env.events.request.fire(request_type="POST", name="/api/chat/query", response_time=40, response_length=0,
                                exception=None, context={{}}, response=None, start_time=0, url=None)
        for task in ("HealthTasks.health", "ChatTasks.new_question", "AuthTasks.session"):
            utils.metrics.task_ran(task)
        env.events.quitting.fire(environment=env, reverse=True)
        assert env.process_exit_code == thresholds.EXIT_CODE == 99
        data = json.load(open({str(tmp_path / "m.json")!r}))
        by_key = {{t["key"]: t for t in data["thresholds"]}}
        assert set(by_key) == {{"error_rate", "login", "chat", "health"}}, by_key
        assert not by_key["health"]["passed"] and by_key["health"]["observed"] == 900, by_key["health"]
        assert by_key["chat"]["passed"] and by_key["chat"]["count"] == 1
        assert not by_key["login"]["passed"] and by_key["login"]["observed"] is None and by_key["login"]["count"] == 0
        assert data["thresholds_passed"] is False and data["custom_metrics"]["threshold_warnings"] == 1
        assert {{t["label"] for t in data["thresholds_not_checked"]}} == {{"Document upload", "WebSocket message"}}
        assert [r.threshold.label for r in thresholds.results(env)] == ["All requests", "Login", "Chat query",
                                                                         "Health check"]
        print(thresholds.report(thresholds.results(env), env))
        print("ok")
        """,
        tmp_path,
        {"VOICEASSIST_METRICS_FILE": str(tmp_path / "m.json")},
    )
    assert "WARNING threshold exceeded: GET /health took 900 ms, limit 500 ms" in out
    assert re.search(r"✗ +p\(95\)<500 +Health check +900\.000 ms", out), out
    assert re.search(r"✗ +p\(95\)<1000 +Login +no data", out), out
    assert re.search(r"- +p\(95\)<10000 +Document upload +not checked: none of the tasks", out), out
    assert "2 of 4 thresholds failed; 2 not checked" in out
    assert out.strip().endswith("ok")


@pytest.mark.timeout(90)
def test_processes_share_one_bundled_server(tmp_path):
    """--processes 2 forks before init: only the master starts the demo server, the two workers learn the host."""
    port = free_port()  # not Locust's default 5557: another run on this machine may hold it
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(SUITE / "locustfile.py"), "--headless", "--processes", "2",
         "--master-bind-port", str(port), "--master-port", str(port), "-u", "4", "-r", "4", "-t", "5s",
         "--only-summary"],
        cwd=tmp_path, env=suite_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=80,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert proc.stdout.count("using the bundled VoiceAssist demo server") == 1, proc.stdout[-3000:]
    hosts = set(re.findall(r"test accounts ready in [\d.]+ s \((http://[\d.:]+)\)", proc.stdout))
    assert len(re.findall("test accounts ready", proc.stdout)) == 2 and len(hosts) == 1, proc.stdout[-3000:]


@pytest.mark.timeout(90)
def test_stopping_run_tests_writes_the_reports_and_stops_the_demo_server(tmp_path):
    """SIGTERM to run-tests.sh (a CI timeout, say) in web mode: locust stops as on Ctrl-C, writing its HTML report,
    and the demo server it started goes too."""
    import signal
    import time

    out = tmp_path / "out.txt"
    web_port = free_port()
    with out.open("w") as f:
        proc = subprocess.Popen(
            ["bash", str(RUN_TESTS), "web", "--", "--web-host", "127.0.0.1", "--web-port", str(web_port)],
            cwd=ROOT,
            env=suite_env(tmp_path),
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 40
        while "Starting web interface" not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.2)
        demo_url = re.search(r"started the bundled demo server at (\S+)", out.read_text()).group(1)
        assert requests.get(demo_url + "/health", timeout=5).status_code == 200
        # "Starting web interface" comes before Flask has registered its routes; a signal in between interrupts
        # the set-up itself (no runner yet, so no report). A user stops a UI that answers.
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
            try:
                if requests.get(f"http://127.0.0.1:{web_port}/", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=45) == 143
    finally:
        if proc.poll() is None:  # a failed assert above: let the script's traps clean up, then insist
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                proc.kill()
    text = out.read_text()
    assert "stopped the demo server" in text, text[-3000:]
    reports = [p for p in tmp_path.glob("web_test_*.html") if not p.name.endswith("_hdr.html")]
    assert len(reports) == 1, text[-3000:]  # Locust's report (beside the metrics core's _hdr.html page)
    with pytest.raises(requests.ConnectionError):
        requests.get(demo_url + "/health", timeout=5)


@pytest.mark.timeout(90)
def test_shared_tokens_are_refreshed_not_logged_in_again(tmp_path):
    """Access tokens that live 62 s are within the AuthHelper's 60 s margin after 2 s: the users refresh the
    shared tokens (one refresh per account at a time) instead of logging in again."""
    env = suite_env(tmp_path)
    env["VOICEASSIST_DEMO_OPTIONS"] = "access_token_ttl=62"
    env["VOICEASSIST_USER_POOL_SIZE"] = "2"
    # until a token has been refreshed and several requests went out with the refreshed ones (-t: the upper bound)
    env["STOP_WHEN"] = (
        "requests('/api/auth/refresh') and requests('/api/chat/query') > requests('/api/auth/refresh') + 5"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", f"{SUITE / 'locustfile.py'},{STOP_WHEN_LOCUSTFILE}", "--headless",
         "-u", "6", "-r", "6", "-t", "20s", "--tags", "chat", "--csv", str(tmp_path / "run"), "--only-summary"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    with open(tmp_path / "run_stats.csv", newline="") as f:
        rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}
    refreshes = int(rows[("POST", "/api/auth/refresh")]["Request Count"])
    chats = int(rows[("POST", "/api/chat/query")]["Request Count"])
    assert "STOP_WHEN" in proc.stdout, proc.stdout[-3000:]
    assert ("POST", "/api/auth/login") not in rows
    # 2 pool accounts and the admin's: a refresh when a token is 2 s old, not one per request
    assert 1 <= refreshes < chats, (refreshes, chats)
    assert int(rows[("", "Aggregated")]["Failure Count"]) == 0
