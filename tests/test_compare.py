"""``locust-rs compare`` and ``locust_rs.compare``: verdicts on runs whose truth is known (seeded samples written as a
run writes them: ``.hlog`` by the run's own writer, ``_stats.csv``), the markdown and JUnit outputs, the command's
exit codes. ``benchmarks/compare_check.py`` does the same with real runs against a target whose delay is set."""

from __future__ import annotations

import csv
import random
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from locust_rs import _native
from locust_rs.compare import Options, compare, formats, load
from locust_rs.compare.command import main as compare_main
from locust_rs.compare.runs import RunNotFound, find_prefix
from locust_rs.stats.hdr_outputs import HlogWriter


def _samples(seed: int, n: int, scale: float = 1.0, median_ms: float = 10.0) -> list[float]:
    """Log-normal response times around ``median_ms`` (a right tail, as real ones have), times ``scale``."""
    rng = random.Random(seed)
    return [scale * median_ms * rng.lognormvariate(0.0, 0.25) for _ in range(n)]


def write_run(prefix: Path, samples: dict[tuple[str, str], list[float]], failures=None, interval_ms: float = 0.0):
    """A run's ``.hlog`` (through the run's own writer) and ``_stats.csv`` for these response times; ``failures``
    per key are recorded on top of the samples. ``interval_ms`` > 0 gives every key a corrected histogram."""
    failures = failures or {}
    core = _native.StatsCore(use_response_times_cache=False)
    core.correcting = interval_ms > 0
    core.track_intervals()
    for (t, n), values in samples.items():
        for v in values:
            core.record(t, n, v, 0, None, interval_ms)
        for _ in range(failures.get((t, n), 0)):
            core.record(t, n, values[0], 0, RuntimeError("boom"), interval_ms)
    start = time.time()
    writer = HlogWriter(f"{prefix}.hlog", start)
    writer.write(core.take_interval_log(), start, start + 1)
    writer.close()
    with open(f"{prefix}_stats.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Type", "Name", "Request Count", "Failure Count"])
        total = fails = 0
        for t, n in samples:
            e = core.entry(n, t)
            w.writerow([t, n, e.num_requests, e.num_failures])
            total, fails = total + e.num_requests, fails + e.num_failures
        w.writerow(["", "Aggregated", total, fails])
    return prefix


