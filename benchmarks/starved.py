"""Latencies from a starved generator, against the truth (docs/metrics.md, "Which clock").

    python benchmarks/starved.py                      # 15 s per run; needs oha (cargo install oha)
    python benchmarks/starved.py --seconds 20 --oha ~/.cargo/bin/oha --json /tmp/starved.json

A setting where the truth is known: tests/stall_server.py answers every request after --delay (10 ms), alone on CPU 1
at real-time priority (chrt -f, where permitted), so its own timing stays exact. The generator runs on CPU 0: 50
locust-rs FastHttpUsers whose task sends one request and then burns --burn-us (300 µs) of Python.

Rows, one after another:
  - locust-rs alone on CPU 0 (Python and the engine thread share the core), its response times ended at the kernel's
    receive stamps, then at the read (LOCUST_RS_RX_STAMPS=0, the clock before the stamps);
  - the same two beside a busy loop on CPU 0;
  - oha beside the same busy loop, at the rate locust-rs reached there;
  - the truth: oha alone on CPU 0 at the rate of each locust-rs row (-q, the same connections).
Each row's p50 and p99 (raw, from _hdr.csv; oha's from its JSON) are printed over the truth at its rate. A second
table holds every run (the truths too) against its own wire times: a capture of the loopback device during that run
(benchmarks/wire.py, on CPU 1 beside the target; needs root, and says so where it could not start).

Every child is bounded in time and killed with its process group; load goes to loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from open_model import StallServer, child_env  # noqa: E402
from wire import WireCapture  # noqa: E402

LOCUSTFILE = """
import os
import time

from locust import constant, task
from locust_rs import FastHttpUser

BURN_S = float(os.environ["STARVED_BURN_US"]) / 1e6


class Starved(FastHttpUser):
    wait_time = constant(0)

    @task
    def one(self):
        self.client.get("/")
        end = time.perf_counter() + BURN_S
        while time.perf_counter() < end:  # the task's own Python work
            pass
"""
GRACE_S = 60


class Pinned(StallServer):
    """The target on CPU 1, at real-time priority where permitted."""

    def __init__(self, delay: float, realtime: bool) -> None:
        super().__init__(delay)
        self.realtime = realtime

    def __enter__(self) -> Pinned:
        super().__enter__()
        assert self.proc is not None
        subprocess.run(["taskset", "-a", "-p", "-c", "1", str(self.proc.pid)], capture_output=True, check=False)
        if self.realtime:
            out = subprocess.run(["chrt", "-a", "-f", "-p", "50", str(self.proc.pid)], capture_output=True, check=False)
            self.realtime = out.returncode == 0
        return self


@contextlib.contextmanager
def busy_loop(cpu: int):
    """A process spinning on ``cpu`` (SCHED_OTHER, as another job on the machine would)."""
    proc = subprocess.Popen(
        ["taskset", "-c", str(cpu), sys.executable, "-c", "while True: pass"], start_new_session=True
    )
    try:
        time.sleep(0.5)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def on_the_wire(url: str):
    """The same run's wire times (benchmarks/wire.py), captured on CPU 1 beside the target."""
    return WireCapture(port=int(url.rsplit(":", 1)[1]), cpu=1)


def wire_of(row: dict, wire: WireCapture) -> dict:
    row["wire"] = {"requests": len(wire.latencies_ms), "p50": wire.percentile(0.5), "p99": wire.percentile(0.99)}
    row["wire_error"] = wire.error
    return row


