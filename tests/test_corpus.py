"""The corpus (tests/corpus/*.py) runs unchanged under ``locust`` and under ``locust-rs``; per request name, the two
runs' CSVs must show the same request and failure counts. Every file bounds its own iterations, so counts are
deterministic; a run ends once its users have all stopped (``tests/stop_when.py``), and ``-t`` only bounds the
wall-clock time. Plus the swap under ``--processes`` and master/worker: the children and workers run ours.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_e2e_locust import processes

CORPUS = Path(__file__).with_name("corpus")
FILES = sorted(p.name for p in CORPUS.glob("*.py"))
EXTRA_ARGS = {"05_weights_tags.py": ["--exclude-tags", "slow"]}
# Upper bounds only: each run stops on its condition (STOP_WHEN), and the tests check that it did.
RUN_SECONDS = 30
DISTRIBUTED_RUN_SECONDS = 40
STOP_WHEN = Path(__file__).with_name("stop_when.py")
STOPPED = "STOP_WHEN"
LOCUST = [sys.executable, "-m", "locust"]
LOCUST_RS = [sys.executable, "-m", "locust_rs.cli"]


def _start(cmd, path, host, prefix, extra=(), env=None, seconds=RUN_SECONDS, stop_when="users_done()"):
    """A headless run of 2 users that ends once ``stop_when`` holds (its line is the only INFO one logged)."""
    files = f"{path},{STOP_WHEN}"
    args = [*cmd, "-f", files, "--headless", "-u", "2", "-r", "10", "-t", f"{seconds}s", "--host", host]
    args += ["--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", *extra]
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {}), "STOP_WHEN": stop_when},
        cwd=CORPUS,
    )


def _finish(proc):
    try:
        out, err = proc.communicate(timeout=DISTRIBUTED_RUN_SECONDS + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"locust run hung:\n{err[-3000:]}")
    return out, err


def _counts(prefix: Path) -> dict:
    with open(f"{prefix}_stats.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        (r["Type"], r["Name"]): (int(r["Request Count"]), int(r["Failure Count"]))
        for r in rows
        if r["Name"] != "Aggregated"
    }


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", FILES)
def test_corpus_file_same_counts_under_both_commands(name, http_server, tmp_path):
    extra = EXTRA_ARGS.get(name, [])
    ref = _start(LOCUST, CORPUS / name, http_server, tmp_path / "ref", extra)
    rs = _start(LOCUST_RS, CORPUS / name, http_server, tmp_path / "rs", extra)
    _, ref_err = _finish(ref)
    _, rs_err = _finish(rs)
    assert any(line.startswith("locust-rs ") for line in rs_err.splitlines()), rs_err[-3000:]
    assert STOPPED in ref_err and STOPPED in rs_err, (ref_err[-3000:], rs_err[-3000:])
    assert "Traceback" not in ref_err, ref_err[-3000:]
    assert "Traceback" not in rs_err, rs_err[-3000:]
    expected = _counts(tmp_path / "ref")
    assert expected, f"the reference run made no requests:\n{ref_err[-3000:]}"
    assert _counts(tmp_path / "rs") == expected
    # locust-rs's metrics core ran too: its exact-percentile CSV counts every request Locust counted
    with open(tmp_path / "rs_hdr.csv", newline="") as f:
        hdr = {(r["Type"], r["Name"]): int(r["Count"]) for r in csv.DictReader(f) if r["Name"] != "Aggregated"}
    assert hdr == {key: requests for key, (requests, _failures) in expected.items()}


@pytest.mark.timeout(180)
def test_swap_reaches_forked_children(http_server, tmp_path):
    probes = tmp_path / "probes"
    probes.mkdir()
    proc = _start(
        LOCUST_RS,
        CORPUS / "01_basic_tasks.py",
        http_server,
        tmp_path / "fork",
        processes(2),
        env={"CORPUS_PROBE_DIR": str(probes)},
        seconds=DISTRIBUTED_RUN_SECONDS,
        # all of them, as the master counts them from its workers' reports
        stop_when="requests('/echo') >= 10 and requests('/status/404') >= 10",
    )
    _, err = _finish(proc)
    assert STOPPED in err, err[-3000:]
    seen = {p.name.split("-")[0]: p.read_text() for p in probes.iterdir()}
    assert len(seen) == 2, f"expected users in 2 child processes, got {seen}\n{err[-3000:]}"
    assert str(proc.pid) not in seen
    assert set(seen.values()) == {"locust_rs.clients.HttpSession"}, seen
    counts = _counts(tmp_path / "fork")
    # 2 users x 5 iterations, each iteration one GET /echo
    assert counts[("GET", "/echo")] == (10, 0), counts
    assert counts[("GET", "/status/404")] == (10, 10), counts


@pytest.mark.timeout(180)
def test_swap_on_master_and_worker(http_server, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probes = tmp_path / "probes"
    probes.mkdir()
    env = {"CORPUS_PROBE_DIR": str(probes)}
    master = _start(
        LOCUST_RS,
        CORPUS / "01_basic_tasks.py",
        http_server,
        tmp_path / "dist",
        ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port), "--expect-workers", "1"],
        env=env,
        seconds=DISTRIBUTED_RUN_SECONDS,
        stop_when="requests('/echo') >= 10 and requests('/status/404') >= 10",
    )
    worker = subprocess.Popen(
        [*LOCUST_RS, "-f", str(CORPUS / "01_basic_tasks.py"), "--worker", "--master-host", "127.0.0.1"]
        + ["--master-port", str(port), "--loglevel", "WARNING"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        cwd=CORPUS,
    )
    _, master_err = _finish(master)
    _, worker_err = _finish(worker)
    assert STOPPED in master_err, master_err[-3000:]
    assert any(line.startswith("locust-rs ") for line in worker_err.splitlines()), worker_err[-3000:]
    seen = {p.name.split("-")[0]: p.read_text() for p in probes.iterdir()}
    assert set(seen) == {str(worker.pid)}, (seen, master_err[-3000:], worker_err[-3000:])
    assert set(seen.values()) == {"locust_rs.clients.HttpSession"}
    assert _counts(tmp_path / "dist")[("GET", "/echo")] == (10, 0)