def _run(tmp_path: Path, label: str, seed: int, scale: float = 1.0, n: int = 5000, **kw) -> Path:
    samples = {("GET", "/items"): _samples(seed, n, scale), ("POST", "/login"): _samples(seed + 1, n // 2, scale, 30)}
    return write_run(tmp_path / label, samples, **kw)


def _verdicts(table) -> dict[str, str]:
    return {r.label: r.verdict for r in table.rows}


def test_two_runs_of_one_distribution_show_no_change(tmp_path):
    a, b = _run(tmp_path, "a", 1), _run(tmp_path, "b", 2)
    table = compare([load(a)], [load(b)])
    assert _verdicts(table) == {"Aggregated": "no detectable change", "GET /items": "no detectable change",
                                "POST /login": "no detectable change"}  # fmt: skip
    assert table.exit_code == 0


def test_ten_percent_slower_is_slower_at_every_judged_quantile(tmp_path):
    a, b = _run(tmp_path, "a", 1, n=20_000), _run(tmp_path, "b", 2, scale=1.10, n=20_000)
    table = compare([load(a)], [load(b)])
    assert table.exit_code == 1
    items = next(r for r in table.rows if r.label == "GET /items")
    assert items.verdict == "slower"
    by_q = {c.label: c for c in items.quantiles}
    for label in ("p50", "p90", "p95"):
        assert by_q[label].verdict == "slower", (label, by_q[label])
        lo, hi = by_q[label].interval
        assert lo < 0.10 < hi  # the true change is inside its interval
    # p99.9 of 20,000 samples rests on 20 above it: its interval is wide, so no verdict either way
    assert by_q["p99.9"].verdict == "no detectable change"
    assert by_q["p50"].baseline == pytest.approx(10.0, rel=0.03)


def test_ten_percent_faster_is_faster(tmp_path):
    a, b = _run(tmp_path, "a", 1), _run(tmp_path, "b", 2, scale=1 / 1.10)
    table = compare([load(a)], [load(b)])
    assert _verdicts(table)["GET /items"] == "faster"
    assert table.exit_code == 0


def test_a_change_inside_the_noise_margin_is_no_change(tmp_path):
    a, b = _run(tmp_path, "a", 1, n=50_000), _run(tmp_path, "b", 2, scale=1.03, n=50_000)
    table = compare([load(a)], [load(b)])
    items = next(r for r in table.rows if r.label == "GET /items")
    p50 = items.quantiles[0]
    assert p50.interval[0] > 0  # real, statistically ...
    assert items.verdict == "no detectable change"  # ... but within the 5 % a shared machine wanders
    # with no noise margin it is slower
    assert _verdicts(compare([load(a)], [load(b)], Options(noise=0.0)))["GET /items"] == "slower"


def test_few_samples_cannot_be_called(tmp_path):
    a, b = _run(tmp_path, "a", 1, n=20), _run(tmp_path, "b", 2, scale=1.2, n=20)
    table = compare([load(a)], [load(b)])
    items = next(r for r in table.rows if r.label == "GET /items")
    assert items.verdict == "no detectable change"
    assert items.quantiles[-1].why == "too few samples to bound it"


def test_more_failures_is_a_regression(tmp_path):
    a = _run(tmp_path, "a", 1)
    b = _run(tmp_path, "b", 2, failures={("GET", "/items"): 100})
    table = compare([load(a)], [load(b)])
    assert _verdicts(table)["GET /items"] == "more failures"
    assert _verdicts(table)["POST /login"] == "no detectable change"
    assert table.exit_code == 1
    # a few failures in 5,000 on one side only are within the noise
    c = _run(tmp_path, "c", 2, failures={("GET", "/items"): 1})
    assert _verdicts(compare([load(a)], [load(c)]))["GET /items"] == "no detectable change"


def test_names_in_one_run_only_are_listed(tmp_path):
    a = write_run(tmp_path / "a", {("GET", "/old"): _samples(1, 100), ("GET", "/both"): _samples(2, 100)})
    b = write_run(tmp_path / "b", {("GET", "/new"): _samples(3, 100), ("GET", "/both"): _samples(4, 100)})
    table = compare([load(a)], [load(b)])
    assert _verdicts(table) == {
        "Aggregated": "no detectable change",
        "GET /both": "no detectable change",
        "GET /old": "only in the baseline",
        "GET /new": "only in the candidate",
    }
    assert table.rows[2].baseline.requests == 100 and table.rows[2].candidate is None


def test_corrected_histograms_are_compared_where_both_runs_have_them(tmp_path):
    # Paced users (an expected interval of 20 ms) whose responses take 50 ms: the corrected histogram fills in
    # the requests the stall held back, and that is the one to compare.
    a = write_run(tmp_path / "a", {("GET", "/paced"): _samples(1, 2000, median_ms=5)}, interval_ms=20)
    b = write_run(tmp_path / "b", {("GET", "/paced"): _samples(2, 2000, median_ms=50)}, interval_ms=20)
    table = compare([load(a)], [load(b)])
    paced = next(r for r in table.rows if r.label == "GET /paced")
    assert paced.corrected
    assert paced.quantiles[2].candidate > paced.quantiles[2].baseline * 1.5
    raw = next(r for r in compare([load(a)], [load(b)], Options(corrected=False)).rows if r.label == "GET /paced")
    assert not raw.corrected
    hs = load(b).histograms
    assert paced.quantiles[0].candidate == hs.value_at_quantile(0.5, "GET", "/paced", corrected=True)
    assert raw.quantiles[0].candidate == hs.value_at_quantile(0.5, "GET", "/paced")
    assert paced.quantiles[0].candidate != raw.quantiles[0].candidate


def test_repeats_must_also_beat_the_spread_between_runs(tmp_path):
    base = [_run(tmp_path, f"a{i}", 10 + i) for i in range(3)]
    slower = [_run(tmp_path, f"b{i}", 20 + i, scale=1.10) for i in range(3)]
    table = compare([load(p) for p in base], [load(p) for p in slower])
    assert _verdicts(table)["GET /items"] == "slower"
    p50 = next(r for r in table.rows if r.label == "GET /items").quantiles[0]
    assert p50.p_spread == pytest.approx(0.05)
    assert len(p50.runs[0]) == 3 and min(p50.runs[1]) > max(p50.runs[0])
    # two candidate runs 20 % slower and one as fast as the baselines: pooled, the change is clear; but the
    # spread between runs covers it
    slow = [_run(tmp_path, f"b{i}slow", 40 + i, scale=1.2, n=20_000) for i in range(2)]
    mixed = [load(slow[0]), load(slow[1]), load(_run(tmp_path, "b2same", 30, scale=0.97, n=20_000))]
    # Pooled, each run's histogram is a period of the side, and the runs' differences widen the interval already
    # (the design effect, test_clustered_samples_widen_the_interval); without periods only the spread test sees them.
    for run in [*mixed, *(baseline := [load(p) for p in base])]:
        run.periods.clear()
    table = compare(baseline, mixed)
    p50 = next(r for r in table.rows if r.label == "GET /items").quantiles[0]
    assert p50.verdict == "no detectable change" and "spread" in p50.why
    # two runs a side can never pass the spread test at 95 %: the table says so
    two = compare([load(p) for p in base[:2]], [load(p) for p in slower[:2]])
    assert "use 3 or more a side" in " ".join(two.notes)
    assert _verdicts(two)["GET /items"] == "no detectable change"


def test_the_table_holds_its_confidence_over_many_names(tmp_path):
    """100 names of one distribution on both sides: Bonferroni over the table keeps every row unchanged."""
    samples_a = {("GET", f"/n{i}"): _samples(i, 500) for i in range(100)}
    samples_b = {("GET", f"/n{i}"): _samples(1000 + i, 500) for i in range(100)}
    table = compare([load(write_run(tmp_path / "a", samples_a))], [load(write_run(tmp_path / "b", samples_b))],
                    Options(noise=0.0))  # fmt: skip
    assert [r.label for r in table.rows if r.verdict != "no detectable change"] == []
    assert table.test_confidence == pytest.approx(1 - 0.05 / (101 * 6))


def test_markdown_has_one_line_per_row(tmp_path):
    a, b = _run(tmp_path, "a", 1), _run(tmp_path, "b", 2, scale=1.10)
    text = formats.markdown(compare([load(a)], [load(b)]))
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| Name")]
    assert len(rows) == 3
    items = next(r for r in rows if r.startswith("| GET /items"))
    cells = [c.strip() for c in items.strip("|").split(" | ")]
    assert cells[1] == "**slower**"
    assert "▲" in cells[4] and "→" in cells[4]  # p50: both values, the change, its interval
    assert text.startswith("### ❌")


def test_junit_has_one_test_case_per_row_and_fails_the_regressions(tmp_path):
    a = write_run(tmp_path / "a", {("GET", "/x"): _samples(1, 5000), ("GET", "/gone"): _samples(2, 10)})
    b = write_run(tmp_path / "b", {("GET", "/x"): _samples(3, 5000, 1.2), ("GET", "/y,&<z>"): _samples(4, 10)})
    root = ET.fromstring(formats.junit(compare([load(a)], [load(b)])))
    suite = root.find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"Aggregated", "GET /x", "GET /gone", "GET /y,&<z>"}
    assert suite.get("tests") == "4" and suite.get("failures") == "2" and suite.get("skipped") == "2"
    failure = cases["GET /x"].find("failure")
    assert failure is not None and failure.get("type") == "slower"
    assert "p50 +" in failure.get("message")
    assert cases["GET /gone"].find("skipped").get("message") == "only in the baseline"
    assert cases["Aggregated"].find("failure") is not None
    assert "p95:" in cases["GET /x"].find("system-out").text


def test_a_directory_names_its_newest_run(tmp_path):
    older = _run(tmp_path, "load_test_1", 1)
    newer = _run(tmp_path, "load_test_2", 2)
    now = time.time()
    import os

    for suffix in ("_stats.csv", ".hlog"):
        os.utime(f"{older}{suffix}", (now - 100, now - 100))
    assert find_prefix(tmp_path) == str(newer)
    assert find_prefix(f"{older}_stats.csv") == str(older)
    assert find_prefix(f"{older}.hlog") == str(older)


def test_the_command_exit_codes(tmp_path, capsys):
    a, b, c = _run(tmp_path, "a", 1), _run(tmp_path, "b", 2), _run(tmp_path, "c", 3, scale=1.1)
    assert compare_main([str(a), str(b)]) == 0
    assert "no regression (exit code 0)" in capsys.readouterr().out
    junit, md = tmp_path / "r.xml", tmp_path / "summary.md"
    md.write_text("earlier step\n")
    assert compare_main([str(a), str(c), "--junit", str(junit), "--markdown", str(md)]) == 1
    out = capsys.readouterr().out
    assert "regressed (exit code 1)" in out and "GET /items p50:" in out
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "3"
    assert md.read_text().startswith("earlier step\n### ❌")  # appended, as $GITHUB_STEP_SUMMARY wants
    # a missing run, a directory without runs, a run without its .hlog: usage errors, said in one line
    assert compare_main([str(a), str(tmp_path / "nope")]) == 2
    assert "no run's results there" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert compare_main([str(a), str(tmp_path / "empty")]) == 2
    Path(f"{b}.hlog").unlink()
    assert compare_main([str(a), str(b)]) == 2
    assert "--no-hdr-metrics" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        compare_main([str(a)])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        compare_main([str(a), str(c), "--noise", "lots"])
    assert e.value.code == 2


def test_locust_rs_compare_as_typed(tmp_path):
    """The installed ``locust-rs`` command, as a CI step types it."""
    exe = shutil.which("locust-rs")
    cmd = [exe] if exe else [sys.executable, "-m", "locust_rs.cli"]
    a, b = _run(tmp_path, "a", 1), _run(tmp_path, "b", 2, scale=1.1)
    out = subprocess.run([*cmd, "compare", str(a), str(b), "--format", "junit"], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.returncode == 1, out.stderr
    cases = {c.get("name"): c for c in ET.fromstring(out.stdout).iter("testcase")}
    assert cases["GET /items"].find("failure").get("type") == "slower"
    out = subprocess.run([*cmd, "compare", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--baseline" in out.stdout


def test_a_bad_option_value_is_refused():
    with pytest.raises(ValueError, match="confidence"):
        Options(confidence=95)
    with pytest.raises(ValueError, match="noise"):
        Options(noise=-0.1)
    with pytest.raises(ValueError, match="quantiles"):
        Options(quantiles=(0.5, 1.0))


def test_not_a_run(tmp_path):
    with pytest.raises(RunNotFound):
        load(tmp_path / "nothing")


def test_results_compare_is_the_commands_table_as_a_frame(tmp_path):
    pytest.importorskip("pandas")
    import matplotlib

    matplotlib.use("Agg")
    from locust_rs import results

    a, b = _run(tmp_path, "a", 1, n=20_000), _run(tmp_path, "b", 2, scale=1.10, n=20_000)
    frame = results.compare(results.load(a), results.load(b))
    table = compare([load(a)], [load(b)])
    assert list(frame["Name"]) == [r.name for r in table.rows]
    assert list(frame["verdict"]) == [r.verdict for r in table.rows]
    items = frame[frame["Name"] == "/items"].iloc[0]
    row = next(r for r in table.rows if r.name == "/items")
    assert items["p95_a"] == row.quantiles[2].baseline and items["p95_b"] == row.quantiles[2].candidate
    assert items["p95_lo"] < items["p95_ratio"] < items["p95_hi"]
    assert items["p95_lo"] == pytest.approx(1 + row.quantiles[2].interval[0])
    assert items["count_a"] == 20_000 and items["fail_rate_b"] == 0.0
    assert frame.attrs["exit_code"] == 1
    # repeats: lists of runs on either side
    frame = results.compare([results.load(a), results.load(a)], [results.load(b), results.load(b)])
    assert frame.attrs["notes"] and "use 3 or more a side" in frame.attrs["notes"][0]
    ax = results.plot_compare(results.load(a), results.load(b), name="GET /items")
    assert len(ax.get_lines()) == 2 and len(ax.collections) == 2  # two curves, two bands
    base, cand = (line.get_ydata() for line in ax.get_lines())
    assert all(y > x for x, y in zip(base, cand, strict=False))


def _judge(expression: str, a: Path, b: Path, tests: int = 1):
    """A relative threshold on the aggregate, with ``b`` standing for the run so far."""
    from locust_rs.stats import baseline
    from locust_rs.stats.thresholds import Threshold

    t = Threshold.parse(expression)
    base, this = load(a), load(b)
    if t.metric == "error_rate":
        c = this.counts[("", "Aggregated")]
        observed = c.failures / c.requests
    else:
        from locust_rs.compare.table import AGGREGATED, side_dist

        d = side_dist([this], AGGREGATED, False)[0]
        q = 0.5 if t.metric == "med" else None
        observed = (
            sum(v * (c - p) for v, c, p in zip(d.values, d.cum, [0, *d.cum[:-1]], strict=True)) / d.n
            if t.metric == "avg"
            else d.quantile(q if q is not None else float(t.metric[1:]) / 100)
        )
    return baseline.judge(t.metric, t.op, t.value, t.relative, observed, base, this, [(None, None)], tests)


def test_a_relative_threshold_is_crossed_only_by_a_real_change(tmp_path):
    a = _run(tmp_path, "a", 1, n=20_000)
    slower = _run(tmp_path, "slower", 2, scale=1.2, n=20_000)
    j = _judge("p(95)<+10%", a, slower)
    assert not j.passed and j.limit == pytest.approx(1.1 * j.baseline) and j.interval[0] > 0.1
    assert _judge("p(95)<+30%", a, slower).passed
    assert not _judge("avg<+10%", a, slower).passed and _judge("avg<+30%", a, slower).passed
    assert not _judge("med<+1ms", a, slower).passed
    # same distribution, few samples: slightly above the baseline is beyond +0 % but not real
    few_a, few_b = _run(tmp_path, "few_a", 7, n=400), _run(tmp_path, "few_b", 3, n=400)
    j = _judge("p(50)<+0%", few_a, few_b)
    assert j.observed > j.baseline, "the seeds give a candidate above its baseline"
    assert j.passed and j.note == "beyond the limit, but within the noise" and j.interval[0] < 0 < j.interval[1]
    # a limit that demands a change: at least 20 % faster, which the same distribution is not
    j = _judge("p(50)<-20%", a, _run(tmp_path, "same", 4, n=20_000))
    assert not j.passed and j.interval[0] > -0.2
    # and one that is met
    assert _judge("p(50)<-10%", slower, a).passed


def test_a_relative_error_rate_is_in_percentage_points(tmp_path):
    a = _run(tmp_path, "a", 1)
    worse = _run(tmp_path, "worse", 2, failures={("GET", "/items"): 200})  # 200 of 7,700: 2.6 %
    j = _judge("error_rate<+1%", a, worse)
    assert not j.passed and j.limit == pytest.approx(0.01) and j.interval[0] > 0.01
    assert _judge("error_rate<+5%", a, worse).passed
    # the baseline has no such requests: fails, and says why
    from locust_rs.stats import baseline

    none = baseline.judge("p50", "<", 0.1, "ratio", 10.0, load(a), load(worse), [("GET", "/nothing")], 1)
    assert not none.passed and none.note == "no such requests in the baseline"


def test_failures_unknown_in_one_run_are_unknown_for_its_side(tmp_path):
    """A baseline of two runs, one without its _stats.csv: the side's failure rate is unknown, whatever the order,
    and no failure verdict is taken from half the requests."""
    with_csv = _run(tmp_path, "a1", 1, failures={("GET", "/items"): 50})
    without = _run(tmp_path, "a2", 2)
    Path(f"{without}_stats.csv").unlink()
    cand = [_run(tmp_path, f"b{i}", 3 + i, failures={("GET", "/items"): 50}) for i in range(2)]
    for side in ([with_csv, without], [without, with_csv]):
        table = compare([load(p) for p in side], [load(p) for p in cand])
        items = next(r for r in table.rows if r.label == "GET /items")
        assert items.baseline.failures == -1 and items.failure_interval is None and items.failure_verdict == ""
        assert "?" in formats.console(table)


def test_an_unreadable_run_is_a_usage_error_not_a_regression(tmp_path, capsys):
    a, b = _run(tmp_path, "a", 1), _run(tmp_path, "b", 2)
    Path(f"{b}_stats.csv").write_text("Type,Name,Request Count,Failure Count\nGET,/items,abc,0\n")
    assert compare_main([str(a), str(b)]) == 2
    assert "_stats.csv or _hdr.csv is not readable" in capsys.readouterr().err
    Path(f"{b}.hlog").write_text("Tag=GET:/items,0.000,1.000,2.0,not-base64!\n")
    assert compare_main([str(a), str(b)]) == 2
    assert "not a readable .hlog" in capsys.readouterr().err


def test_a_limit_that_demands_a_change_passes_only_when_it_is_shown(tmp_path):
    # 400 samples a side, the candidate 10 % faster: observed within p(50)<-5%, but its interval reaches past it
    a, b = _run(tmp_path, "a", 1, n=400), _run(tmp_path, "b", 2, scale=1 / 1.10, n=400)
    j = _judge("p(50)<-5%", a, b)
    assert j.observed < j.limit, "within the limit"
    assert not j.passed and j.note == "within the limit, but not beyond the noise"
    # with 40,000 samples the same change is shown
    a, b = _run(tmp_path, "a2", 1, n=40_000), _run(tmp_path, "b2", 2, scale=1 / 1.10, n=40_000)
    assert _judge("p(50)<-5%", a, b).passed
    # a floor: rps-like "may fall at most" through >=, on a time that must not drop 20 % below the baseline
    assert _judge("p(50)>=-20%", a, b).passed
    assert not _judge("p(50)>=-5%", a, b).passed


def test_relative_thresholds_are_judged_only_at_the_end(tmp_path):
    """--threshold-abort and the web UI look every few seconds: a 95 % interval looked at that often is crossed by
    chance, so until the end a relative threshold shows its value and is judged at the end."""
    import locust  # noqa: F401 - gevent's patching first, as in a run
    from locust.env import Environment

    from locust_rs import stats as rs_stats
    from locust_rs.stats import thresholds
    from locust_rs.stats.baseline import load_baseline
    from locust_rs.stats.thresholds import Threshold, _Run, _state

    env = Environment()
    env.stats = rs_stats.RequestStats()  # what a locust-rs run records into
    for _ in range(100):
        env.stats.log_request("GET", "/items", 500.0, 10)
    _state.of(env, _Run).baseline = load_baseline(_run(tmp_path, "a", 1))
    t = Threshold.parse("p(50)<+10%")
    (live,) = thresholds.evaluate(env, [t], final=False)
    assert live.passed and live.judged.note == "judged at the end"
    (final,) = thresholds.evaluate(env, [t])
    # 500 ms against a baseline near 12 ms: crossed, with the baseline's figures
    assert not final.passed and final.judged.baseline == pytest.approx(12, rel=0.2) and final.judged.interval[0] > 1


def test_results_load_takes_what_the_command_takes(tmp_path):
    pytest.importorskip("pandas")
    from locust_rs import results

    run = _run(tmp_path, "load_test_1", 1)
    for name in (run, f"{run}_stats.csv", f"{run}.hlog", tmp_path):
        assert results.load(name).prefix == str(run)
    Path(f"{run}.hlog").unlink()
    with pytest.raises(ValueError, match="no .hlog histograms to compare"):
        results.compare(results.load(run), results.load(run))


def _periods_run(tmp_path: Path, label: str, periods: list[list[float]]) -> Path:
    """A run whose ``.hlog`` has one interval per list of samples (one "second" each)."""
    core = _native.StatsCore(use_response_times_cache=False)
    core.track_intervals()
    start = time.time()
    writer = HlogWriter(f"{tmp_path / label}.hlog", start)
    for i, values in enumerate(periods):
        for v in values:
            core.record("GET", "/x", v, 0, None, 0.0)
        writer.write(core.take_interval_log(), start + i, start + i + 1)
    writer.close()
    return tmp_path / label


def test_clustered_samples_widen_the_interval(tmp_path):
    """The same 20,000 samples, spread over 20 seconds at random or with the slow ones bunched in a few seconds (a
    pause delays every request in flight together): bunched, a percentile rests on fewer independent events, and
    its interval is wider by the design effect measured from the seconds."""
    from locust_rs.compare.table import side_dist

    rng = random.Random(7)
    samples = sorted(10 * rng.lognormvariate(0, 0.25) for _ in range(20_000))
    shuffled = samples[:]
    rng.shuffle(shuffled)
    spread = [shuffled[i::20] for i in range(20)]
    bunched = [samples[i * 1000 : (i + 1) * 1000] for i in range(20)]  # each second its own slice of the range
    rng.shuffle(bunched)
    widths, effects = {}, {}
    for label, periods in (("spread", spread), ("bunched", bunched)):
        d = side_dist([load(_periods_run(tmp_path, label, periods))], ("GET", "/x"), False)[0]
        lo, hi = d.interval(0.95, 0.99)
        widths[label], effects[label] = hi - lo, d.design_effect(0.95)
    assert effects["spread"] < 2 < 100 < effects["bunched"], effects
    assert widths["bunched"] > 5 * widths["spread"], widths
