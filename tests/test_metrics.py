"""The metrics core: HDR accuracy, merging, coordinated-omission correction, the CSV and ``.hlog`` outputs
(read back, also with the ``hdrhistogram`` package from PyPI), thresholds and distributed runs.

The locust runs reuse ``test_e2e_locust``'s bounded runner: each is a few seconds against the session's test server.
"""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)
from locust import constant_pacing

import csv
import json
import math
import os
import random
import re
import time
import urllib.request

import gevent
import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from locust_rs import _native
from locust_rs.stats import correction, hdr_outputs
from locust_rs.fasthttp import FastHttpSession
from locust_rs.stats.thresholds import Threshold
from tests.test_e2e_locust import (
    RUN_GRACE_S,
    finish_locust,
    free_port,
    http_get,
    processes,
    run_locust,
    start_locust,
    write_locustfile,
)


def exact(samples: list[int], q: float) -> int:
    """The exact percentile HdrHistogram reports: the smallest sample with at least q of all samples at or below it
    (numpy's ``percentile(..., method="inverted_cdf")``)."""
    s = sorted(samples)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def record(name: str, samples_us: list[int]) -> _native.HistogramSet:
    """The histograms of a statistics core that logged ``samples_us`` under ("TEST", name)."""
    core = _native.StatsCore()
    for v in samples_us:
        core.log_request("TEST", name, v / 1000.0, 0)
    return core.histograms()


def _session_stats():
    """A statistics core listening on a request hook of its own, for sessions built in a test."""
    from locust.event import EventHook

    from locust_rs.stats import RequestStats

    stats = RequestStats()
    hook = EventHook()
    hook.add_listener(stats.core.on_request)
    return stats, hook


def test_percentiles_within_a_tenth_of_a_percent_of_exact():
    rnd = random.Random(7)
    samples = [max(1, int(rnd.lognormvariate(9, 1.5))) for _ in range(50_000)]  # µs: ~8 ms median, long tail
    hs = record("accuracy", samples)
    assert hs.count("TEST", "accuracy") == len(samples)
    for q in (0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0):
        got = hs.value_at_quantile(q, "TEST", "accuracy") * 1000.0
        want = exact(samples, q)
        assert abs(got - want) <= want * 0.001, (q, got, want)
    s = hs.summary("TEST", "accuracy")
    assert s["min"] * 1000 == pytest.approx(min(samples), rel=1e-3)
    assert s["mean"] * 1000 == pytest.approx(sum(samples) / len(samples), rel=1e-3)


def test_merged_sets_equal_one_histogram_of_all_samples_through_the_wire_format():
    rnd = random.Random(11)
    a = [rnd.randint(1, 2_000_000) for _ in range(20_000)]
    b = [rnd.randint(100, 50_000) for _ in range(30_000)]
    part_a = _native.HistogramSet.decode(record("merge", a).encode())
    part_b = _native.HistogramSet.decode(record("merge", b).encode())
    whole = record("merge", a + b)
    merged = _native.HistogramSet()
    merged.merge(part_a)
    merged.merge(part_b)
    assert merged.summary("TEST", "merge") == whole.summary("TEST", "merge")
    assert merged.distribution("TEST", "merge") == whole.distribution("TEST", "merge")
    assert merged.encode_histogram("TEST", "merge") == whole.encode_histogram("TEST", "merge")


def test_bad_wire_data_is_a_value_error():
    for data in (b"", b"{", b'[{"t":"GET","n":"/","r":"!!","c":null}]', b'[{"t":"GET"}]'):
        with pytest.raises(ValueError):
            _native.HistogramSet.decode(data)


