"""A distributed run that survives a lost worker, with every process on a host of its own.

No Docker engine here, so each process gets its own network namespace instead (``tests/netns.py``): the VoiceAssist
demo server, a master and four workers, each with its own address on a bridge in a hub namespace. They run the
VoiceAssist smoke scenario (``locustfiles/locustfile.py``). Mid-run one worker's link is cut at the hub (the worker
keeps running, as in a real partition): the master must notice, carry on with the other three (Locust's
``--enable-rebalancing`` moves the lost worker's users) and log which worker it lost, at which address, and what it
had reported. Then a fifth worker joins and gets users. At the end every output of the master (``_stats.csv``,
``_failures.csv``, ``_hdr.csv``, the ``.hlog``, ``--json-file``, the HTML report and its HDR page) shows exactly the
sum of what the workers' reports brought: a second locustfile on the master sums each worker's reports as they
arrive, from the same ``worker_report`` event the master merges them from.

Skips with the reason where network namespaces cannot be created (not root, no iproute2, a kernel or container that
refuses them).
"""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)

import csv
import html
import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

import pytest

from locust_rs import _native, demo
from tests.netns import Host, Topology
from tests.test_e2e_locust import RUN_GRACE_S, finish_locust, locust_env
from tests.test_outputs_agree import _csv, _html_args

REPO = Path(__file__).resolve().parent.parent
SMOKE_LOCUSTFILE = REPO / "locustfiles" / "locustfile.py"
STOP_WHEN_LOCUSTFILE = REPO / "tests" / "stop_when.py"
SERVER_PORT = 8000  # each host is a namespace of its own: nothing else can hold its ports
MASTER_PORT = 5557
USERS = 20
RUN_TIME_S = 38  # an upper bound: the test ends the run once it has seen the late worker's requests
CUT_AFTER_S = 6  # after the ramp-up starts, and once every worker has reported
WORKERS = ("w1", "w2", "w3", "w4")
LOST = "w2"
LATE = "w5"
SUMS_ENV = "DISTRIBUTED_HOSTS_SUMS"

# On the master: what each worker's reports brought, summed per client id, written after every report (so the test
# can follow the run) and once more at `quitting`, after the master's last report, with "final": true.
WORKER_SUMS_LOCUSTFILE = """
import json
import os
import time

from locust import events
from locust.runners import MasterRunner

PATH = os.environ.get("DISTRIBUTED_HOSTS_SUMS")
COUNTS = ("num_requests", "num_failures", "num_none_requests", "total_content_length")
workers = {}


def add(into, entry):
    for key in COUNTS:
        into[key] = into.get(key, 0) + int(entry.get(key) or 0)
    into["total_response_time"] = into.get("total_response_time", 0.0) + float(entry.get("total_response_time") or 0)
    # the HDR side: the histogram buckets locust-rs ships, {ms: count}
    into["hdr_count"] = into.get("hdr_count", 0) + sum(int(n) for n in (entry.get("response_times") or {}).values())
    if entry.get("max_response_time") is not None and entry.get("num_requests"):
        into["max_response_time"] = max(into.get("max_response_time", 0.0), float(entry["max_response_time"]))
    if entry.get("min_response_time") is not None:
        low = into.get("min_response_time")
        value = float(entry["min_response_time"])
        into["min_response_time"] = value if low is None else min(low, value)


def write(final=False):
    if not PATH:
        return
    with open(PATH + ".tmp", "w") as f:
        json.dump({"final": final, "workers": workers}, f)
    os.replace(PATH + ".tmp", PATH)


@events.test_start.add_listener
def on_test_start(environment, **_kw):
    # the master clears its statistics as the test starts
    if isinstance(environment.runner, MasterRunner):
        for w in workers.values():
            w.update(total={}, entries={}, errors={})


@events.worker_report.add_listener
def on_worker_report(client_id, data, **_kw):
    w = workers.setdefault(
        client_id, {"address": None, "reports": 0, "last_report": None, "total": {}, "entries": {}, "errors": {}}
    )
    w["address"] = data.get("locust_rs_address", w["address"])
    w["reports"] += 1
    w["last_report"] = time.time()
    add(w["total"], data["stats_total"])
    for e in data["stats"]:
        add(w["entries"].setdefault(e["method"] + "\\t" + e["name"], {}), e)
    for error in data["errors"].values():
        key = error["method"] + "\\t" + error["name"]
        w["errors"][key] = w["errors"].get(key, 0) + int(error["occurrences"])
    write()


@events.quitting.add_listener
def on_quitting(environment, **_kw):
    if isinstance(environment.runner, MasterRunner):
        write(final=True)
"""