def run_locust(args, workdir: Path, url: str, name: str, stamps: bool) -> dict:
    prefix = workdir / name
    env = child_env()
    env["STARVED_BURN_US"] = str(args.burn_us)
    if not stamps:
        env["LOCUST_RS_RX_STAMPS"] = "0"
    cmd = [
        "taskset", "-c", "0", sys.executable, "-m", "locust_rs.cli", "-f", str(workdir / "locustfile.py"),
        "--headless", "-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s", "-H", url,
        "--csv", str(prefix), "--only-summary",
    ]  # fmt: skip
    with open(workdir / f"{name}.log", "w") as log, on_the_wire(url) as wire:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=args.seconds + GRACE_S, check=False)
    with open(f"{prefix}_hdr.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    with open(f"{prefix}_stats.csv", newline="") as f:
        stats = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    log = (workdir / f"{name}.log").read_text()
    clock = next(
        (line[line.index("Response times end") :] for line in log.splitlines() if "Response times end" in line), ""
    )
    return wire_of(
        {
            "name": name,
            "requests": int(row["Count"]),
            "rps": float(stats["Requests/s"]),
            "p50": float(row["p50"]),
            "p99": float(row["p99"]),
            "clock": clock.strip(),
        },
        wire,
    )


def run_oha(args, workdir: Path, url: str, name: str, rate: float) -> dict:
    out = workdir / f"{name}.json"
    cmd = [
        "taskset", "-c", "0", args.oha, "-q", f"{rate:.0f}", "-c", str(args.users), "-z", f"{args.seconds}s",
        "--no-tui", "--output-format", "json", f"{url}/",
    ]  # fmt: skip
    with open(out, "w") as f, on_the_wire(url) as wire:
        subprocess.run(cmd, stdout=f, stderr=subprocess.DEVNULL, timeout=args.seconds + GRACE_S, check=False)
    data = json.loads(out.read_text())
    pct = data.get("latencyPercentiles") or data.get("latency_percentiles") or {}
    summary = data.get("summary", {})
    return wire_of(
        {
            "name": name,
            "requests": int(sum((data.get("statusCodeDistribution") or {}).values())),
            "rps": float(summary.get("requestsPerSec", 0.0)),
            "p50": float(pct["p50"]) * 1000,
            "p99": float(pct["p99"]) * 1000,
            "clock": "oha",
        },
        wire,
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=15)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--delay", type=float, default=0.010)
    p.add_argument("--burn-us", type=int, default=300)
    p.add_argument("--oha", default=shutil.which("oha") or str(Path.home() / ".cargo" / "bin" / "oha"))
    p.add_argument("--no-realtime", action="store_true", help="do not ask for real-time priority for the target")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        sys.exit("needs two CPUs: the target on CPU 1, the generator on CPU 0")
    if not Path(args.oha).exists():
        sys.exit(f"no oha at {args.oha}: cargo install oha (or --oha PATH)")
    workdir = Path(tempfile.mkdtemp(prefix="starved_"))
    (workdir / "locustfile.py").write_text(LOCUSTFILE)
    rows = []
    with Pinned(args.delay, not args.no_realtime) as target:
        print(f"target {target.url}: CPU 1, real-time priority: {'yes' if target.realtime else 'not permitted'}")
        rows.append(run_locust(args, workdir, target.url, "alone, kernel stamps", True))
        rows.append(run_locust(args, workdir, target.url, "alone, at the read", False))
        with busy_loop(0):
            rows.append(run_locust(args, workdir, target.url, "beside a busy loop, kernel stamps", True))
            rows.append(run_locust(args, workdir, target.url, "beside a busy loop, at the read", False))
            rows.append(run_oha(args, workdir, target.url, "oha beside the busy loop", rows[2]["rps"]))
        truths: dict[int, dict] = {}
        for row in rows:
            rate = round(row["rps"])
            if rate not in truths:
                truths[rate] = run_oha(args, workdir, target.url, f"truth at {rate}", rate)
    print(f"\n{args.users} users, {args.burn_us} µs of Python per task, a {1000 * args.delay:g} ms target, "
          f"{args.seconds} s per run\n")  # fmt: skip
    print("| generator on CPU 0 | req/s | p50 / truth | p99 / truth | p50, p99 (ms) | truth p50, p99 (ms) |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        truth = truths[round(row["rps"])]
        row["truth"] = truth
        print(
            f"| {row['name']} | {row['rps']:,.0f} | {row['p50'] / truth['p50']:.3f} | {row['p99'] / truth['p99']:.3f} "
            f"| {row['p50']:.3f}, {row['p99']:.3f} | {truth['p50']:.3f}, {truth['p99']:.3f} |"
        )
    print("\nThe same runs against their own wire times (benchmarks/wire.py: each request's first segment leaving, to")
    print("its response's leaving, by the loopback device's stamps):\n")
    print("| run | requests (wire) | p50 / wire | p99 / wire | wire p50, p99 (ms) |")
    print("|---|---:|---:|---:|---:|")
    for row in [*rows, *truths.values()]:
        w = row["wire"]
        if not w["requests"]:
            print(f"| {row['name']} | no capture: {row['wire_error']} | | | |")
            continue
        print(
            f"| {row['name']} | {row['requests']:,} ({w['requests']:,}) | {row['p50'] / w['p50']:.3f} "
            f"| {row['p99'] / w['p99']:.3f} | {w['p50']:.3f}, {w['p99']:.3f} |"
        )
    for row in rows:
        if row["clock"] and row["clock"] != "oha":
            print(f"{row['name']}: {row['clock']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=1))
    print(f"(runs in {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