def test_expected_interval_comes_from_the_wait_time_or_the_class():
    from locust import between, constant_throughput

    class Paced:
        wait_time = constant_pacing(0.25)

    class Throughput:
        wait_time = constant_throughput(4)

    class Explicit:
        wait_time = between(0, 1)
        expected_interval = 0.5

    class Random:
        wait_time = between(0, 1)

    assert correction.expected_interval(Paced()) == 250.0
    assert correction.expected_interval(Throughput()) == 250.0
    assert correction.expected_interval(Explicit()) == 500.0
    assert correction.expected_interval(Random()) == 0.0
    assert correction.expected_interval(None) == 0.0


class _PacedUser:
    wait_time = constant_pacing(0.02)

    def context(self):
        return {}


def test_corrected_p99_shows_a_stall_that_raw_p99_hides(http_server):
    """A paced user (every 20 ms) whose server stalls once for 1 s: the raw histogram has one slow sample among
    ~200, the corrected one also the ~50 requests the user could not send meanwhile."""
    stats, hook = _session_stats()
    stats.core.correcting = True
    session = FastHttpSession(http_server, request_event=hook, user=_PacedUser())
    assert session._co_interval == 20.0
    deadline = time.monotonic() + 30
    for i in range(200):
        start = time.monotonic()
        path = "/slow?delay=1" if i == 20 else "/echo/ok"
        session.get(path, name="paced")
        gevent.sleep(max(0.0, 0.02 - (time.monotonic() - start)))
        assert time.monotonic() < deadline
    hs = stats.core.histograms()
    assert hs.count("GET", "paced") == 200
    raw_p99 = hs.value_at_quantile(0.99, "GET", "paced")
    corrected_p99 = hs.value_at_quantile(0.99, "GET", "paced", corrected=True)
    assert raw_p99 < 500, raw_p99
    assert corrected_p99 > 500, corrected_p99
    assert hs.summary("GET", "paced", corrected=True)["count"] > 240


def test_httpsession_requests_are_recorded_once_under_locusts_name(http_server):
    """Every event of the requests-style session is recorded once, by the statistics core's listener, under the name
    Locust's HttpSession gives it; failures are recorded too, as Locust counts their times."""
    from locust_rs.clients import HttpSession

    stats, hook = _session_stats()
    session = HttpSession(http_server, request_event=hook, user=None)
    for _ in range(5):
        session.get("/echo/ok")
    session.get("/echo/ok", params={"q": "1"})
    session.post("/echo/form", data={"a": "1"}, name="form")
    session.get("/status/500")
    hs = stats.core.histograms()
    assert stats.num_requests == 8 and stats.num_failures == 1
    assert hs.count("GET", "/echo/ok") == 5
    assert hs.count("GET", "/echo/ok?q=1") == 1
    assert hs.count("POST", "form") == 1
    assert hs.count("GET", "/status/500") == 1  # failures are recorded too, as Locust counts their times
    assert hs.count() == 8


def test_thresholds_parse_and_reject_typos():
    t = Threshold.parse("GET /api/chat/query:p99.9<3000ms")
    assert (t.name, t.metric, t.op, t.value) == ("GET /api/chat/query", "p99.9", "<", 3000.0)
    assert Threshold.parse("error_rate<0.05").name is None
    assert Threshold.parse("/a:b:p95_corrected>=1").name == "/a:b"
    for bad, says in (
        ("p95<<3", "'<<3' is not an operator"),
        ("p101<1", "percentile 101 in 'p101' is out of 0..100"),
        ("latency<3", "unknown metric 'latency'"),
        ("p95<", "'(nothing)' is not a number"),
        ("p(9x)<3", "'9x' in 'p(9x)' is not a number"),
        ("p95<3kg", "unknown unit 'kg'"),
        ("requests>3ms", "unit 'ms' does not apply to requests"),
        ("p95 3", "no comparison operator"),
    ):
        with pytest.raises(ValueError, match=re.escape(says)):
            Threshold.parse(bad)
    # k6's syntax and units
    k6 = Threshold.parse("GET /api:p(95)<3s")
    assert (k6.name, k6.metric, k6.value) == ("GET /api", "p95", 3000.0)
    assert Threshold.parse("error_rate<5%").value == 0.05
    assert Threshold.parse("p(99.9)_corrected<250us").metric == "p99.9_corrected"
    assert Threshold.parse("p(99.9)_corrected<250us").value == 0.25