PROBE = """
import sys, time, urllib.request
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=1) as r:
            sys.exit(0 if r.status == 200 else 1)
    except OSError as e:
        if time.monotonic() > deadline:
            sys.exit(f"{sys.argv[1]}: {e}")
        time.sleep(0.1)
"""

LOST_LINE = re.compile(
    r"worker (?P<id>\S+) at (?P<address>\S+) stopped reporting: the requests it made since its last report, "
    r"(?P<ago>[\d.]+) s ago .*?, are not in the statistics.*?; it reported (?P<requests>\d+) requests and "
    r"(?P<failures>\d+) failures in all"
)
READY_LINE = re.compile(r"(?P<id>\S+) \(index \d+\) reported as ready\. (?P<n>\d+) workers connected")


class Cluster:
    """The processes of the test, each started in its host's namespace in a process group of its own."""

    def __init__(self, topo: Topology, tmp_path: Path) -> None:
        self.topo = topo
        self.tmp_path = tmp_path
        self.procs: dict[str, subprocess.Popen] = {}
        # The master ends the run as --run-time would once the test creates the stop file (tests/stop_when.py).
        self.stop_file = tmp_path / "stop"
        self.env = locust_env(
            {
                "VOICEASSIST_BASE_URL": self.base_url,
                SUMS_ENV: str(self.sums_path),
                "STOP_WHEN": f"exists({str(self.stop_file)!r})",
            }
        )
        self.locustfiles = f"{SMOKE_LOCUSTFILE},{self.tmp_path / 'worker_sums.py'},{STOP_WHEN_LOCUSTFILE}"
        (self.tmp_path / "worker_sums.py").write_text(textwrap.dedent(WORKER_SUMS_LOCUSTFILE))

    @property
    def base_url(self) -> str:
        return f"http://{self.topo['server'].address}:{SERVER_PORT}"

    @property
    def sums_path(self) -> Path:
        return self.tmp_path / "worker_sums.json"

    def directory(self, name: str) -> Path:
        d = self.tmp_path / name
        d.mkdir(exist_ok=True)
        return d

    def log(self, name: str) -> Path:
        return self.directory(name) / "locust.log"

    def spawn(self, name: str, *argv: str) -> subprocess.Popen:
        host: Host = self.topo[name]
        with open(self.log(name), "wb") as log:
            proc = subprocess.Popen(
                [*host.prefix(), *argv],
                # a directory without locust.conf or pyproject.toml that Locust would read
                cwd=self.directory(name),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def locust(self, name: str, *args: str) -> subprocess.Popen:
        return self.spawn(name, sys.executable, "-m", "locust", "-f", self.locustfiles, *args)

    def worker(self, name: str) -> subprocess.Popen:
        return self.locust(
            name, "--worker", "--master-host", self.topo["master"].address, "--master-port", str(MASTER_PORT)
        )

    def kill_all(self) -> None:
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def sums(self) -> dict:
        try:
            return json.loads(self.sums_path.read_text())
        except (OSError, ValueError):
            return {"final": False, "workers": {}}

    def worker_at(self, address: str) -> tuple[str, dict] | None:
        for client_id, w in self.sums()["workers"].items():
            if w["address"] == address:
                return client_id, w
        return None

    def wait(self, what: str, timeout: float, check):
        """``check()``'s first true value within ``timeout`` s; fails with the master's log otherwise, or at once
        when the master has ended."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            master = self.procs.get("master")
            if master is not None and master.poll() is not None and not check():
                pytest.fail(f"the master ended (exit code {master.returncode}) before {what}:\n{self.text('master')}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout} s; the master's log:\n{self.text('master')}")
            time.sleep(0.2)

    def text(self, name: str) -> str:
        try:
            return self.log(name).read_text(errors="replace")
        except OSError:
            return ""


def _start_server(cluster: Cluster) -> None:
    cluster.spawn("server", demo.executable(), "--host", cluster.topo["server"].address, "--port", str(SERVER_PORT))
    url = cluster.base_url + "/health"
    probe = subprocess.run(
        [*cluster.topo["master"].prefix(), sys.executable, "-c", PROBE, url, "20"],
        capture_output=True,
        text=True,
        timeout=40,
    )
    assert probe.returncode == 0, f"the demo server never answered {url}: {probe.stderr}\n{cluster.text('server')}"


def _add(into: dict, part: dict) -> None:
    for key, value in part.items():
        if key == "max_response_time":
            into[key] = max(into.get(key, 0.0), value)
        elif key == "min_response_time":
            into[key] = value if into.get(key) is None else min(into[key], value)
        else:
            into[key] = into.get(key, 0) + value


def _expected(workers: dict) -> tuple[dict, dict, dict]:
    """What the workers' reports add up to: the total, per (method, name), and failures per (method, name)."""
    total: dict = {}
    entries: dict = defaultdict(dict)
    errors: dict = defaultdict(int)
    for w in workers.values():
        _add(total, w["total"])
        for key, e in w["entries"].items():
            _add(entries[tuple(key.split("\t", 1))], e)
        for key, n in w["errors"].items():
            errors[tuple(key.split("\t", 1))] += n
    return total, {k: e for k, e in entries.items() if e["num_requests"] or e["num_failures"]}, dict(errors)


def _agrees(row_label, want: dict, requests, failures, hdr_count=None) -> None:
    assert (requests, failures) == (want["num_requests"], want["num_failures"]), (row_label, want)
    if hdr_count is not None:
        assert hdr_count == want["hdr_count"], (row_label, want)


def _hdr_page_rows(path: Path) -> dict:
    """The raw rows of the HDR page: (type, name) -> (count, failures)."""
    rows = {}
    for cells in re.findall(r"<tr>(.*?)</tr>", path.read_text(encoding="utf-8")):
        tds = [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", cells)]
        if len(tds) > 4 and tds[2] == "raw":
            rows[(tds[0], tds[1])] = (int(tds[3]), int(tds[4]))
    return rows


def _hlog_total(path: Path) -> int:
    """The requests in the raw aggregate series (the untagged lines) of an .hlog, over all its intervals."""
    merged = _native.HistogramSet()
    for line in path.read_text().splitlines():
        if line.startswith(("#", '"', "Tag=")) or not line:
            continue
        merged.add_encoded("all", "all", line.rsplit(",", 1)[1])
    return merged.count("all", "all")


@pytest.mark.timeout(RUN_TIME_S + 2 * RUN_GRACE_S + 60)
def test_a_lost_worker_and_a_late_one(tmp_path):
    topo = Topology.create(["server", "master", *WORKERS, LATE])
    cluster = Cluster(topo, tmp_path)
    try:
        _run(cluster, tmp_path)
    finally:
        cluster.kill_all()
        topo.close()


def _run(cluster: Cluster, tmp_path: Path) -> None:
    topo = cluster.topo
    started = time.monotonic()
    _start_server(cluster)
    master_dir = cluster.directory("master")
    prefix, report, json_prefix = master_dir / "run", master_dir / "report.html", master_dir / "out"
    master = cluster.locust(
        "master",
        "--master",
        "--headless",
        "--master-bind-host",
        topo["master"].address,
        "--master-bind-port",
        str(MASTER_PORT),
        "--expect-workers",
        str(len(WORKERS)),
        "--expect-workers-max-wait",
        "60",
        "--enable-rebalancing",
        "-u",
        str(USERS),
        "-r",
        str(USERS),
        "-t",
        f"{RUN_TIME_S}s",
        "--host",
        cluster.base_url,
        "--csv",
        str(prefix),
        "--html",
        str(report),
        "--json-file",
        str(json_prefix),
    )
    for name in WORKERS:
        cluster.worker(name)

    cluster.wait("start of the run", 60, lambda: "Run time limit set to" in cluster.text("master"))
    ramp = time.monotonic()
    # every worker reports requests from its own address before the cut
    addresses = {topo[name].address for name in WORKERS}
    cluster.wait(
        "requests from all 4 workers",
        CUT_AFTER_S + 5,
        lambda: (
            {w["address"] for w in cluster.sums()["workers"].values() if w["total"].get("num_requests")} >= addresses
        ),
    )
    lost_id, _ = cluster.worker_at(topo[LOST].address)
    time.sleep(max(0.0, ramp + CUT_AFTER_S - time.monotonic()))

    topo.cut(LOST)
    cut = time.monotonic()
    lost = cluster.wait("line about the lost worker", 20, lambda: LOST_LINE.search(cluster.text("master")))
    noticed = time.monotonic() - cut
    assert lost["id"] == lost_id and lost["address"] == topo[LOST].address, lost.group(0)
    assert f"Worker {lost_id} failed to send heartbeat, setting state to missing" in cluster.text("master")
    assert cluster.procs[LOST].poll() is None, "the cut-off worker ended by itself"
    # the run goes on: the lost worker's users move to the other three (--enable-rebalancing)
    cluster.wait(
        "rebalancing onto the 3 workers left",
        10,
        lambda: (
            f"Sending spawn jobs of {USERS} users at {USERS}.00 spawn rate to 3 ready workers" in cluster.text("master")
        ),
    )
    at_loss = {client_id: w["total"]["num_requests"] for client_id, w in cluster.sums()["workers"].items()}

    ready_before = {m["id"] for m in READY_LINE.finditer(cluster.text("master"))}
    cluster.worker(LATE)
    late_id = cluster.wait(
        "new worker connecting",
        25,
        lambda: next(
            (m["id"] for m in READY_LINE.finditer(cluster.text("master")) if m["id"] not in ready_before), None
        ),
    )
    cluster.wait(
        "users for the new worker",
        10,
        lambda: (
            f"Sending spawn jobs of {USERS} users at {USERS}.00 spawn rate to 4 ready workers"
            in cluster.text("master").split(late_id, 1)[-1]
        ),
    )
    remaining = RUN_TIME_S - (time.monotonic() - ramp)
    cluster.wait(
        "requests from the new worker",
        max(1.0, remaining - 1),
        lambda: cluster.sums()["workers"].get(late_id, {}).get("total", {}).get("num_requests"),
    )
    cluster.wait(
        "reports from the three others after the loss",
        max(1.0, RUN_TIME_S - (time.monotonic() - ramp) - 1),
        lambda: all(
            cluster.sums()["workers"][client_id]["total"]["num_requests"] > before
            for client_id, before in at_loss.items()
            if client_id != lost_id
        ),
    )
    cluster.stop_file.touch()  # all seen: the run ends now, through the --run-time path

    run = finish_locust(master, RUN_TIME_S + RUN_GRACE_S, prefix)
    took = time.monotonic() - started
    assert "STOP_WHEN" in cluster.text("master"), "the run waited out -t instead of stopping on the test's word"
    for name in (*WORKERS, LATE):
        if name != LOST:
            try:
                cluster.procs[name].wait(timeout=15)
            except subprocess.TimeoutExpired:
                pytest.fail(f"worker {name} did not quit with the master:\n{cluster.text(name)}")
    assert cluster.procs[LOST].poll() is None, "the cut-off worker should still run, cut off"

    sums = cluster.sums()
    assert sums["final"], "the master's worker_sums listener did not run at quitting"
    workers = sums["workers"]
    assert {w["address"] for w in workers.values()} == {topo[n].address for n in (*WORKERS, LATE)}, workers
    assert workers[late_id]["address"] == topo[LATE].address
    for client_id, w in workers.items():
        assert w["total"]["num_requests"] > 0, (client_id, w)
    # the lost worker's line gave what the master had from it, and nothing came after
    lost_sums = workers[lost_id]["total"]
    assert (int(lost["requests"]), int(lost["failures"])) == (
        lost_sums["num_requests"],
        lost_sums["num_failures"],
    ), lost.group(0)
    assert float(lost["ago"]) < 10, lost.group(0)
    # the three others went on reporting after the loss
    for client_id, before in at_loss.items():
        if client_id != lost_id:
            assert workers[client_id]["total"]["num_requests"] > before, (client_id, workers[client_id]["address"])

    total, entries, errors = _expected(workers)
    # each worker's own total is the sum of its entries
    assert total["num_requests"] == sum(e["num_requests"] for e in entries.values())
    assert total["num_failures"] == sum(e["num_failures"] for e in entries.values())
    assert total["hdr_count"] == sum(e["hdr_count"] for e in entries.values())
    assert total["hdr_count"] == total["num_requests"] - total["num_none_requests"]

    # No traceback from locust-rs anywhere (none at all on the master), and the exit code of a smoke run: 0, or 1
    # where failures, a failed threshold or user exceptions explain it.
    output = run.output
    assert "Traceback" not in output, output
    for name in (*WORKERS, LATE):
        tracebacks = cluster.text(name).split("Traceback (most recent call last):")[1:]
        assert not any("locust_rs" in t for t in tracebacks), (name, cluster.text(name))
    exceptions = list(_csv_rows(Path(f"{prefix}_exceptions.csv")))
    assert not any("locust_rs" in r.get("Traceback", "") for r in exceptions), exceptions
    # the suite's thresholds are locust-rs's: its verdict prints, and a crossed one exits 99 (before failures' 1)
    thresholds_failed = "Run failed (exit code 99)" in output
    assert thresholds_failed or re.search(r"all \d+ thresholds? passed", output), output
    explained = total["num_failures"] > 0 or bool(exceptions)
    assert run.returncode == (99 if thresholds_failed else 1 if explained else 0), (
        f"exit code {run.returncode}; failures {total['num_failures']}, thresholds failed {thresholds_failed}, "
        f"exceptions {len(exceptions)}:\n{output}"
    )
    assert run.leftover == [], run.leftover
    _check_outputs(prefix, report, json_prefix, total, entries, errors)
    print(
        f"\nrun took {took:.1f} s; lost worker noticed {noticed:.1f} s after the cut; {total['num_requests']} "
        f"requests, {total['num_failures']} failures; exit code {run.returncode}"
    )


def _csv_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _check_outputs(prefix: Path, report: Path, json_prefix: Path, total: dict, entries: dict, errors: dict) -> None:
    aggregated = ("", "Aggregated")

    # _stats.csv: a row per (method, name) and the total
    stats = _csv(f"{prefix}_stats.csv")
    assert set(stats) == set(entries) | {aggregated}, (sorted(stats), sorted(entries))
    for key, row in stats.items():
        want = total if key == aggregated else entries[key]
        _agrees(("_stats.csv", key), want, int(row["Request Count"]), int(row["Failure Count"]))
        if want.get("min_response_time") is not None:
            assert float(row["Max Response Time"]) == round(want["max_response_time"], 3), (key, row, want)
            assert float(row["Min Response Time"]) == round(want["min_response_time"], 3), (key, row, want)
            average = want["total_response_time"] / want["num_requests"]
            assert math.isclose(float(row["Average Response Time"]), average, rel_tol=1e-9, abs_tol=1e-6), (key, row)
            assert math.isclose(
                float(row["Average Content Size"]), want["total_content_length"] / want["num_requests"], rel_tol=1e-9
            ), (key, row)

    # _failures.csv: the occurrences per (method, name)
    failures: dict = defaultdict(int)
    for row in _csv_rows(Path(f"{prefix}_failures.csv")):
        failures[(row["Method"], row["Name"])] += int(row["Occurrences"])
    assert dict(failures) == errors

    # _hdr.csv: counts from the histograms the workers shipped
    hdr = _csv(f"{prefix}_hdr.csv")
    hdr_keys = {k for k, e in entries.items() if e["hdr_count"]} | {aggregated}
    assert set(hdr) == hdr_keys, (sorted(hdr), sorted(hdr_keys))
    for key, row in hdr.items():
        want = total if key == aggregated else entries[key]
        assert int(row["Count"]) == want["hdr_count"], (key, row, want)
        assert float(row["Max"]) == round(want["max_response_time"], 3), (key, row, want)

    # --json-file: Locust's serialized entries (locust-rs's, with the HDR buckets)
    out = {(e["method"], e["name"]): e for e in json.loads(Path(f"{json_prefix}.json").read_text())}
    assert set(out) == set(entries), (sorted(out), sorted(entries))
    for key, e in out.items():
        buckets = sum(int(n) for n in (e["response_times"] or {}).values())
        _agrees(("json", key), entries[key], e["num_requests"], e["num_failures"], buckets)
    json_total = {k: sum(e[k] for e in out.values()) for k in ("num_requests", "num_failures")}
    json_total["hdr_count"] = sum(sum(int(n) for n in (e["response_times"] or {}).values()) for e in out.values())
    _agrees(("json", "total"), total, json_total["num_requests"], json_total["num_failures"], json_total["hdr_count"])

    # the HTML report (Locust's) and its HDR page (locust-rs's)
    args = _html_args(report)
    html_rows = {(r["method"] or "", r["name"]): r for r in args["requests_statistics"]}
    assert set(html_rows) == set(entries) | {aggregated}, sorted(html_rows)
    for key, r in html_rows.items():
        _agrees(("html", key), total if key == aggregated else entries[key], r["num_requests"], r["num_failures"])
    page = _hdr_page_rows(report.with_name(report.stem + "_hdr.html"))
    assert set(page) == hdr_keys, sorted(page)
    for key, (count, fails) in page.items():
        want = total if key == aggregated else entries[key]
        assert (count, fails) == (want["hdr_count"], want["num_failures"]), (key, want)

    # the .hlog: its raw aggregate over all intervals
    hlog = Path(f"{prefix}.hlog")
    assert any(not line.startswith(("#", '"')) for line in hlog.read_text().splitlines()), (
        f"{hlog} holds only its header: opened again (truncated) after the run's intervals were written? (HdrRun's "
        "interval ticker can run once more after HdrRun.finish() closed the file at quitting, and reopens it)"
    )
    assert _hlog_total(hlog) == total["hdr_count"]
