"""Side-by-side benchmark of Locust's HttpUser, FastHttpUser and locust_rs.FastHttpUser against a local nginx.

    python benchmarks/run.py --users 50,200 --duration 15

See benchmarks/README.md for what is measured and how to read it. Standard library and psutil only; locust itself is
only ever imported in the child processes so that gevent's monkey-patching never touches this runner.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import ipaddress
import itertools
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from target_nginx import NginxTarget, http_get_ok, interrupt_on_sigterm, nginx_version  # noqa: E402

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"

VARIANTS = {
    "httpuser": "locust HttpUser",
    "fasthttpuser": "locust FastHttpUser",
    "locust_rs": "locust-rs FastHttpUser",
    "locust_rs_nometrics": "locust-rs FastHttpUser, Locust's own statistics",
    "locust_rs_http": "locust-rs HttpUser",
    # Only with --baseline-python: the same class from another build of locust-rs (e.g. the last release).
    "locust_rs_baseline": "locust-rs FastHttpUser, baseline build",
    # Not Locust at all: the same test in Goose (pure Rust), and wrk with one thread as the ceiling without Python.
    "goose": "Goose, 1 tokio worker",
    "wrk": "wrk -t1",
}
BASELINE = "fasthttpuser"
# Where the variant's class must come from; checked against what the child actually loaded.
EXPECTED_MODULE_PREFIX = {
    "httpuser": "locust.",
    "fasthttpuser": "locust.",
    "locust_rs": "locust_rs",
    "locust_rs_nometrics": "locust_rs",
    "locust_rs_http": "locust_rs",
    "locust_rs_baseline": "locust_rs",
    "goose": "goose",
}
GOOSE_DIR = HERE / "goose"
GOOSE_BIN = GOOSE_DIR / "target" / "release" / "goose-bench"
GOOSE_BUILD = f"cargo build --release --locked --manifest-path {GOOSE_DIR.relative_to(HERE.parent)}/Cargo.toml"

# -t is warm-up + duration + this, so locust's own timer never cuts the window short even if the loop is late.
RUN_TIME_SLACK_S = 2
# Start-up (imports, spawning 200 users) and shutdown on top of -t before the run counts as hung and is killed.
OVERRUN_GRACE_S = 45
SAMPLE_INTERVAL_S = 0.2

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


# ---------------------------------------------------------------------------------------------------------------------
# target


def check_loopback_url(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "http" or not parsed.hostname or not parsed.port:
        raise SystemExit(f"--target must look like http://127.0.0.1:PORT (got {url!r})")
    # Resolve rather than trust the name: every address it could reach must be loopback.
    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(parsed.hostname, parsed.port, type=socket.SOCK_STREAM)}
    except socket.gaierror as e:
        raise SystemExit(f"--target host {parsed.hostname!r} does not resolve: {e}") from e
    bad = [a for a in addrs if not ipaddress.ip_address(a.split("%")[0]).is_loopback]
    if bad or not addrs:
        raise SystemExit(f"--target must be a loopback address; {parsed.hostname!r} resolves to {sorted(addrs)}")
    return url.rstrip("/")


def listening_pids(port: int) -> list[int]:
    """Processes holding a listening socket on the port (for an external --target; nginx workers share it)."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return []
    return sorted({c.pid for c in conns if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid})


# ---------------------------------------------------------------------------------------------------------------------
# CPU sampling


def tree_cpu_s(pids: list[int]) -> float:
    """user+system CPU seconds of the processes and all their descendants (each process counts all its threads)."""
    seen: set[int] = set()
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for p in procs:
            if p.pid in seen:
                continue
            seen.add(p.pid)
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
    return total


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent not idle, summed over cores (shows load from other tenants)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