# ------------------------------------------------------------------------------------------------------------------
# real locust runs

LOCUSTFILE = """
from locust import constant, constant_pacing, events, task, User

import time


class Api(FastHttpUser):
    wait_time = constant(0.01)

    @task(3)
    def ok(self):
        self.client.get("/echo/ok")

    @task
    def not_found(self):
        self.client.get("/status/404")

    @task
    def checked(self):
        with self.client.get("/json", name="checked", catch_response=True) as resp:
            resp.failure("rejected")


class Paced(FastHttpUser):
    # constant_pacing: an expected interval, so a corrected histogram too
    wait_time = constant_pacing(0.05)

    @task
    def paced(self):
        self.client.get("/echo/paced")


class Custom(User):
    # Events that do not come through a Rust client: recorded by the Python listener.
    wait_time = constant(0.05)

    @task
    def fire(self):
        events.request.fire(request_type="CUSTOM", name="fired", response_time=12.5, response_length=0,
                            exception=None, context={})
"""


def read_csv(path) -> dict[tuple[str, str], dict[str, str]]:
    with open(path, newline="") as f:
        return {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}


def hlog_totals(path) -> _native.HistogramSet:
    """Adds up every interval of an .hlog with our decoder, per tag."""
    hs = _native.HistogramSet()
    with open(path) as f:
        for line in f:
            if line.startswith(("#", '"')):
                continue
            tag, _, rest = line.partition(",") if line.startswith("Tag=") else ("", "", line)
            b64 = rest.rsplit(",", 1)[1] if tag else line.rsplit(",", 1)[1]
            tag = tag.removeprefix("Tag=")
            if not tag or tag == "corrected":
                continue
            corrected = tag.startswith("corrected:")
            t, _, n = tag.removeprefix("corrected:").partition(":")
            hs.add_encoded(t, n.replace("%20", " ").replace("%2C", ",").replace("%25", "%"), b64, corrected)
    return hs


@pytest.fixture(scope="module")
def hdr_run(tmp_path_factory, http_server):
    directory = tmp_path_factory.mktemp("hdr")
    locustfile = write_locustfile(directory, LOCUSTFILE)
    return run_locust(
        locustfile,
        http_server,
        3,
        "-u",
        "6",
        "-r",
        "6",
        "--threshold",
        "error_rate<0.99",
        "--html",
        str(directory / "report.html"),
    )


def test_one_table_of_percentiles_with_the_corrected_rows_then_the_files_and_the_verdict_last(hdr_run):
    out = hdr_run.output
    assert out.count("Response time percentiles") == 1, out
    table = out[out.index("Response time percentiles") :].split("\n\n")[0].splitlines()
    assert table[1].split()[:3] == ["Type", "Name", "Histogram"], table
    paced = [line.split() for line in table if "/echo/paced" in line]
    assert [row[2] for row in paced] == ["raw", "corrected"], table
    # blocks apart, in this order, the verdict last
    blocks = [
        out.index("\n\nResponse time percentiles"),
        out.index("\n\nFiles written:"),
        out.index("\n\nThresholds\n"),
    ]
    assert blocks == sorted(blocks), out[-3000:]
    assert out.rstrip().splitlines()[-1].startswith("Run failed (exit code 1): "), out[-3000:]


