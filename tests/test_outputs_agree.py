"""Every output of a run shows the same figures: Locust's console table, ``_stats.csv``, ``--json-file``, the HTML
report, and locust-rs's ``_hdr.csv``, locally and with ``--processes 2``. One route takes about 123 ms, where Locust's
own bucket (120) and the exact value differ. The locustfile has no shutdown delay: ``_stats.csv`` must be complete
without one."""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)

import csv
import json
import re
import textwrap

import pytest

from tests.test_e2e_locust import RUN_GRACE_S, finish_locust, processes, start_locust

LOCUSTFILE = """
from locust import constant, events, task

from locust_rs import FastHttpUser


class Mixed(FastHttpUser):
    wait_time = constant(0.005)

    @task(4)
    def ok(self):
        self.client.get("/echo/ok")

    @task
    def slow(self):
        self.client.get("/slow?delay=0.123", name="slow")

    @task
    def failing(self):
        self.client.get("/status/500")

    @task
    def custom(self):
        events.request.fire(
            request_type="CUSTOM", name="fired", response_time=0.25, response_length=3, exception=None, context={}
        )
"""

PERCENTILE_COLUMNS = ("50%", "95%", "99%", "100%")


def _csv(path) -> dict:
    with open(path, newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


def _html_args(path) -> dict:
    text = path.read_text()
    m = re.search(r"window\.templateArgs = (\{.*?\})\n", text, re.S)
    assert m, "no templateArgs in the HTML report"
    return json.loads(m.group(1))


def _run(tmp_path, *extra: str):
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(textwrap.dedent(LOCUSTFILE))
    prefix = tmp_path / "run"
    proc = start_locust(
        locustfile,
        "--headless",
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "4s",
        "--csv",
        str(prefix),
        "--html",
        str(tmp_path / "report.html"),
        *extra,
    )
    return finish_locust(proc, 4 + RUN_GRACE_S, prefix)


@pytest.fixture(scope="module", params=["local", "processes"])
def run(request, tmp_path_factory, http_server):
    tmp_path = tmp_path_factory.mktemp(request.param)
    extra = ["--host", http_server, "--threshold", "slow:p(95)<10s", "--threshold", "p(99)<10s"]
    if request.param == "processes":
        extra += processes(2)
    else:
        extra += ["--json-file", str(tmp_path / "out")]
    result = _run(tmp_path, *extra)
    assert result.returncode == 1, result.output  # the 500s are failures
    return request.param, tmp_path, result


def test_csv_html_json_and_hdr_agree(run):
    mode, tmp_path, result = run
    stats = _csv(tmp_path / "run_stats.csv")
    hdr = _csv(tmp_path / "run_hdr.csv")
    report = _html_args(tmp_path / "report.html")
    html_rows = {(r["method"], r["name"]): r for r in report["requests_statistics"]}
    html_pct = {(r["method"], r["name"]): r for r in report["response_time_statistics"]}
    json_rows = None
    if mode == "local":
        json_rows = {(r["method"], r["name"]): r for r in json.loads((tmp_path / "out.json").read_text())}

    assert set(stats) == set(hdr), (stats.keys(), hdr.keys())
    total = stats[("", "Aggregated")]
    assert int(total["Request Count"]) == sum(int(r["Request Count"]) for k, r in stats.items() if k[1] != "Aggregated")
    assert int(total["Request Count"]) > 100
    for key, row in stats.items():
        label = key if key[0] else ("", "Aggregated")
        n, fails = int(row["Request Count"]), int(row["Failure Count"])
        assert n == int(hdr[key]["Count"]), key
        h = html_rows[label]
        assert (h["num_requests"], h["num_failures"]) == (n, fails), key
        for col, hcol in (
            ("Min Response Time", "Min"),
            ("Max Response Time", "Max"),
            ("Average Response Time", "Mean"),
        ):
            assert f"{float(row[col]):.3f}" == hdr[key][hcol], (key, col)
        assert float(row["Min Response Time"]) == h["min_response_time"]
        assert float(row["Max Response Time"]) == h["max_response_time"]
        assert float(row["Median Response Time"]) == h["median_response_time"] == float(row["50%"])
        assert float(row["95%"]) == h["response_time_percentile_0.95"] == float(html_pct[label]["0.95"])
        assert float(row["99%"]) == h["response_time_percentile_0.99"] == float(hdr[key]["p99"])
        assert float(row["50%"]) == float(hdr[key]["p50"])
        assert float(row["100%"]) == float(row["Max Response Time"])
        if json_rows is not None and key[1] != "Aggregated":
            j = json_rows[key]
            assert (j["num_requests"], j["num_failures"]) == (n, fails), key
            assert round(j["max_response_time"], 3) == float(row["Max Response Time"])
    # the ~123 ms route: exact, where Locust's bucket would say 120
    slow = stats[("GET", "slow")]
    assert 123.0 <= float(slow["50%"]) < 135.0, slow
    assert int(stats[("GET", "/status/500")]["Failure Count"]) == int(stats[("GET", "/status/500")]["Request Count"])
    assert float(stats[("CUSTOM", "fired")]["Max Response Time"]) == 0.25


def test_the_threshold_verdict_shows_the_same_percentiles(run):
    _mode, tmp_path, result = run
    stats = _csv(tmp_path / "run_stats.csv")
    verdict = result.output[result.output.rindex("Thresholds") :]
    assert "all 2 thresholds passed" in verdict
    assert f"{float(stats[('GET', 'slow')]['95%']):.3f} ms" in verdict
    assert f"{float(stats[('', 'Aggregated')]['99%']):.3f} ms" in verdict


def test_console_tables_show_the_same_figures(run):
    mode, tmp_path, result = run
    if mode == "local":
        pytest.skip("Locust prints no end-of-run tables with --json-file")
    stats = _csv(tmp_path / "run_stats.csv")
    out = result.output
    start = out.rindex("Aggregated", 0, out.index("Response time percentiles (exact, HDR; ms)"))
    line = out[start:].splitlines()[0].split()
    total = stats[("", "Aggregated")]
    assert int(line[1]) == int(total["Request Count"])
    assert line[2].startswith(total["Failure Count"] + "(")
    assert line[4:8] == [
        f"{float(total[c]):.3f}"
        for c in ("Average Response Time", "Min Response Time", "Max Response Time", "Median Response Time")
    ]
    # the exact tables print last, after Locust's
    assert out.rindex("Response time percentiles (exact, HDR; ms)") > start
