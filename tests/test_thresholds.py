"""Thresholds as k6 users write them, the exit codes a CI reads, and the last line that says why.

The end-to-end exit codes of crossed thresholds are in ``test_metrics.py`` (``test_thresholds_table_and_exit_code``);
these are the parts a person types wrong: k6's metric names, rates, request names, and where options come from.
"""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest
from locust.argument_parser import parse_options
from locust.env import Environment

from locust_rs.stats import thresholds, verdict
from locust_rs.stats.thresholds import Threshold
from test_e2e_locust import locust_env, run_locust, write_locustfile


@pytest.mark.parametrize(
    ("k6", "name", "metric", "value"),
    [
        ("http_req_duration:p(95)<500", None, "p95", 500.0),
        ("http_req_duration: p(99.9) < 1s", None, "p99.9", 1000.0),
        ("http_req_duration:avg<200", None, "avg", 200.0),
        ("http_req_duration{name:/api/items}:med<20", "/api/items", "med", 20.0),
        ("http_req_duration{name:/api/items,method:get}:p(95)<500", "GET /api/items", "p95", 500.0),
        ("http_req_failed:rate<0.01", None, "error_rate", 0.01),
        ("http_req_failed{name:/login}:rate<=0.1", "/login", "error_rate", 0.1),
        ("http_reqs:count>1000", None, "requests", 1000.0),
        ("http_reqs{name:/x}:rate>5", "/x", "rps", 5.0),
        ("iterations:count>10", None, "iterations", 10.0),
        ("iterations{scenario:Api}:rate>=9", "Api", "iteration_rate", 9.0),
        ("dropped_iterations:count<1", None, "dropped_iterations", 1.0),
    ],
)
def test_k6_metric_names_mean_what_they_mean_in_k6(k6, name, metric, value):
    t = Threshold.parse(k6)
    assert (t.name, t.metric, t.value) == (name, metric, value)


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        # 500 % would always pass
        ("error_rate<5", "a rate is a fraction from 0 to 1; for 5 % write 5%, or 0.05 as a fraction"),
        ("http_req_failed:rate<5", "a rate is a fraction from 0 to 1; for 5 % write 5%, or 0.05 as a fraction"),
        ("http_req_duration:count<5", "k6's http_req_duration has no 'count' here; use p(NN), avg, min, max, med"),
        ("http_req_failed:p(95)<5", "k6's http_req_failed has no 'p(95)' here; use rate"),
        ("dropped_iterations:rate<1", "k6's dropped_iterations has no 'rate' here; use count"),
        ("http_req_duration{method:GET}:p(95)<5", "{method:...} needs a {name:...} beside it"),
        ("http_req_duration{status:200}:p(95)<5", "tag 'status:200' is not one of name:..., method:..., scenario:..."),
        ("iterations{name:/x}:count>1", "iterations takes only a {scenario:...} tag"),
    ],
)
def test_a_k6_threshold_that_cannot_mean_what_it_says_is_refused(expression, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        Threshold.parse(expression)


def test_a_name_the_run_did_not_see_gets_a_did_you_mean():
    env = Environment()
    env.stats.log_request("POST", "/api/chat/query", 12.0, 10)
    env.stats.log_request("GET", "/health", 1.0, 10)
    results = thresholds.evaluate(
        env, [Threshold.parse("GET /api/chat/query:p(95)<500"), Threshold.parse("/nothing/like/it:p(95)<500")]
    )
    assert [(r.observed, r.passed, r.did_you_mean) for r in results] == [
        (None, False, "POST /api/chat/query"),
        (None, False, ""),
    ]
    assert "no data (did you mean 'POST /api/chat/query'?)" in thresholds.report(results)


@pytest.fixture
def registry():
    thresholds.clear()
    yield thresholds
    thresholds.clear()


@pytest.mark.parametrize("ours", [True, False], ids=["locust-rs stats", "Locust's stats"])
def test_a_group_of_names_is_one_threshold_over_their_requests_merged(registry, ours):
    from locust_rs import stats as rs_stats

    env = Environment()
    if ours:
        env.stats = rs_stats.RequestStats()
    alone = rs_stats.RequestStats() if ours else type(env.stats)()
    for i in range(1, 101):
        name, ms = ("/login", float(i)) if i % 4 else ("/refresh", 1000.0 + i)
        env.stats.log_request("POST", name, ms, 0)
        alone.log_request("POST", "all", ms, 0)
    env.stats.log_request("GET", "/other", 5000.0, 0)
    env.stats.log_error("POST", "/refresh", "boom")
    group = registry.add("p(95)<1s", names=["POST /login", "/refresh"], label="Sign-in")
    rate = registry.add("error_rate<1%", names=("/refresh",))
    typo = registry.add("max<1s", names=["/logn"], label="Typo")
    sign_in, errors, missing = thresholds.evaluate(env)
    assert (sign_in.target, sign_in.count, sign_in.passed) == ("Sign-in", 100, False)
    # the merged figure is the one of all these requests together, exact, and not the other name's
    assert sign_in.observed == alone.get("all", "POST").get_response_time_percentile(0.95) > 1000
    assert (errors.target, errors.observed, errors.passed) == ("/refresh", 1 / 25, False)
    assert (missing.observed, missing.passed, missing.did_you_mean) == (None, False, "POST /login")
    assert group.names == ("POST /login", "/refresh") and typo.label == "Typo"
    assert rate.label == "/refresh"


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"expression": "GET /x:p(95)<1", "names": ["/y"]}, "it names 'GET /x' already"),
        ({"expression": "p(95)<1", "names": []}, "names must be one or more request names"),
        ({"expression": "p(95)<1", "names": ["", "/x"]}, "names must be one or more request names"),
    ],
)
def test_a_group_that_cannot_mean_one_thing_is_refused(registry, kwargs, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        registry.add(**kwargs)
    assert thresholds.active(Environment()) == []


def test_a_threshold_skipped_in_a_run_is_listed_not_checked_there_only(registry):
    env, other = Environment(), Environment()
    for e in (env, other):
        e.stats.log_request("GET", "/health", 3.0, 0)
    kept = registry.add("p(95)<500", names=["/health"], label="Health")
    upload = registry.add("p(95)<10s", names=["POST /upload"], label="Upload")
    thresholds.skip(env, upload, "none of its tasks ran")
    assert thresholds.active(env) == [kept] and thresholds.active(other) == [kept, upload]
    text = thresholds.report(thresholds.evaluate(env), env)
    assert re.search(r"^- +p\(95\)<10s +Upload +not checked: none of its tasks ran +< 10000\.000 ms$", text, re.M), text
    assert text.endswith("all 1 threshold passed; 1 not checked")
    assert [(t.label, why) for t, why in thresholds.skipped(env)] == [("Upload", "none of its tasks ran")]
    assert thresholds.skipped(other) == []
    thresholds.unskip(env, upload)  # checked again in this run
    assert thresholds.skipped(env) == [] and thresholds.active(env) == [kept, upload]
    thresholds.remove(upload)  # taken back for every run
    assert thresholds.active(other) == [kept]


def test_the_verdict_is_taken_once_per_run_by_whoever_asks_first(registry):
    env = Environment()
    env.stats.log_request("GET", "/", 3.0, 0)
    registry.add("max<10")
    first = thresholds.finish(env)
    env.stats.log_request("GET", "/", 30.0, 0)  # a request that ended after the verdict was taken
    assert thresholds.finish(env) == first == thresholds.results(env) and first[0].passed
    assert env.process_exit_code is None


def test_two_runs_in_one_process_keep_their_own_verdicts(registry):
    """The thresholds' run state lives on each run's environment: two runs one after the other, with different
    options, in one process, get independent verdicts, exit codes, skips and last lines."""
    from locust_rs.stats import verdict

    registry.add("max<10")
    slow = Environment(parsed_options=parse_options(["--threshold", "p(50)<1"]))
    fast = Environment(parsed_options=parse_options([]))
    slow.stats.log_request("GET", "/", 30.0, 0)
    first = thresholds.finish(slow)
    fast.stats.log_request("GET", "/", 3.0, 0)
    second = thresholds.finish(fast)
    assert [r.passed for r in first] == [False, False] and slow.process_exit_code == thresholds.EXIT_CODE
    assert [r.passed for r in second] == [True] and fast.process_exit_code is None
    assert thresholds.results(slow) == first and thresholds.results(fast) == second
    assert thresholds.crossed(slow) == (2, 2) and thresholds.crossed(fast) == (0, 1)
    assert "2 of 2 thresholds crossed" in verdict.line(slow, 99)
    assert verdict.line(fast, 0).startswith("Run passed (exit code 0): all 1 threshold passed")


def _environment(requests: int, failures: int, exceptions: int = 0, exit_code_on_error: int = 1):
    total = SimpleNamespace(num_requests=requests, num_failures=failures)
    runner = SimpleNamespace(
        stats=SimpleNamespace(total=total),
        exceptions={i: {"count": 1} for i in range(exceptions)},
        errors={"e": 1} if failures else {},
    )
    return SimpleNamespace(runner=runner, parsed_options=SimpleNamespace(exit_code_on_error=exit_code_on_error))


@pytest.mark.parametrize(
    ("crossed", "env", "code", "line"),
    [
        ((0, 0), _environment(100, 0), 0, "Run passed (exit code 0)"),
        ((0, 2), _environment(100, 0), 0, "Run passed (exit code 0): all 2 thresholds passed"),
        ((0, 0), _environment(200, 30), 1, "Run failed (exit code 1): 30 of 200 requests failed (15.00 %)"),
        (
            (0, 1),
            _environment(200, 30),
            1,
            "Run failed (exit code 1): 30 of 200 requests failed (15.00 %)",
        ),
        (
            (1, 2),
            _environment(200, 30, exceptions=2),
            99,
            "Run failed (exit code 99): 1 of 2 thresholds crossed; 30 of 200 requests failed (15.00 %) and 2 task "
            "exceptions, which alone would exit 1 (--exit-code-on-error)",
        ),
        (
            (0, 1),
            _environment(200, 30, exit_code_on_error=0),
            0,
            "Run passed (exit code 0): all 1 threshold passed; 30 of 200 requests failed (15.00 %), which "
            "--exit-code-on-error 0 lets pass",
        ),
        ((0, 0), _environment(0, 0), 2, "Run failed (exit code 2): an error stopped the run (see the messages above)"),
    ],
)
def test_the_last_line_says_why(monkeypatch, crossed, env, code, line):
    monkeypatch.setattr(thresholds, "crossed", lambda _environment: crossed)
    assert verdict.line(env, code) == line


def test_every_option_comes_from_the_environment_and_the_config_file(tmp_path, monkeypatch):
    for name in ("THRESHOLD", "MAX_BODY_SIZE", "THRESHOLD_ABORT", "HDR_EXPECTED_INTERVAL", "NO_HDR_METRICS"):
        monkeypatch.delenv(f"LOCUST_{name}", raising=False)
    monkeypatch.setenv("LOCUST_THRESHOLD", "[p(95)<500, http_req_failed:rate<0.01]")
    monkeypatch.setenv("LOCUST_MAX_BODY_SIZE", "1k")
    monkeypatch.setenv("LOCUST_THRESHOLD_ABORT", "true")
    monkeypatch.setenv("LOCUST_HDR_EXPECTED_INTERVAL", "0.5")
    monkeypatch.setenv("LOCUST_NO_HDR_METRICS", "true")
    opts = parse_options(["-f", "locustfile.py"])
    assert opts.threshold == ["p(95)<500", "http_req_failed:rate<0.01"]
    assert (opts.max_body_size, opts.threshold_abort, opts.hdr_expected_interval) == ("1k", True, 0.5)
    assert opts.no_hdr_metrics is True
    for name in ("THRESHOLD", "MAX_BODY_SIZE", "THRESHOLD_ABORT", "HDR_EXPECTED_INTERVAL", "NO_HDR_METRICS"):
        monkeypatch.delenv(f"LOCUST_{name}")
    conf = tmp_path / "locust.conf"
    conf.write_text("threshold = [error_rate<1%]\nmax-body-size = 2k\nlocust-stats = true\n")
    opts = parse_options(["-f", "locustfile.py", "--config", str(conf)])
    assert (opts.threshold, opts.max_body_size, opts.locust_stats) == (["error_rate<1%"], "2k", True)


FAILING = """
from locust import constant, task


class Half(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def hit(self):
        self.client.get("/echo/ok", name="ok")
        self.client.get("/status/404", name="missing")
"""


def test_crossed_thresholds_win_over_failed_requests_and_the_last_line_names_both(tmp_path, http_server):
    run = run_locust(
        write_locustfile(tmp_path, FAILING), http_server, 2, "-u", "1", "--threshold", "http_req_duration:max<0.001"
    )
    run.assert_exit(99)
    # a closed-model run's one table of percentiles has no corrected rows, so no Histogram column
    table = run.output[run.output.index("Response time percentiles") :].split("\n\n")[0]
    assert run.output.count("Response time percentiles") == 1 and "Histogram" not in table and "raw" not in table
    last = run.output.rstrip().splitlines()[-1]
    m = re.fullmatch(
        r"Run failed \(exit code 99\): 1 of 1 threshold crossed; (\d+) of (\d+) requests failed \(([\d.]+) %\), which "
        r"alone would exit 1 \(--exit-code-on-error\)",
        last.split(": ", 1)[1] if last.startswith("[") else last,
    )
    assert m, run.output[-2000:]
    # every other request fails; the run may stop between the two of a task, so one more may have succeeded
    failed, total = int(m[1]), int(m[2])
    assert failed in (total // 2, (total - 1) // 2) and failed > 0, m[0]
    assert m[3] == f"{100 * failed / total:.2f}", m[0]


def test_the_locust_rs_command_exits_2_for_a_locustfile_that_does_not_import(tmp_path):
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    for locustfile in ("broken.py", "missing.py"):
        proc = subprocess.run(
            [sys.executable, "-m", "locust_rs.cli", "-f", locustfile, "--headless", "-t", "1s"],
            cwd=tmp_path, env=locust_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 2, (locustfile, proc.stdout, proc.stderr)
    assert "No module named 'no_such_module_here'" in proc.stderr or locustfile == "missing.py"


SLOW = """
from locust import constant, task


class Slow(FastHttpUser):
    wait_time = constant(0)

    @task
    def slow(self):
        self.client.get("/slow?delay=%s", name="/slow")
"""


@pytest.mark.parametrize(
    ("expression", "relative", "value"),
    [
        ("p(95)<+10%", "ratio", 0.10),
        ("GET /x:p(99.9)<=+20ms", "delta", 20.0),
        ("p(95)_corrected<+0.5s", "delta", 500.0),
        ("avg<-5%", "ratio", -0.05),
        ("med<+3", "delta", 3.0),
        ("error_rate<+1%", "delta", 0.01),
        ("http_req_failed:rate<+0.02", "delta", 0.02),
        ("http_req_duration:p(95)<+10%", "ratio", 0.10),
        ("rps>=100", "", 100.0),
    ],
)
def test_a_signed_value_is_relative_to_the_baseline(expression, relative, value):
    t = Threshold.parse(expression)
    assert (t.relative, t.value) == (relative, pytest.approx(value))


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("rps>-10%", "rps cannot be relative to a baseline"),
        ("requests>+5", "requests cannot be relative"),
        ("p(95)==+10%", "takes < <= > or >=, not =="),
        ("error_rate<+1ms", "unit 'ms' does not apply to error_rate"),
        ("p(95)<+10parsecs", "unknown unit 'parsecs'"),
        ("start_lag:p(99)<+10%", "the start lag cannot be relative"),
    ],
)
def test_relative_thresholds_that_cannot_be_judged_are_refused(expression, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        Threshold.parse(expression)


def test_relative_thresholds_against_a_baseline_run(tmp_path, http_server):
    """A baseline run at 20 ms, then runs against it: 40 ms crosses ``p(50)<+10%`` and exits 99; 20 ms passes a
    limit that allows a change and crosses one that demands one; a relative threshold without --baseline, or a
    --baseline that names no run, is a usage error before any user runs."""
    dirs = {name: tmp_path / name for name in ("base", "slower", "same", "usage")}
    for d in dirs.values():
        d.mkdir()
    base = run_locust(write_locustfile(dirs["base"], SLOW % 0.02), http_server, 3, "-u", "4")
    base.assert_exit(0)
    # the run says which clock ended its response times (docs/metrics.md, "Which clock")
    assert re.search(r"Response times end at the kernel's receive stamps of their last bytes \([\d,]+ responses\)",
                     base.output), base.output[-3000:]  # fmt: skip
    slower = run_locust(
        write_locustfile(dirs["slower"], SLOW % 0.04), http_server, 3, "-u", "4",
        "--baseline", str(base.csv_prefix), "--threshold", "p(50)<+10%", "--threshold", "error_rate<+1%",
        "--threshold", "/slow:p(99)<10s", "--threshold-junit", str(dirs["slower"] / "thresholds.xml"),
    )  # fmt: skip
    slower.assert_exit(99)
    # the verdict as JUnit: one test case per threshold and target, the crossed one failed
    suite = ET.parse(dirs["slower"] / "thresholds.xml").getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"Aggregated: p(50)<+10%", "Aggregated: error_rate<+1%", "GET /slow: /slow:p(99)<10s"}
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")
    assert "limit < baseline +10 % = " in cases["Aggregated: p(50)<+10%"].find("failure").get("message")
    assert cases["GET /slow: /slow:p(99)<10s"].find("failure") is None
    assert str(dirs["slower"] / "thresholds.xml") in slower.output.split("Files written:")[1]
    verdict = slower.output[slower.output.index("Thresholds\n") :]
    row = next(line for line in verdict.splitlines() if line.startswith("✗"))
    assert "p(50)<+10%" in row and "< baseline +10 % = " in row and "(baseline " in row, verdict
    assert re.search(r"\(baseline [\d.]+ ms: \+\d+\.\d %, interval \+[\d.]+ % … \+[\d.]+ %\)", row), row
    assert any(line.startswith("✓") and "error_rate<+1%" in line for line in verdict.splitlines()), verdict
    same = run_locust(
        write_locustfile(dirs["same"], SLOW % 0.02), http_server, 3, "-u", "4",
        "--baseline", str(dirs["base"]), "--threshold", "p(50)<+200%", "--threshold", "p(50)<-50%",
    )  # fmt: skip
    same.assert_exit(99)
    verdict = same.output[same.output.index("Thresholds\n") :]
    assert re.search(r"^✓\s+p\(50\)<\+200%", verdict, re.M) and re.search(r"^✗\s+p\(50\)<-50%", verdict, re.M), verdict
    lf = write_locustfile(dirs["usage"], SLOW % 0.02)
    nobase = run_locust(lf, http_server, 3, "-u", "1", "--threshold", "p(95)<+10%")
    nobase.assert_exit(2)
    assert "give one with --baseline PREFIX" in nobase.output
    missing = run_locust(lf, http_server, 3, "-u", "1", "--threshold", "p(95)<+10%", "--baseline", str(tmp_path / "x"))
    missing.assert_exit(2)
    assert "--baseline: " in missing.output and "no run's results there" in missing.output