def test_the_notebook_api_shows_the_hdr_csv_figures_to_the_microsecond(hdr_run):
    from locust_rs import results

    run = results.load(hdr_run.csv_prefix)
    hdr = read_csv(f"{hdr_run.csv_prefix}_hdr.csv")
    quantiles = {"p50": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p99.9": 0.999, "p99.99": 0.9999}
    checked = 0
    for (request_type, name), row in hdr.items():
        for side in ("", "Corrected "):
            if not row[f"{side}p50"]:
                continue
            for column, q in quantiles.items():
                value = run.percentile(name, q, corrected=bool(side), request_type=request_type or None)
                assert f"{value:.3f}" == row[f"{side}{column}"], (request_type, name, side, column)
                checked += 1
    assert checked >= 5 * 7 + 2 * 7, checked  # five names and the aggregate, two of them corrected too
    # compare() shows the same figures: the corrected ones by default (this run has paced users), the raw ones too
    total = (table := results.compare(run, run))[table["Name"] == "Aggregated"].iloc[0]
    assert total["corrected"] and f"{total['p99_a']:.3f}" == hdr[("", "Aggregated")]["Corrected p99"]
    total = (table := results.compare(run, run, corrected=False))[table["Name"] == "Aggregated"].iloc[0]
    assert not total["corrected"] and f"{total['p99_a']:.3f}" == hdr[("", "Aggregated")]["p99"]
    # throughput from the exact counts: its requests add up to the history's
    history = run.history[run.history["Name"] == "Aggregated"]
    throughput = run.throughput()
    counted = (throughput["requests/s"] * throughput["time"].diff().fillna(throughput["time"].iloc[0])).sum()
    assert round(counted) == history["Total Request Count"].iloc[-1] - history["Total Request Count"].iloc[0]


def test_hdr_csv_counts_every_request_locust_counted_once(hdr_run):
    hdr_run.assert_exit(1)  # failures in the run: Locust's exit code on error
    stats = hdr_run.stats()
    hdr = read_csv(f"{hdr_run.csv_prefix}_hdr.csv")
    assert set(hdr) == {k for k in stats if k != ("", "Aggregated")} | {("", "Aggregated")}
    for key, row in stats.items():
        # Locust's CSV can miss the last second; ours is written after the final drain, so it is never behind.
        assert int(hdr[key]["Count"]) >= int(row["Request Count"]) > 0, key
    assert float(hdr[("CUSTOM", "fired")]["p50"]) == pytest.approx(12.5, rel=1e-3)
    assert hdr[("GET", "/echo/ok")]["Corrected p99"] == ""  # no expected interval: no correction
    paced = hdr[("GET", "/echo/paced")]
    assert int(paced["Corrected Count"]) >= int(paced["Count"]) > 0
    assert float(paced["Corrected p99"]) >= float(paced["p99"])


def test_hlog_reads_back_to_the_csv_figures(hdr_run):
    hdr = read_csv(f"{hdr_run.csv_prefix}_hdr.csv")
    back = hlog_totals(f"{hdr_run.csv_prefix}.hlog")
    for (t, n), row in hdr.items():
        if n == "Aggregated":
            continue
        s = back.summary(t, n)
        assert s["count"] == int(row["Count"]), (t, n)
        # The CSV has the exact max and clamps the percentiles to it; the .hlog has the histogram's buckets, whose
        # top is within HDR precision (0.1 %) of it.
        assert s["max"] == pytest.approx(float(row["Max"]), rel=1e-3, abs=1e-3)
        assert dict(s["percentiles"])[0.99] == pytest.approx(float(row["p99"]), rel=1e-3, abs=1e-3)


def test_hlog_is_readable_by_the_hdrhistogram_package(hdr_run, tmp_path):
    """The reference Python port reads the untagged (aggregate) series of our .hlog. It does not know tags (Java's
    tools do), so the tagged lines are left out of the copy it reads."""
    hdr = read_csv(f"{hdr_run.csv_prefix}_hdr.csv")
    untagged = tmp_path / "untagged.hlog"
    with open(f"{hdr_run.csv_prefix}.hlog") as src:
        untagged.write_text("".join(line for line in src if not line.startswith("Tag=")))
    total = HdrHistogram(1, 3_600_000_000, 3)
    reader = HistogramLogReader(str(untagged), total)
    intervals = 0
    while reader.add_next_interval_histogram() is not None:
        intervals += 1
    reader.close()
    assert intervals >= 2
    agg = hdr[("", "Aggregated")]
    assert total.get_total_count() == int(agg["Count"])
    assert total.get_max_value() / 1000 == pytest.approx(float(agg["Max"]), rel=1e-3)
    assert total.get_value_at_percentile(99) / 1000 == pytest.approx(float(agg["p99"]), rel=1e-3)


def test_thresholds_table_and_exit_code(tmp_path, http_server):
    locustfile = write_locustfile(
        tmp_path,
        LOCUSTFILE.replace("/status/404", "/echo/also-ok").replace('resp.failure("rejected")', "resp.success()"),
    )
    ok = run_locust(
        locustfile,
        http_server,
        2,
        "-u",
        "2",
        "-r",
        "2",
        "--threshold",
        "GET /echo/ok:p95<5000",
        "--threshold",
        "error_rate<0.5",
    )
    ok.assert_exit(0)
    assert "GET /echo/ok:p95<5000" in ok.output and "✗" not in ok.output
    assert "all 2 thresholds passed" in ok.output
    assert ok.output.rstrip().endswith("Run passed (exit code 0): all 2 thresholds passed"), ok.output[-2000:]
    bad = run_locust(locustfile, http_server, 2, "-u", "2", "-r", "2", "--threshold", "max<0.001")
    bad.assert_exit(99)  # k6's code for crossed thresholds
    assert "max<0.001" in bad.output and "✗" in bad.output and "1 of 1 thresholds failed" in bad.output
    # the verdict is the last thing printed, after Locust's tables, the exact table and the files
    tail = bad.output[bad.output.rindex("Response time percentiles (exact, HDR; ms)") :]
    assert tail.index("Files written:") < tail.index("Thresholds")
    assert bad.output.rstrip().endswith("Run failed (exit code 99): 1 of 1 threshold crossed"), bad.output[-2000:]
    started = time.monotonic()
    aborted = run_locust(
        locustfile,
        http_server,
        60,
        "-u",
        "2",
        "-r",
        "2",
        "--threshold",
        "max<0.001",
        "--threshold-abort",
        "--threshold-abort-interval",
        "0.5",
    )
    aborted.assert_exit(99)
    assert "threshold breached, aborting" in aborted.output
    assert time.monotonic() - started < 30


def test_a_master_with_two_workers_merges_the_histograms(tmp_path, http_server):
    locustfile = write_locustfile(tmp_path, LOCUSTFILE)
    # A free master port: the default 5557 may be taken by another locust run on the machine.
    port = str(free_port())
    run = run_locust(
        locustfile,
        http_server,
        4,
        "-u",
        "6",
        "-r",
        "6",
        "--processes",
        "2",
        "--master-bind-port",
        port,
        "--master-port",
        port,
    )
    run.assert_exit(1)  # the workload has failures
    stats = run.stats()
    hdr = read_csv(f"{run.csv_prefix}_hdr.csv")
    # One set of numbers: the CSV is rewritten at the end, after the workers' last reports, from the same entries.
    for key, row in stats.items():
        assert int(hdr[key]["Count"]) == int(row["Request Count"]) > 0, key


def test_html_companion_page_has_the_exact_table_and_the_chart(hdr_run):
    page = (hdr_run.csv_prefix.parent / "report_hdr.html").read_text()
    hdr = read_csv(f"{hdr_run.csv_prefix}_hdr.csv")
    assert "<svg" in page and "<polyline" in page and "99.99%" in page
    assert f"<td>{hdr[('GET', '/echo/ok')]['p99']}</td>" in page
    # the run's context, and the way to Locust's report and back
    assert "<b>Host</b> http://127.0.0.1" in page and "<b>Users</b> " in page and "<b>Duration</b>" in page
    assert '<a href="report.html">Locust' in page
    report = (hdr_run.csv_prefix.parent / "report.html").read_text()
    assert 'href="report_hdr.html"' in report
    # the legend sits right of the plot area, not over the curves
    legend_x = [float(x) for x in re.findall(r'<text x="([0-9.]+)" y="[0-9.]+">GET ', page)]
    assert legend_x and min(legend_x) > 900 - 60


def test_web_ui_tab_shows_exact_percentiles_live_and_resets_with_the_stats(tmp_path, http_server):
    locustfile = write_locustfile(tmp_path, LOCUSTFILE)
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    run_time_s = 6
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
        "4",
        "-r",
        "4",
        "-t",
        f"{run_time_s}s",
        "--csv",
        str(tmp_path / "run"),
    )

    locust_rows = []

    def ok_row():
        _, body = http_get(f"{web}/stats/requests")
        data = json.loads(body)
        locust_rows[:] = [r for r in data.get("stats", []) if r["name"] == "/echo/ok"]
        extended = {e["key"]: e["data"] for e in data.get("extended_stats", [])}
        return next((r for r in extended.get(hdr_outputs.WEB_TAB) or [] if r["name"] == "/echo/ok"), None)

    row = after_reset = page = csv_text = None
    try:
        deadline = time.monotonic() + run_time_s + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                row = ok_row()
            except OSError:
                time.sleep(0.2)
                continue
            # enough requests that a reset visibly drops the count
            # Locust memoizes its part of /stats/requests for a moment; ours is computed on each call
            if row and row["count"] >= 100 and locust_rows:
                exact_p99 = locust_rows[0]["response_time_percentile_0.99"]
                _, page = http_get(f"{web}/")
                _, csv_text = http_get(f"{web}/locust-rs/hdr.csv")
                urllib.request.urlopen(urllib.request.Request(f"{web}/stats/reset", method="POST"), timeout=5).close()
                after_reset = ok_row()
                break
            time.sleep(0.2)
    finally:
        run = finish_locust(proc, run_time_s + RUN_GRACE_S, tmp_path / "run")
    assert row, run.output
    assert row["histogram"] == "raw" and row["p50"] <= row["p99"] <= row["p9999"] <= row["max"]
    assert "failures" in row
    # Locust's own statistics rows carry the exact (sub-millisecond, not whole) percentiles too
    assert exact_p99 < 50 and exact_p99 != int(exact_p99), exact_p99
    assert b"Exact percentiles" in page
    assert csv_text.startswith(b"Type,Name,Count")
    assert after_reset is None or after_reset["count"] < row["count"], (row, after_reset)


