"""A master and separate worker processes: the statistics merge exactly, a worker and a master that disagree on
where statistics live stop at once with a clear message, and a lost worker's loss is stated in the master's log."""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)

import csv
import os
import signal
import textwrap
import time

import pytest

from tests.test_e2e_locust import RUN_GRACE_S, finish_locust, free_port, start_locust

RS_LOCUSTFILE = """
from locust import constant, task

from locust_rs import FastHttpUser


class U(FastHttpUser):
    wait_time = constant(0.01)

    @task
    def ok(self):
        self.client.get("/echo/ok")
"""

# The same user on Locust's own client, without locust-rs.
PLAIN_LOCUSTFILE = RS_LOCUSTFILE.replace("from locust_rs import FastHttpUser", "from locust import FastHttpUser")


def _write(directory, name: str, body: str):
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path


def _cluster(tmp_path, host, run_time: int, workers: list[tuple[str, dict]], stop_when: str | None = None):
    """A headless master expecting len(workers) workers, and the workers: (locustfile body, extra env) each; the
    master stops once ``stop_when`` holds, if given (``start_locust``)."""
    port = str(free_port())
    master_dir = tmp_path / "master"
    master_dir.mkdir()
    master_file = _write(master_dir, "locustfile.py", RS_LOCUSTFILE)
    master = start_locust(
        master_file,
        "--master",
        "--headless",
        "--expect-workers",
        str(len(workers)),
        "--master-bind-port",
        port,
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        f"{run_time}s",
        "--host",
        host,
        "--csv",
        str(master_dir / "run"),
        stop_when=stop_when,
    )
    procs = []
    for i, (body, env) in enumerate(workers):
        d = tmp_path / f"worker{i}"
        d.mkdir()
        f = _write(d, "locustfile.py", body)
        procs.append(start_locust(f, "--worker", "--master-port", port, env_extra=env))
    return master, master_dir, procs


def _finish_workers(procs, timeout: float = 15) -> None:
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except Exception:  # noqa: BLE001 - a stuck worker is killed below either way
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _rows(path):
    with open(path, newline="") as f:
        return {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}


def test_master_and_two_workers_merge_exactly(tmp_path, http_server):
    master, master_dir, procs = _cluster(tmp_path, http_server, 4, [(RS_LOCUSTFILE, {}), (RS_LOCUSTFILE, {})])
    run = finish_locust(master, 4 + RUN_GRACE_S, master_dir / "run")
    _finish_workers(procs)
    assert run.returncode == 0, run.output
    assert "mismatch" not in run.output
    stats, hdr = _rows(master_dir / "run_stats.csv"), _rows(master_dir / "run_hdr.csv")
    for key, row in stats.items():
        assert int(row["Request Count"]) == int(hdr[key]["Count"]) > 0, key
        assert f"{float(row['99%']):.3f}" == hdr[key]["p99"], key


@pytest.mark.parametrize(
    ("worker", "says"),
    [
        ((RS_LOCUSTFILE, {"LOCUST_RS_STATS": "locust"}), "worker"),
        ((PLAIN_LOCUSTFILE, {}), "locust-rs not imported"),
    ],
    ids=["locust-stats-worker", "worker-without-locust-rs"],
)
def test_a_worker_of_the_other_kind_stops_the_run(tmp_path, http_server, worker, says):
    master, master_dir, procs = _cluster(tmp_path, http_server, 20, [(RS_LOCUSTFILE, {}), worker])
    started = time.monotonic()
    run = finish_locust(master, 20 + RUN_GRACE_S, master_dir / "run")
    took = time.monotonic() - started
    _finish_workers(procs, timeout=1)
    assert run.returncode == 2, run.output
    assert "statistics mismatch" in run.output and says in run.output
    assert took < 15, "the mismatch must stop the run early, not at its end"


def test_a_lost_worker_is_stated_in_the_masters_log(tmp_path, http_server):
    # The run ends once locust-rs has logged the lost worker (its node's `lost`, added to as the line is logged;
    # -t: the upper bound).
    lost = "__import__('locust_rs._locust.distributed', fromlist=['_node_of'])._node_of(env).lost"
    master, master_dir, procs = _cluster(
        tmp_path, http_server, 30, [(RS_LOCUSTFILE, {}), (RS_LOCUSTFILE, {})], stop_when=lost
    )
    time.sleep(6)
    assert procs[1].poll() is None, "the worker ended by itself"
    os.killpg(procs[1].pid, signal.SIGKILL)
    run = finish_locust(master, 30 + RUN_GRACE_S, master_dir / "run")
    assert run.stopped_on_condition, run.output
    _finish_workers(procs)
    assert "stopped reporting: the requests it made since its last report" in run.output, run.output


def test_a_worker_that_heard_its_master_before_init_still_has_when_a_spawn_comes_during_init(monkeypatch):
    # A worker joining a running test: the master's word arrives while the runner connects (before `init`), and the
    # first spawn message can be handled while `init` waits on something (own_address resolves a name, which gevent
    # does in a thread). That spawn must not take the worker for one whose master has no locust-rs.
    from locust.env import Environment
    from locust.rpc import Message
    from locust.runners import WorkerRunner

    from locust_rs._locust import distributed

    env = Environment()
    runner = WorkerRunner.__new__(WorkerRunner)  # no connection: setup reads only these
    runner.environment, runner.master_host, runner.master_port = env, "127.0.0.1", 5557
    runner.greenlet = None  # read by Runner.__del__
    env.runner = runner
    stops: list[str] = []
    monkeypatch.setattr(distributed, "_stop", lambda node, message: stops.append(message))

    def address_while_a_spawn_comes(host, port):
        distributed.on_test_start(env)  # the worker's first spawn message, handled meanwhile
        return "127.0.0.1"

    monkeypatch.setattr(distributed, "own_address", address_while_a_spawn_comes)
    distributed._on_hello(env, Message(distributed.HELLO, distributed.NATIVE, "master"))  # before init
    distributed.setup(env, native=True)
    assert stops == []
    assert distributed._node_of(env).heard_from_master
