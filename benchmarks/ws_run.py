"""Side-by-side WebSocket benchmark: locust_rs.WebSocketUser against users built on the Python websocket-client package.

    python benchmarks/ws_run.py --users 200 --duration 15

Starts the loopback echo server of ``examples/ws_echo.rs`` (Rust, tokio-tungstenite, one thread; built with
``cargo build --release --example ws_echo`` if missing), then runs ``locust --headless`` once per variant of
``benchmarks/ws_locustfile.py`` against it, one after the other in the same invocation. Each user holds one connection
and does ping-pong round trips with no wait time. Reported per variant, over a window after a warm-up: round trips/s,
round trips per CPU-second of the locust process (all its threads, so the tokio thread is included), exact p50/p99 of
the round-trip time, and the echo server's CPU (to show it was not the bottleneck). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from run import interpolate  # the side-by-side benchmark's window interpolation

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOCUSTFILE = HERE / "ws_locustfile.py"
ECHO_BIN = ROOT / "target" / "release" / "examples" / "ws_echo"

VARIANTS = {
    "locust_rs": "locust-rs WebSocketUser",
    "wsclient": "websocket-client, locust-plugins style (receive-loop greenlet)",
    "wsclient_direct": "websocket-client, send + recv inline",
}
BASELINE = "wsclient"
RUN_TIME_SLACK_S = 2
OVERRUN_GRACE_S = 60
SAMPLE_INTERVAL_S = 0.2


def cpu_s(pid: int) -> float | None:
    with contextlib.suppress(psutil.Error):
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    return None


def start_echo(lifetime: int) -> tuple[subprocess.Popen, int]:
    if not ECHO_BIN.exists():
        subprocess.run(["cargo", "build", "--release", "--example", "ws_echo"], cwd=ROOT, check=True)
    proc = subprocess.Popen([str(ECHO_BIN), "0", str(lifetime)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    if not line.strip().isdigit():
        proc.kill()
        raise SystemExit(f"echo server did not report its port: {line!r}")
    return proc, int(line)


def run_one(variant: str, port: int, echo_pid: int, args, workdir: Path) -> dict:
    result: dict = {"variant": variant, "label": VARIANTS[variant], "status": "ok"}
    window_file = workdir / f"{variant}_window.json"
    log_file = workdir / f"{variant}_locust.log"
    run_time = int(args.warmup + args.duration) + RUN_TIME_SLACK_S
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "-u", str(args.users), "-r", str(args.users), "-t", f"{run_time}s",
        "--host", f"ws://127.0.0.1:{port}", "--only-summary", "--stop-timeout", "0",
    ]  # fmt: skip
    env = {
        **os.environ,
        "LOCUST_RS_BENCH_VARIANT": variant,
        "LOCUST_RS_BENCH_WINDOW_FILE": str(window_file),
        "LOCUST_RS_BENCH_WARMUP": str(args.warmup),
        "LOCUST_RS_BENCH_DURATION": str(args.duration),
    }
    samples: list[tuple[float, float]] = []
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + run_time + OVERRUN_GRACE_S
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                result["status"] = "error: overran, killed"
                break
            c = cpu_s(echo_pid)
            if c is not None:
                samples.append((time.time(), c))
            time.sleep(SAMPLE_INTERVAL_S)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    result["exit_code"] = proc.returncode
    if not window_file.exists():
        tail = "\n".join(log_file.read_text(errors="replace").strip().splitlines()[-15:])
        result["status"] = f"error: no measurement window (exit code {proc.returncode})\n{tail}"
        return result
    w = json.loads(window_file.read_text())
    secs = w["window_s"]
    a, b = interpolate(samples, w["start"]["time"]), interpolate(samples, w["end"]["time"])
    result.update(
        cls=w["class"],
        window_s=secs,
        round_trips=w["round_trips"],
        failures=w["failures"],
        rps=w["round_trips"] / secs,
        cpu_s=w["cpu_s"],
        rt_per_cpu_s=w["round_trips"] / w["cpu_s"] if w["cpu_s"] > 0 else None,
        locust_cores=w["cpu_s"] / secs,
        p50_ms=w["p50_ms"],
        p99_ms=w["p99_ms"],
        users=w["start"]["user_count"],
        threads=w["end"]["threads"],
        echo_cores=(b - a) / secs if a is not None and b is not None else None,
    )
    if result["failures"]:
        result["status"] = f"{result['failures']} failures in the window"
    return result


def fmt(v, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def table(results: list[dict]) -> str:
    base = next((r for r in results if r["variant"] == BASELINE and "rps" in r), None)
    lines = [
        "| variant | round trips/s | round trips per CPU-s | p50 ms | p99 ms | locust cores | echo server cores "
        "| × rt/s | × rt/CPU-s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "rps" not in r:
            lines.append(f"| {r['label']} | {r['status']} | | | | | | | |")
            continue
        x_rps = r["rps"] / base["rps"] if base else None
        x_cpu = r["rt_per_cpu_s"] / base["rt_per_cpu_s"] if base and base["rt_per_cpu_s"] else None
        lines.append(
            f"| {r['label']} | {fmt(r['rps'])} | {fmt(r['rt_per_cpu_s'])} | {fmt(r['p50_ms'], '.2f')} "
            f"| {fmt(r['p99_ms'], '.2f')} | {fmt(r['locust_cores'], '.2f')} | {fmt(r['echo_cores'], '.2f')} "
            f"| {fmt(x_rps, '.1f')} | {fmt(x_cpu, '.1f')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per variant")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before the window (connects included)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    lifetime = int(len(variants) * (args.warmup + args.duration + RUN_TIME_SLACK_S + OVERRUN_GRACE_S)) + 60
    echo, port = start_echo(lifetime)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="ws_bench_") as tmp:
            for v in variants:
                print(f"running {VARIANTS[v]} ...", flush=True)
                r = run_one(v, port, echo.pid, args, Path(tmp))
                results.append(r)
                print(f"  {fmt(r.get('rps'))} round trips/s, {fmt(r.get('rt_per_cpu_s'))} per CPU-s ({r['status']})")
    finally:
        echo.kill()
        echo.wait(timeout=10)
    print()
    print(
        f"{args.users} users, one connection each, ping-pong with no wait; window {args.duration:g} s after "
        f"{args.warmup:g} s warm-up; python {platform.python_version()}; {psutil.cpu_count()} CPUs; "
        f"echo server: examples/ws_echo.rs (tokio-tungstenite, 1 thread) on 127.0.0.1:{port}"
    )
    print()
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