def test_a_tick_after_finish_leaves_the_hlog_whole(tmp_path):
    # A ticker killed without blocking may run once more after finish(), in the same loop pass (seen once in ~15
    # distributed runs): it reopened the .hlog with "w" and left only its header.
    from types import SimpleNamespace

    from locust_rs.stats import RequestStats

    stats = RequestStats()
    options = SimpleNamespace(csv_prefix=str(tmp_path / "run"), html_file=None)
    run = hdr_outputs.HdrRun(SimpleNamespace(runner=None, parsed_options=options, host="h"), stats)
    run.start()
    for _ in range(100):
        stats.log_request("GET", "/x", 12.5, 10)
    run.finish()
    size = (tmp_path / "run.hlog").stat().st_size
    run.write_interval()  # what the late tick does
    assert (tmp_path / "run.hlog").stat().st_size == size
    assert run.hlog is None


def test_an_output_that_cannot_be_written_is_said_once_and_the_others_are_still_written(tmp_path, http_server):
    """Issue 32, defect 4: on a full disk the .hlog was left empty, _hdr.csv never written (the first failure stopped
    the outputs after it), a traceback was logged every second, "Files written" named the failed file and the run
    exited 0. Here the .hlog's path is a directory, so every write to it fails, as on a full disk."""
    locustfile = write_locustfile(tmp_path, LOCUSTFILE)
    (tmp_path / "run.hlog").mkdir()
    run = run_locust(
        locustfile,
        http_server,
        20,
        "-u",
        "3",
        "-r",
        "3",
        "--html",
        str(tmp_path / "report.html"),
        # the locustfile's failed requests would exit 1 too: here they pass, so the 1 is the missing output's
        "--exit-code-on-error",
        "0",
        stop_when="requests() >= 100",
    )
    assert run.stopped_on_condition, run.output[-3000:]
    run.assert_exit(1)
    hlog = tmp_path / "run.hlog"
    said = [line for line in run.output.splitlines() if "could not write" in line]
    assert len(said) == 1 and said[0].endswith(f"locust-rs could not write {hlog}: Is a directory"), said
    assert "Traceback" not in run.output, run.output[-3000:]
    # every other output is written, and agrees with Locust's figures
    hdr = read_csv(tmp_path / "run_hdr.csv")
    stats = run.stats()
    assert hdr[("", "Aggregated")]["Count"] == stats[("", "Aggregated")]["Request Count"]
    assert (tmp_path / "report_hdr.html").stat().st_size > 0
    files = run.output[run.output.index("Files written:") :].split("\n\n")[0]
    assert str(tmp_path / "run_hdr.csv") in files and "run.hlog" not in files, files
    last = run.output.rstrip().splitlines()[-1]
    assert f"Run failed (exit code 1): 1 output not written: {hlog} (Is a directory); " in last, last
    assert last.endswith("which --exit-code-on-error 0 lets pass"), last