def interpolate(samples: list[tuple[float, float]], at: float) -> float | None:
    if not samples:
        return None
    if at <= samples[0][0]:
        return samples[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(samples):
        if t0 <= at <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (at - t0) / (t1 - t0)
    return samples[-1][1]


class Samples:
    """CPU seconds of the generator's process tree, the target and the whole machine, every SAMPLE_INTERVAL_S."""

    def __init__(self, target_pids: list[int]) -> None:
        self.target_pids = target_pids
        self.series: dict[str, list[tuple[float, float]]] = {"generator": [], "target": [], "machine": []}

    def take(self, pid: int) -> None:
        now = time.time()
        self.series["generator"].append((now, tree_cpu_s([pid])))
        if self.target_pids:
            self.series["target"].append((now, tree_cpu_s(self.target_pids)))
        self.series["machine"].append((now, machine_busy_s()))

    def until_exit(self, proc: subprocess.Popen, limit_s: float, exited=None) -> bool:
        """Samples until the process exits (False if it ran past ``limit_s`` and the caller must stop it)."""
        deadline = time.monotonic() + limit_s
        exited = exited or (lambda: proc.poll() is not None)
        while not exited():
            if time.monotonic() > deadline:
                return False
            self.take(proc.pid)
            time.sleep(SAMPLE_INTERVAL_S)
        return True

    def delta(self, which: str, t0: float, t1: float) -> float | None:
        samples = self.series[which]
        a, b = interpolate(samples, t0), interpolate(samples, t1)
        return None if a is None or b is None else b - a


# ---------------------------------------------------------------------------------------------------------------------
# one run


def child_env(variant: str, window_file: Path, args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_") and k.lower() not in PROXY_VARS}
    # requests, and HTTP clients in Rust, honour *_proxy variables: without this, load could leave the machine.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env.update(
        LOCUST_RS_BENCH_VARIANT=variant,
        LOCUST_RS_BENCH_WINDOW_FILE=str(window_file),
        LOCUST_RS_BENCH_WARMUP=str(args.warmup),
        LOCUST_RS_BENCH_DURATION=str(args.duration),
        PYTHONUNBUFFERED="1",
    )
    if variant == "locust_rs_nometrics":
        # The way back (--locust-stats): Locust's Python statistics instead of the native core, so the difference
        # is what recording natively saves.
        env["LOCUST_RS_STATS"] = "locust"
    return env


def python_for(variant: str, args: argparse.Namespace) -> str:
    """The interpreter a variant runs under: the baseline build's, or this one."""
    return args.baseline_python if variant == "locust_rs_baseline" else sys.executable


def probe_import(variant: str, workdir: Path, python: str = sys.executable) -> str | None:
    """None if the variant's user class imports in a fresh interpreter (or its program exists), else a short reason."""
    if variant == "goose":
        return None if GOOSE_BIN.exists() else f"not built: {GOOSE_BUILD}"
    if variant == "wrk":
        return None if shutil.which("wrk") else "not installed: apt-get install wrk"
    if not variant.startswith("locust_rs"):
        return None
    code = (
        "import sys\n"
        "try:\n"
        "    from locust_rs import FastHttpUser\n"
        "except ModuleNotFoundError as e:\n"
        "    sys.exit('not installed' if e.name == 'locust_rs' else f'import failed: {e}')\n"
        "except Exception as e:\n"
        "    sys.exit(f'import failed: {type(e).__name__}: {e}')\n"
    )
    out = subprocess.run([python, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=60)
    if out.returncode == 0:
        return None
    return (out.stderr.strip().splitlines() or ["import failed"])[-1]


def locust_version(workdir: Path) -> str:
    code = "import locust; print(locust.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=workdir)
    return out.stdout.strip() or "unknown"


def stop_process_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    # locust was started in its own session, so its group holds only what we started.
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def read_totals(base: Path) -> dict:
    """Whole-run totals (warm-up included), for the failure count and as a cross-check of the window."""
    final = Path(f"{base}_window_final.json")
    if final.exists():
        return json.loads(final.read_text())
    # Fallback if the child died before its `quit` hook: locust's CSV, which may lag the end by up to a second.
    totals: dict = {"failure_messages": []}
    stats_csv, failures_csv = Path(f"{base}_stats.csv"), Path(f"{base}_failures.csv")
    if stats_csv.exists():
        with open(stats_csv, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("Name") == "Aggregated":
                    totals["requests_total"] = int(row["Request Count"])
                    totals["failures_total"] = int(row["Failure Count"])
    if failures_csv.exists():
        with open(failures_csv, newline="") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: -int(r.get("Occurrences") or 0))
        totals["failure_messages"] = [f"{r['Occurrences']}x {r['Method']} {r['Name']}: {r['Error']}" for r in rows[:5]]
    return totals


def command_for(variant: str, users: int, target_url: str, run_time: int, base: Path, args) -> list[str]:
    if variant == "goose":
        # Goose's own options; the window comes from the same LOCUST_RS_BENCH_* variables as the locust variants.
        return [
            str(GOOSE_BIN),
            "--host", target_url,
            "--users", str(users),
            "--increase-rate", str(users),
            "--run-time", f"{run_time}s",
            "--quiet",
            "--no-print-metrics",
        ]  # fmt: skip
    return [
        python_for(variant, args), "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "-u", str(users),
        "-r", str(users),  # all users within ~1 s, well inside the warm-up
        "-t", f"{run_time}s",
        "--host", target_url,
        "--csv", str(base),
        "--only-summary",
        "--stop-timeout", "0",
    ]  # fmt: skip


def run_one(users: int, variant: str, target_url: str, target_pids: list[int], args, workdir: Path) -> dict:
    result: dict = {"users": users, "variant": variant, "label": VARIANTS[variant], "status": "ok"}
    reason = probe_import(variant, workdir, python_for(variant, args))
    if reason is not None:
        result["status"] = reason
        return result
    if variant == "wrk":
        return run_wrk(users, target_url, target_pids, args, workdir, result)

    base = workdir / f"u{users}_{variant}"
    window_file = Path(f"{base}_window.json")
    log_file = Path(f"{base}_{variant}.log")
    run_time = math.ceil(args.warmup + args.duration) + RUN_TIME_SLACK_S
    cmd = command_for(variant, users, target_url, run_time, base, args)
    result["command"] = cmd

    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            # A neutral cwd: locust reads locust.conf / pyproject.toml [tool.locust] from the cwd.
            cwd=workdir,
            env=child_env(variant, window_file, args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    samples = Samples(target_pids)
    try:
        if not samples.until_exit(proc, run_time + OVERRUN_GRACE_S):
            result["status"] = f"error: overran {run_time + OVERRUN_GRACE_S}s, killed"
    finally:
        stop_process_group(proc)
    result["exit_code"] = proc.returncode
    result["log"] = str(log_file)
    log_text = log_file.read_text(errors="replace")
    result["cpu_warning"] = "CPU usage above" in log_text or "CPU usage was too high" in log_text
    totals = read_totals(base)
    totals.pop("exit_code", None)
    result.update(totals)

    if not window_file.exists():
        if result["status"] == "ok":
            tail = "\n".join(log_text.strip().splitlines()[-15:])
            result["status"] = f"error: no measurement window (exit code {proc.returncode})"
            result["log_tail"] = tail
        return result

    w = json.loads(window_file.read_text())
    result["class"] = w["class"]
    if not w["class"]["base_class"].startswith(EXPECTED_MODULE_PREFIX[variant]):
        result["status"] = f"error: ran {w['class']['base_class']}, not {VARIANTS[variant]}"
    t0, t1, secs = w["start"]["time"], w["end"]["time"], w["window_s"]
    result.update(
        window_s=secs,
        requests=w["requests"],
        failures=w["failures"],
        rps=w["requests"] / secs,
        cpu_s=w["cpu_s"],
        cpu_user_s=w["cpu_user_s"],
        cpu_system_s=w["cpu_system_s"],
        req_per_cpu_s=w["requests"] / w["cpu_s"] if w["cpu_s"] > 0 else None,
        p50_ms=w["p50_ms"],
        p99_ms=w["p99_ms"],
        locust_cores=w["cpu_s"] / secs,
        users_at_window_start=w["start"]["user_count"],
        thread_cpu_s=w.get("thread_cpu_s") or {},
        threads=w["end"]["threads"],
    )

    ext = samples.delta("generator", t0, t1)
    tgt = samples.delta("target", t0, t1)
    busy = samples.delta("machine", t0, t1)
    # Cross-check of the in-process number; a big gap would mean CPU spent in helper processes the child started.
    result["cpu_s_external_tree"] = ext
    result["target_cpu_s"] = tgt
    result["target_cores"] = tgt / secs if tgt is not None else None
    result["machine_busy_cores"] = busy / secs if busy is not None else None
    if result["users_at_window_start"] != users and result["status"] == "ok":
        result["status"] = f"error: only {result['users_at_window_start']} of {users} users at window start"
    return result


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(text: str) -> dict:
    """Requests, errors and the 50th/99th latency percentiles (ms) from ``wrk --latency`` output."""
    out: dict = {"requests": 0, "failures": 0, "p50_ms": None, "p99_ms": None, "failure_messages": []}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] == "requests" and words[2] == "in":
            out["requests"] = int(words[0])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            out["failures"] += int(words[-1])
            out["failure_messages"].append(line.strip())
        elif line.strip().startswith("Socket errors:"):
            # "Socket errors: connect 0, read 0, write 0, timeout 0"
            out["failures"] += sum(int(w.rstrip(",")) for w in words[3::2])
            out["failure_messages"].append(line.strip())
        elif len(words) == 2 and words[0] in ("50%", "99%"):
            value = words[1]
            unit = value.lstrip("0123456789.")
            out["p50_ms" if words[0] == "50%" else "p99_ms"] = float(value[: -len(unit)]) * _WRK_UNITS[unit]
    return out


def run_wrk(users: int, target_url: str, target_pids: list[int], args, workdir: Path, result: dict) -> dict:
    """``wrk -t1 -c USERS``: one thread of C and no Python, the ceiling for one core. wrk has no warm-up, so its
    window is its whole ``-d`` run, and its CPU time is the rusage the kernel reports for it when it exits."""
    secs = max(1, math.ceil(args.duration))
    log_file = workdir / f"u{users}_wrk.log"
    cmd = ["wrk", "-t1", "-c", str(users), "-d", f"{secs}s", "--latency", f"{target_url}/"]
    result["command"] = cmd
    with open(log_file, "wb") as log:
        t0 = time.time()
        proc = subprocess.Popen(
            cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    usage = None

    def exited() -> bool:
        nonlocal usage
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == 0:
            return False
        proc.returncode, usage = os.waitstatus_to_exitcode(status), rusage
        return True

    samples = Samples(target_pids)
    try:
        if not samples.until_exit(proc, secs + OVERRUN_GRACE_S, exited):
            result["status"] = f"error: overran {secs + OVERRUN_GRACE_S}s, killed"
    finally:
        stop_process_group(proc)
    t1 = time.time()
    result.update(exit_code=proc.returncode, log=str(log_file), cpu_warning=False)
    text = log_file.read_text(errors="replace")
    if usage is None or proc.returncode != 0:
        if result["status"] == "ok":
            result["status"] = f"error: wrk exited with {proc.returncode}"
            result["log_tail"] = text[-2000:]
        return result
    parsed = parse_wrk(text)
    cpu = usage.ru_utime + usage.ru_stime
    result["class"] = {"base_class": "wrk"}
    result.update(
        window_s=float(secs),
        requests=parsed["requests"],
        failures=parsed["failures"],
        failures_total=parsed["failures"],
        failure_messages=parsed["failure_messages"] if parsed["failures"] else [],
        rps=parsed["requests"] / secs,
        cpu_s=cpu,
        cpu_user_s=usage.ru_utime,
        cpu_system_s=usage.ru_stime,
        req_per_cpu_s=parsed["requests"] / cpu if cpu > 0 else None,
        p50_ms=parsed["p50_ms"],
        p99_ms=parsed["p99_ms"],
        locust_cores=cpu / secs,
        threads=2,
        cpu_s_external_tree=samples.delta("generator", t0, t1),
        target_cpu_s=samples.delta("target", t0, t1),
        target_cores=(samples.delta("target", t0, t1) or 0) / secs if target_pids else None,
        machine_busy_cores=(samples.delta("machine", t0, t1) or 0) / (t1 - t0),
    )
    return result


# ---------------------------------------------------------------------------------------------------------------------
# report


def fmt(x: float | None, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


def add_ratios(results: list[dict]) -> None:
    base = {r["users"]: r for r in results if r["variant"] == BASELINE and r["status"] == "ok"}
    for r in results:
        b = base.get(r["users"])
        ok = r["status"] == "ok" and b is not None
        r["x_rps"] = r["rps"] / b["rps"] if ok else None
        r["x_req_per_cpu_s"] = (
            r["req_per_cpu_s"] / b["req_per_cpu_s"] if ok and r["req_per_cpu_s"] and b["req_per_cpu_s"] else None
        )


def markdown_table(results: list[dict]) -> str:
    head = (
        "| users | variant | req/s | req/CPU-s | p50 ms | p99 ms | failures "
        "| ×FastHttpUser (req/s) | ×FastHttpUser (req/CPU-s) |"
    )
    lines = [head, "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if r["status"] != "ok":
            # No numbers for a run that did not measure what its label says; they stay in the JSON for debugging.
            lines.append(f"| {r['users']} | {r['label']} | {r['status']} | | | | | | |")
            continue
        failures = r.get("failures_total", r["failures"])
        fail_cell = f"**{failures:,} FAILED**" if failures else "0"
        lines.append(
            f"| {r['users']} | {r['label']} | {fmt(r['rps'])} | {fmt(r['req_per_cpu_s'])} "
            f"| {fmt(r['p50_ms'], 'g')} | {fmt(r['p99_ms'], 'g')} | {fail_cell} "
            f"| {fmt(r['x_rps'], '.2f')} | {fmt(r['x_req_per_cpu_s'], '.2f')} |"
        )
    return "\n".join(lines)


def resource_table(results: list[dict], cores: int) -> str:
    lines = [
        f"| users | variant | window s | locust CPU (cores) | target CPU (cores) | machine busy (of {cores} cores) "
        "| locust CPU warning |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if "rps" not in r:
            continue
        lines.append(
            f"| {r['users']} | {r['label']} | {fmt(r['window_s'], '.1f')} | {fmt(r['locust_cores'], '.2f')} "
            f"| {fmt(r['target_cores'], '.2f')} | {fmt(r['machine_busy_cores'], '.2f')} "
            f"| {'yes' if r['cpu_warning'] else 'no'} |"
        )
    return "\n".join(lines)


def thread_table(results: list[dict]) -> str:
    """CPU per request, in µs, split by thread name: where a generator's cost goes (Linux only)."""
    lines = ["| users | variant | CPU µs/request | by thread (µs/request) |", "|---:|---|---:|---|"]
    for r in results:
        if "rps" not in r or not r.get("requests"):
            continue
        per = 1e6 / r["requests"]
        threads = sorted(r.get("thread_cpu_s", {}).items(), key=lambda kv: -kv[1])
        shown = [f"{name} {secs * per:.1f}" for name, secs in threads if secs * per >= 0.05]
        lines.append(f"| {r['users']} | {r['label']} | {r['cpu_s'] * per:.1f} | {' · '.join(shown) or '-'} |")
    return "\n".join(lines)


def print_problems(results: list[dict]) -> bool:
    bad = False
    for r in results:
        where = f"u={r['users']} {r['label']}"
        failures = r.get("failures_total") or r.get("failures") or 0
        if failures:
            bad = True
            print(f"\n!!! {failures:,} FAILED REQUESTS in {where} (log: {r.get('log')})", file=sys.stderr)
            for m in r.get("failure_messages", []):
                print(f"!!!   {m}", file=sys.stderr)
        if r["status"].startswith("error"):
            bad = True
            print(f"\n!!! {where}: {r['status']} (log: {r.get('log')})", file=sys.stderr)
            if r.get("log_tail"):
                print(r["log_tail"], file=sys.stderr)
    return bad


# ---------------------------------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", default="50,200", help="comma-separated user counts (default: 50,200)")
    p.add_argument(
        "--variants",
        default=",".join(v for v in VARIANTS if v != "locust_rs_baseline"),
        help=f"comma-separated subset of {', '.join(VARIANTS)} (default: all but the baseline)",
    )
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds per run (default: 15)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds before the window, not measured (default: 3)")
    p.add_argument("--target", help="existing loopback server, e.g. http://127.0.0.1:8080 (default: start nginx)")
    p.add_argument("--json", type=Path, help="also write all results to this JSON file")
    p.add_argument("--keep-tmp", action="store_true", help="keep locust CSVs and logs (kept anyway on errors)")
    p.add_argument(
        "--baseline-python",
        metavar="PYTHON",
        help="interpreter of another locust-rs build (e.g. a venv with the last release) for the locust_rs_baseline "
        "variant, run side by side with this one",
    )
    args = p.parse_args(argv)
    try:
        args.users = [int(u) for u in args.users.split(",") if u.strip()]
    except ValueError:
        p.error("--users must be comma-separated integers")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.baseline_python and "locust_rs_baseline" not in args.variants:
        args.variants.append("locust_rs_baseline")
    if not args.baseline_python and "locust_rs_baseline" in args.variants:
        p.error("the locust_rs_baseline variant needs --baseline-python")
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or not args.variants or not args.users or min(args.users) < 1:
        p.error(f"bad --variants {unknown} (choose from {', '.join(VARIANTS)}) or --users")
    if args.duration <= 0 or args.warmup < 1:
        # Spawning takes about a second; a window that starts before all users exist is not steady state.
        p.error("--duration must be > 0 and --warmup >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="locust-rs-bench-"))
    nginx: NginxTarget | None = None
    results: list[dict] = []
    keep = args.keep_tmp
    try:
        if args.target:
            target_url = check_loopback_url(args.target)
            port = urllib.parse.urlsplit(target_url).port
            if not http_get_ok(urllib.parse.urlsplit(target_url).hostname, port):
                raise SystemExit(f"--target {target_url} does not answer GET / with 200")
            target_pids = listening_pids(port)
            target_desc = f"{target_url} (pids {target_pids or 'unknown'})"
        else:
            nginx = NginxTarget()
            nginx.start()
            target_url, target_pids = nginx.url, [nginx.pid]
            target_desc = f"nginx {nginx_version()} at {target_url}, 1 worker"

        meta = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "argv": sys.argv,
            "python": platform.python_version(),
            "locust": locust_version(workdir),
            "cpu_count": psutil.cpu_count(),
            "platform": platform.platform(),
            "target": target_desc,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
        }
        print(
            f"target: {target_desc}; locust {meta['locust']}; python {meta['python']}; {meta['cpu_count']} CPUs; "
            f"warm-up {args.warmup:g}s + window {args.duration:g}s per run",
            flush=True,
        )
        for users in args.users:
            for variant in args.variants:
                print(f"  running u={users} {VARIANTS[variant]} ...", end=" ", flush=True)
                r = run_one(users, variant, target_url, target_pids, args, workdir)
                results.append(r)
                if "rps" in r:
                    print(f"{r['rps']:,.0f} req/s, {fmt(r['req_per_cpu_s'])} req/CPU-s ({r['status']})", flush=True)
                else:
                    print(r["status"], flush=True)

        add_ratios(results)
        print()
        print(markdown_table(results))
        print()
        print("Resource use in the measured windows (1.00 = one core busy the whole window):")
        print()
        print(resource_table(results, meta["cpu_count"]))
        print()
        print("CPU per request, by thread (the Python thread is `python`; locust-rs's engine `locust-rs-tokio`):")
        print()
        print(thread_table(results))
        if any(r["variant"] == "locust_rs" and r["status"] == "not installed" for r in results):
            print("\nlocust_rs is not installed in this interpreter, so its rows are empty (nothing was run).")
        bad = print_problems(results)
        keep = keep or bad
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
            print(f"\nresults written to {args.json}")
        return 1 if bad else 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping", file=sys.stderr)
        return 130
    finally:
        if nginx is not None:
            nginx.stop()
        if keep:
            print(f"locust CSVs and logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