def test_a_full_disk_under_locusts_own_csvs_is_said_and_fails_the_run(tmp_path, http_server):
    """Issue 32, defect 4, on a full disk for real: /dev/full fails every write with ENOSPC. Locust's own CSVs there
    (and the .hlog) gave a traceback at shutdown, from the final rewrite of the CSVs, and "Files written" named a
    truncated _stats.csv. Now each is said once, none is listed as written, and the run fails."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    locustfile = write_locustfile(tmp_path, LOCUSTFILE)
    full = [tmp_path / f"run{suffix}" for suffix in ("_stats.csv", "_stats_history.csv", ".hlog")]
    for path in full:
        path.symlink_to("/dev/full")
    # -t, not a stop condition: the condition waits for Locust's CSV writer, which a full disk ends
    run = run_locust(locustfile, http_server, 3, "-u", "3", "-r", "3", "--exit-code-on-error", "0")
    run.assert_exit(1)
    assert "Traceback" not in run.output, run.output[-3000:]
    for path in full:
        said = [line for line in run.output.splitlines() if f"could not write {path}:" in line]
        assert len(said) == 1 and said[0].endswith("No space left on device"), (path, said)
    files = run.output[run.output.index("Files written:") :].split("\n\n")[0]
    assert str(tmp_path / "run_hdr.csv") in files and not any(str(p) in files for p in full), files
    last = run.output.rstrip().splitlines()[-1]
    assert last.startswith("Run failed (exit code 1): ") and f"{full[0]} (No space left on device)" in last, last


IN_FLIGHT_LOCUSTFILE = """
from locust import constant, events, task

SEEN = [0]


@events.request.add_listener
def _count(**_kw):
    SEEN[0] += 1
    if SEEN[0] == 300:
        open("running", "w").close()


class Slow(FastHttpUser):
    wait_time = constant(0)

    @task
    def slow(self):
        self.client.get("/slow?delay=0.05", name="slow")
"""


ENDINGS = {
    "SIGINT": ("SIGINT", []),
    "SIGTERM": ("SIGTERM", []),
    "run-time": (None, ["-t", "6s"]),
    "stop-timeout": (None, ["-t", "6s", "--stop-timeout", "3"]),
    "processes, SIGTERM": ("SIGTERM", ["processes"]),
    "processes, run-time": (None, ["-t", "8s", "processes"]),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_every_output_counts_the_requests_in_flight_at_the_end(tmp_path, http_server, ending):
    """Issue 32, defect 3: after SIGINT or SIGTERM with requests in flight, _hdr.csv and the .hlog counted 8 to 49
    requests fewer than _stats.csv: Locust fires quitting, where they are written, before it quits the runner, and
    the requests in flight ended in between. Every ending counts the same in every output: a signal, --run-time, with
    --stop-timeout, and a master with its workers (--processes)."""
    import signal

    signal_name, extra = ENDINGS[ending]
    args = []
    for a in extra:
        args += processes(2) if a == "processes" else [a]
    if "-t" not in args:
        args += ["-t", "60s"]
    locustfile = write_locustfile(tmp_path, IN_FLIGHT_LOCUSTFILE)
    prefix = tmp_path / "run"
    proc = start_locust(
        locustfile, "--headless", "-H", http_server, "-u", "30", "-r", "30", "--csv", str(prefix), "--only-summary",
        *args,
    )  # fmt: skip
    try:
        if signal_name:
            deadline = time.monotonic() + 30
            while not (tmp_path / "running").exists():  # 300 requests in, 30 in flight at any time
                log = tmp_path / "locust.log"
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.05)
            proc.send_signal(getattr(signal, signal_name))
    finally:
        run = finish_locust(proc, 90, prefix)
    counted = int(run.stats()[("GET", "slow")]["Request Count"])
    assert counted >= 300, run.output[-3000:]
    in_hdr_csv = int(read_csv(f"{prefix}_hdr.csv")[("GET", "slow")]["Count"])
    in_hlog = hlog_totals(f"{prefix}.hlog").count("GET", "slow")
    assert (in_hdr_csv, in_hlog) == (counted, counted), run.output[-3000:]


def test_the_hlog_interval_visits_only_the_names_used_in_it(tmp_path):
    """Issue 32, defect 8: with tens of thousands of names, the interval work and the end-of-run copies scaled with
    every name the run had seen. Each interval now visits the names used in it, and the end of the run reads each
    entry in turn for every output."""
    from types import SimpleNamespace

    from locust_rs.stats import RequestStats

    stats = RequestStats()
    options = SimpleNamespace(csv_prefix=str(tmp_path / "run"), html_file=str(tmp_path / "run.html"))
    run = hdr_outputs.HdrRun(SimpleNamespace(runner=None, parsed_options=options, host="h"), stats)
    (tmp_path / "run.html").write_text("<html><body>Locust's report</body></html>")
    names = 5_000
    for i in range(names):
        stats.log_request("GET", f"/n/{i}", 1.0 + i % 50, 10)
    assert stats.core.pending_intervals == names
    run.write_interval()
    assert stats.core.pending_intervals == 0
    for i in (7, 7, 4_000):
        stats.log_request("GET", f"/n/{i}", 2.0, 10)
    assert stats.core.pending_intervals == 2
    run.write_interval()
    run.finish()
    lines = (tmp_path / "run.hlog").read_text().splitlines()
    # The header, then the first interval (the aggregate and every name), then the second: the aggregate and the two.
    data = [line for line in lines if not line.startswith(("#", '"'))]
    assert len(data) == (1 + names) + (1 + 2)
    assert [line.split(",")[0] for line in data[-2:]] == ["Tag=GET:/n/7", "Tag=GET:/n/4000"]
    totals = hlog_totals(tmp_path / "run.hlog")
    assert totals.count("GET", "/n/7") == 3 and totals.count() == names + 3
    rows = read_csv(tmp_path / "run_hdr.csv")
    assert len(rows) == names + 1 and rows[("GET", "/n/7")]["Count"] == "3"
    page = (tmp_path / "run_hdr.html").read_text()
    assert page.count("<tr><td>GET</td>") == names
    report = (tmp_path / "run.html").read_text()
    assert report.startswith("<html><body>Locust's report") and report.endswith("</body></html>")
    assert "run_hdr.html" in report
