"""Open-model (arrival-rate) benchmark: locust-rs's constant_arrival_rate against oha and a closed-model user.

    python benchmarks/open_model.py                        # both parts, 10 s per run
    python benchmarks/open_model.py --parts stall --duration 20 --json /tmp/open_model.json

Part A (stall): against tests/stall_server.py (1 ms per answer), one run each of
  (a) locust-rs FastHttpUser with ``constant_arrival_rate(R, max_users=M)``, ``-u 200 -r 200``;
  (b) ``oha -q R --latency-correction -z Ds -c C`` (the anchor: every latency from the request's scheduled send);
  (c) locust-rs FastHttpUser, closed model, ``N`` users x ``constant_throughput(R / N)`` (the same nominal rate;
      its corrected columns are HdrHistogram's expected-interval correction).
The runs go one after another, each alone against the server, and each gets ONE ``GET /stall?secs=S`` at the middle
of its own run: every response due in the next S seconds waits for the stall's end.

Part B (rate): against a throwaway nginx (benchmarks/target_nginx.py), the open-model user alone at each of
``--rates`` for D seconds; from ``_arrival.csv``: (iterations + dropped) / (rate x elapsed), drops, achieved rate,
start lag, and the locust process's CPU (from /proc, every thread).

See benchmarks/README.md ("Open model (arrival rate)"). Standard library and psutil only; locust runs only in the
child processes. Every child runs in its own session, with a timeout, and is killed (its whole group) on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import http.client
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import interpolate, locust_rs_fingerprint, stop_process_group  # noqa: E402
from target_nginx import NginxTarget, interrupt_on_sigterm, nginx_version  # noqa: E402

STALL_SERVER = HERE.parent / "tests" / "stall_server.py"
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
# A locust run may take this long past its -t (start-up, writing the CSVs) before it is killed.
OVERRUN_S = 40
# CPU samples (interpolated to the run's window) every SAMPLE_S; the log and the stall's moment every POLL_S.
SAMPLE_S = 0.25
POLL_S = 0.02
# CPU is counted from this many seconds into the run (the -u users spawn in the first second) to its end.
CPU_SKIP_S = 2.0
# The line locust logs when its -t timer starts (main.py); the run's clock and the stall are timed from it.
RUN_TIME_MARK = "Run time limit set to"

# Locust's -t is a gevent timer, and gevent's loop caches its clock: it was last read before the imports, so -t
# ends the run early by the start-up time (~0.5 s here). Refreshing the clock at init makes -t last D seconds, as
# oha's -z does, and keeps the stall at the middle of the run.
CLOCK_FIX = """
import gevent
from locust import events


@events.init.add_listener
def _refresh_gevent_clock(**_kw):
    gevent.get_hub().loop.update_now()
"""

OPEN_LOCUSTFILE = (
    """\
from locust import task
from locust_rs import FastHttpUser, constant_arrival_rate


class Open(FastHttpUser):
    wait_time = constant_arrival_rate({rate}, max_users={max_users})

    @task
    def hit(self):
        self.client.get("/")
"""
    + CLOCK_FIX
)

CLOSED_LOCUSTFILE = (
    """\
from locust import constant_throughput, task
from locust_rs import FastHttpUser


class Closed(FastHttpUser):
    wait_time = constant_throughput({per_user})

    @task
    def hit(self):
        self.client.get("/")
"""
    + CLOCK_FIX
)


# ---------------------------------------------------------------------------------------------------------------------
# children


def child_env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "OTEL_")) and k.lower() not in PROXY_VARS
    }
    # HTTP clients honour *_proxy variables: without this, load could leave the machine.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class StallServer:
    """tests/stall_server.py as a child: prints {"port": N} when ready, exits when its stdin closes."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> StallServer:
        self.proc = subprocess.Popen(
            [sys.executable, str(STALL_SERVER), "--delay", str(self.delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env(),
            start_new_session=True,
        )
        line = b""
        deadline = time.monotonic() + 20
        os.set_blocking(self.proc.stdout.fileno(), False)
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            if self.proc.poll() is not None:
                break
            line += self.proc.stdout.read() or b""
            time.sleep(0.05)
        try:
            self.port = int(json.loads(line)["port"])
        except (ValueError, KeyError) as e:
            self.__exit__()
            raise RuntimeError(f"the stall server did not report its port: {line!r}") from e
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def stall(port: int, secs: float) -> dict:
    """One GET /stall?secs=S; returns when it was sent (time.time()) and the answer's status."""
    sent = time.time()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", f"/stall?secs={secs:g}")
        resp = conn.getresponse()
        resp.read()
        return {"sent": sent, "status": resp.status, "took_ms": (time.time() - sent) * 1000}
    except OSError as e:
        return {"sent": sent, "status": None, "error": str(e)}
    finally:
        conn.close()


def run_child(
    cmd: list[str],
    workdir: Path,
    name: str,
    limit_s: float,
    *,
    stdout_file: Path | None = None,
    starts_when_logged: bool,
    stall_at: float | None = None,
    stall_port: int = 0,
    stall_secs: float = 1.0,
    target_pids: list[int] | None = None,
) -> dict:
    """Runs one load generator to its end (killed after ``limit_s``), sampling its CPU every SAMPLE_S.

    ``starts_when_logged``: the run's clock starts when locust logs RUN_TIME_MARK (else at the start of the process).
    ``stall_at``: seconds after that start to send the one /stall request."""
    log = workdir / f"{name}.log"
    out = open(stdout_file or workdir / f"{name}.out", "wb")  # noqa: SIM115 - handed over to the child
    err = open(log, "wb")  # noqa: SIM115
    # The editable install can be rebuilt under a benchmark: note the build before the child imports it and again
    # when its run starts (its imports are done by then), so a row can be matched to one build.
    build_before = build_after = locust_rs_fingerprint() if starts_when_logged else "n/a"
    started = time.time()
    proc = subprocess.Popen(
        cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=child_env(), start_new_session=True
    )
    out.close()
    err.close()
    t0 = None if starts_when_logged else started
    stall_info = None
    samples: dict[str, list[tuple[float, float]]] = {"generator": [], "target": []}
    timed_out = False
    # The target's processes (nginx's master and worker) once: scanning /proc for children at every sample would
    # cost the sampler more CPU than the generator it measures.
    target = [pid for t in target_pids or [] for pid in (t, *child_pids(t))]
    next_sample = 0.0
    try:
        deadline = time.monotonic() + limit_s
        while proc.poll() is None:
            if time.monotonic() > deadline:
                timed_out = True
                break
            now = time.time()
            if now >= next_sample:
                next_sample = now + SAMPLE_S
                samples["generator"].append((now, proc_cpu_s([proc.pid])))
                if target:
                    samples["target"].append((now, proc_cpu_s(target)))
            if t0 is None:
                t0 = run_start_logged(log)
                if t0 is not None:
                    build_after = locust_rs_fingerprint()
            if stall_at is not None and stall_info is None and t0 is not None and now >= t0 + stall_at:
                stall_info = stall(stall_port, stall_secs)
                stall_info["after_start_s"] = stall_info["sent"] - t0
            time.sleep(POLL_S)
    finally:
        stop_process_group(proc)
    return {
        "build": build_before if build_before == build_after else f"{build_before} -> {build_after}",
        "cmd": cmd,
        "returncode": proc.returncode,
        "timed_out": timed_out,
        "started": started,
        "t0": t0,
        "stall": stall_info,
        "samples": samples,
        "log_tail": log.read_text(errors="replace")[-3000:],
    }


def child_pids(pid: int) -> list[int]:
    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pids: list[int]) -> float:
    """user+system CPU seconds of the processes (every thread), from /proc/PID/stat: cheap enough to sample often."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return total


def run_start_logged(log: Path) -> float | None:
    """When locust logged RUN_TIME_MARK (its -t timer starts then), from the line's own timestamp."""
    for line in log.read_text(errors="replace").splitlines():
        if RUN_TIME_MARK in line and line.startswith("["):
            # "[2026-11-30 23:24:29,590] host/INFO/locust.main: ...", local time, as logging writes it.
            with contextlib.suppress(ValueError):
                return datetime.datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def cpu_cores(samples: dict, which: str, t0: float | None, duration: float) -> tuple[float | None, float]:
    """Cores used (CPU seconds per second) over [t0 + CPU_SKIP_S, t0 + duration] (cut at the last sample), and the
    window's length."""
    series = samples.get(which) or []
    if t0 is None or len(series) < 2:
        return None, 0.0
    start, end = t0 + CPU_SKIP_S, min(t0 + duration, series[-1][0])
    if end - start < 1.0:
        return None, 0.0
    a, b = interpolate(series, start), interpolate(series, end)
    return (None if a is None or b is None else (b - a) / (end - start)), end - start


def locust_cmd(lf: Path, url: str, users: int, duration: int, prefix: Path) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", str(lf), "--headless", "-u", str(users), "-r", str(users),
        "-t", f"{duration}s", "-H", url, "--csv", str(prefix), "--only-summary",
    ]  # fmt: skip


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(row: dict[str, str] | None, key: str) -> float | None:
    if not row:
        return None
    v = row.get(key, "")
    try:
        return float(v) if v != "" else None
    except ValueError:
        return None


def hdr_figures(prefix: Path) -> dict:
    """The GET / row of PREFIX_hdr.csv, in ms: raw (from each request's send) and corrected figures."""
    rows = read_csv_rows(Path(f"{prefix}_hdr.csv"))
    row = next((r for r in rows if r["Type"] == "GET" and r["Name"] == "/"), None)
    out: dict = {"found": row is not None}
    for label in ("Count", "Max", "Mean", "p50", "p90", "p99", "p99.9", "p99.99"):
        out[label] = num(row, label)
        out[f"Corrected {label}"] = num(row, f"Corrected {label}")
    fails = read_csv_rows(Path(f"{prefix}_stats.csv"))
    agg = next((r for r in fails if r.get("Name") == "Aggregated"), None)
    out["failures"] = int(num(agg, "Failure Count") or 0) if agg else None
    return out


def arrival_figures(prefix: Path) -> dict | None:
    rows = read_csv_rows(Path(f"{prefix}_arrival.csv"))
    if not rows:
        return None
    r = rows[0]
    keys = ("Elapsed", "Target rate", "Achieved rate", "Scheduled", "Iterations", "Dropped iterations", "Peak users")
    out = {k: num(r, k) for k in keys}
    for q in ("p50", "p90", "p99", "p99.9", "max"):
        out[f"Start lag {q}"] = num(r, f"Start lag {q}")
    return out


# ---------------------------------------------------------------------------------------------------------------------
# part A: the stall


def run_open(args, url: str, workdir: Path, rate: float, users: int, max_users: int, *, name: str, **kw) -> dict:
    lf = workdir / f"{name}_locustfile.py"
    lf.write_text(OPEN_LOCUSTFILE.format(rate=rate, max_users=max_users))
    prefix = workdir / name
    res = run_child(
        locust_cmd(lf, url, users, args.duration, prefix),
        workdir,
        name,
        args.duration + OVERRUN_S,
        starts_when_logged=True,
        **kw,
    )
    res.update(hdr=hdr_figures(prefix), arrival=arrival_figures(prefix), users=users, max_users=max_users, rate=rate)
    return res


def run_closed(args, url: str, workdir: Path, **kw) -> dict:
    per_user = args.rate / args.closed_users
    lf = workdir / "closed_locustfile.py"
    lf.write_text(CLOSED_LOCUSTFILE.format(per_user=per_user))
    prefix = workdir / "closed"
    res = run_child(
        locust_cmd(lf, url, args.closed_users, args.duration, prefix),
        workdir,
        "closed",
        args.duration + OVERRUN_S,
        starts_when_logged=True,
        **kw,
    )
    res.update(hdr=hdr_figures(prefix), users=args.closed_users, per_user=per_user)
    return res


def run_oha(args, url: str, workdir: Path, **kw) -> dict:
    out_file = workdir / "oha.json"
    cmd = [
        args.oha, "-q", f"{args.rate:g}", "--latency-correction", "-z", f"{args.duration}s",
        "-c", str(args.oha_connections), "--no-tui", "--output-format", "json", f"{url}/",
    ]  # fmt: skip
    res = run_child(
        cmd, workdir, "oha", args.duration + OVERRUN_S, stdout_file=out_file, starts_when_logged=False, **kw
    )
    fig: dict = {"found": False}
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(out_file.read_text())
        pct = data.get("latencyPercentiles", {})
        ok = sum(data.get("statusCodeDistribution", {}).values())
        dist = data.get("errorDistribution", {})
        # In flight when -z ran out: not answered, not in the percentiles (as locust's stop drops them too).
        aborted = dist.get("aborted due to deadline", 0)
        fig = {
            "found": True,
            "Count": ok,
            "ok": ok,
            "aborted_at_deadline": aborted,
            "errors": sum(dist.values()) - aborted,
            "error_distribution": data.get("errorDistribution", {}),
            "total_s": data.get("summary", {}).get("total"),
            "requests_per_sec": data.get("summary", {}).get("requestsPerSec"),
        }
        for q in ("p50", "p90", "p99", "p99.9", "p99.99"):
            v = pct.get(q)
            fig[q] = None if v is None else v * 1000.0
        fig["Max"] = (data.get("summary", {}).get("slowest") or 0) * 1000.0
    res["oha"] = fig
    return res


def part_stall(args, workdir: Path) -> dict:
    result: dict = {"mode": "sequential", "server_delay_s": args.stall_delay, "stall_secs": args.stall_secs}
    with StallServer(args.stall_delay) as server:
        kw = {"stall_at": args.duration / 2, "stall_port": server.port, "stall_secs": args.stall_secs}
        target = [server.proc.pid]
        print(f"part A: stall server {server.url}, {args.duration} s per run, runs in sequence", flush=True)
        result["open"] = run_open(
            args, server.url, workdir, args.rate, args.users, args.max_users, name="open", target_pids=target, **kw
        )
        print("  (a) locust-rs open model done", flush=True)
        if args.oha_path_ok:
            result["oha"] = run_oha(args, server.url, workdir, target_pids=target, **kw)
            print("  (b) oha done", flush=True)
        result["closed"] = run_closed(args, server.url, workdir, target_pids=target, **kw)
        print("  (c) locust-rs closed model done", flush=True)
        # The server must have lived through the three stalls (a dead one would explain failed requests).
        result["server_alive"] = server.proc.poll() is None
    return result


# ---------------------------------------------------------------------------------------------------------------------
# part B: rate accuracy


def part_rate(args, workdir: Path) -> dict:
    runs = []
    with NginxTarget() as nginx:
        print(f"part B: nginx {nginx.url}, {args.duration} s per rate", flush=True)
        for rate, users in zip(args.rates, args.rate_users, strict=True):
            if past_deadline(args):
                runs.append({"rate": rate, "skipped": f"past --stop-at {args.stop_at}"})
                continue
            res = run_open(
                args, nginx.url, workdir, rate, users, 2 * users, name=f"rate{rate:g}", target_pids=[nginx.pid]
            )
            for key, which in (("cores", "generator"), ("target_cores", "target")):
                res[key], res["cpu_window_s"] = cpu_cores(res["samples"], which, res["t0"], args.duration)
            runs.append(res)
            print(f"  {rate:g}/s done", flush=True)
    return {"runs": runs}


# ---------------------------------------------------------------------------------------------------------------------
# tables


def f(x: float | None, spec: str = ",.1f") -> str:
    return "—" if x is None else format(x, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def stall_table(res: dict, args) -> str:
    o, c, h = res.get("open"), res.get("closed"), (res.get("oha") or {}).get("oha")
    head = (
        "| variant | requests | p50 ms | p99 ms | p99.9 ms | corrected p99 ms | corrected p99.9 ms "
        "| corrected p99 / oha | corrected p99.9 / oha |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = [head]
    oha_p99 = h.get("p99") if h else None
    oha_p999 = h.get("p99.9") if h else None
    if o:
        x = o["hdr"]
        rows.append(
            f"| (a) locust-rs open model, constant_arrival_rate({args.rate:g}, max_users={args.max_users}), "
            f"-u {args.users} | {f(x['Count'], ',.0f')} | {f(x['p50'])} | {f(x['p99'])} | {f(x['p99.9'])} "
            f"| {f(x['Corrected p99'])} | {f(x['Corrected p99.9'])} "
            f"| **{f(ratio(x['Corrected p99'], oha_p99), '.3f')}** "
            f"| **{f(ratio(x['Corrected p99.9'], oha_p999), '.3f')}** |"
        )
    if h:
        rows.append(
            f"| (b) oha -q {args.rate:g} --latency-correction -c {args.oha_connections} (all latencies corrected) "
            f"| {f(h.get('Count'), ',.0f')} | {f(h.get('p50'))} (corrected) | — | — | {f(oha_p99)} | {f(oha_p999)} "
            "| 1.000 | 1.000 |"
        )
    elif res.get("oha_missing"):
        rows.append(f"| (b) oha | {res['oha_missing']} | | | | | | | |")
    if c:
        x = c["hdr"]
        rows.append(
            f"| (c) locust-rs closed model, {args.closed_users} users × constant_throughput({c['per_user']:g}) "
            f"(Locust-style expected-interval correction) | {f(x['Count'], ',.0f')} | {f(x['p50'])} | {f(x['p99'])} "
            f"| {f(x['p99.9'])} | {f(x['Corrected p99'])} | {f(x['Corrected p99.9'])} "
            f"| {f(ratio(x['Corrected p99'], oha_p99), '.3f')} | {f(ratio(x['Corrected p99.9'], oha_p999), '.3f')} |"
        )
    lines = ["\n".join(rows), ""]
    if o and o.get("arrival"):
        a = o["arrival"]
        lines.append(
            f"(a) start lag p50 {f(a['Start lag p50'], '.2f')} ms, p99 {f(a['Start lag p99'], '.2f')} ms, "
            f"max {f(a['Start lag max'], '.1f')} ms; dropped iterations {f(a['Dropped iterations'], ',.0f')}; "
            f"peak users {f(a['Peak users'], ',.0f')}; iterations {f(a['Iterations'], ',.0f')} "
            f"in {f(a['Elapsed'], '.2f')} s."
        )
    notes = []
    for key, label in (("open", "(a)"), ("oha", "(b)"), ("closed", "(c)")):
        r = res.get(key)
        if not r:
            continue
        s = r.get("stall") or {}
        cores = "/".join(
            f(cpu_cores(r.get("samples") or {}, w, r.get("t0"), args.duration)[0], ".2f")
            for w in ("generator", "target")
        )
        if s.get("status") == 200:
            notes.append(f"{label} stall sent {s['after_start_s']:.2f} s into the run; cores generator/server {cores}")
        else:
            notes.append(f"{label} **stall not sent or failed**: {s or 'no run start seen'}")
        fails = (r.get("hdr") or {}).get("failures") if key != "oha" else (r.get("oha") or {}).get("errors")
        if fails:
            notes.append(f"{label} **{fails} failed requests**")
        if r.get("timed_out") or r.get("returncode") not in (0, None):
            last = (r.get("log_tail") or "").strip().splitlines()[-1:] or [""]
            why = f": `{last[0][:200]}`" if r.get("t0") is None else ""
            notes.append(f"{label} exit code {r.get('returncode')}{', timed out' if r.get('timed_out') else ''}{why}")
    lines.append(
        "Runs in sequence, each alone against the stall server (delay "
        f"{args.stall_delay * 1000:g} ms), each with one GET /stall?secs={args.stall_secs:g} at its own midpoint; "
        + "; ".join(notes)
        + "."
    )
    return "\n".join(lines)


def rate_table(res: dict) -> str:
    head = (
        "| target/s | users (max) | elapsed s | scheduled | iterations | dropped | (iterations + dropped) / "
        "(rate × elapsed) | achieved/s | start lag p50 ms | start lag p99 ms | locust CPU (cores) "
        "| CPU µs/iteration | nginx CPU (cores) |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = [head]
    for r in res["runs"]:
        if r.get("skipped"):
            rows.append(f"| {r['rate']:g} | skipped: {r['skipped']} |" + " |" * 11)
            continue
        a = r.get("arrival")
        if not a:
            rows.append(f"| {r['rate']:g} | **no _arrival.csv (exit code {r['returncode']})** |" + " |" * 11)
            continue
        el = a["Elapsed"] or 0.0
        acc = ratio((a["Iterations"] or 0) + (a["Dropped iterations"] or 0), r["rate"] * el)
        cores = r.get("cores")
        # CPU per iteration at the rate achieved over the whole run (the window skips the spawning second).
        us = ratio(cores * 1e6, a["Achieved rate"]) if cores is not None else None
        rows.append(
            f"| {r['rate']:,.0f} | {r['users']} ({r['max_users']}) | {el:.2f} | {f(a['Scheduled'], ',.0f')} "
            f"| {f(a['Iterations'], ',.0f')} | {f(a['Dropped iterations'], ',.0f')} | {f(acc, '.4f')} "
            f"| {f(a['Achieved rate'], ',.1f')} | {f(a['Start lag p50'], '.2f')} | {f(a['Start lag p99'], '.2f')} "
            f"| {f(cores, '.2f')} | {f(us, ',.0f')} | {f(r.get('target_cores'), '.2f')} |"
        )
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------------------------------
# main


def stop_deadline(hhmm: str) -> datetime.datetime | None:
    """The next HH:MM UTC from now (tomorrow's if today's has passed)."""
    if not hhmm:
        return None
    now = datetime.datetime.now(datetime.UTC)
    h, m = (int(x) for x in hhmm.split(":"))
    at = now.replace(hour=h, minute=m, second=0, microsecond=0)
    return at if at > now else at + datetime.timedelta(days=1)


def past_deadline(args) -> bool:
    return args.deadline is not None and datetime.datetime.now(datetime.UTC) >= args.deadline


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Open-model benchmark: locust-rs constant_arrival_rate vs oha (with a server stall) and its rate "
        "accuracy against nginx. See benchmarks/README.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--parts", default="stall,rate", help="comma-separated: stall (part A), rate (part B)")
    p.add_argument("--duration", type=int, default=10, help="seconds of load in every run (locust -t, oha -z)")
    p.add_argument("--rate", type=float, default=1000, help="part A: iterations (requests) per second")
    p.add_argument("--users", type=int, default=200, help="part A: locust -u (and -r) of the open-model run")
    p.add_argument("--max-users", type=int, default=1500, help="part A: max_users of the open-model run")
    p.add_argument("--closed-users", type=int, default=100, help="part A: users of the closed-model run")
    p.add_argument("--stall-secs", type=float, default=1.0, help="part A: length of the one stall")
    p.add_argument("--stall-delay", type=float, default=0.001, help="part A: the stall server's --delay (s)")
    p.add_argument("--oha", default=shutil.which("oha") or "/tmp/oha/bin/oha", help="the oha binary")
    p.add_argument(
        "--oha-connections", type=int, default=1500, help="oha -c: enough that a connection is never the limit"
    )
    p.add_argument("--rates", default="1000,5000,10000", help="part B: target iterations per second")
    p.add_argument("--rate-users", default="100,300,500", help="part B: locust -u per rate (max_users is twice this)")
    p.add_argument(
        "--stop-at", default="", help="HH:MM UTC: start no further run after this time (the next such time from now)"
    )
    p.add_argument("--json", help="also write every figure, command and version to this file")
    p.add_argument("--keep-tmp", action="store_true", help="keep the CSVs and logs (printed at the end)")
    args = p.parse_args(argv)
    args.parts = {s.strip() for s in args.parts.split(",") if s.strip()}
    if not args.parts <= {"stall", "rate"}:
        p.error("--parts takes stall and/or rate")
    args.rates = [float(x) for x in args.rates.split(",")]
    args.rate_users = [int(x) for x in args.rate_users.split(",")]
    if len(args.rates) != len(args.rate_users):
        p.error("--rates and --rate-users need the same number of entries")
    if args.duration < 2:
        p.error("--duration must be at least 2")
    try:
        args.deadline = stop_deadline(args.stop_at)
    except ValueError:
        p.error("--stop-at takes HH:MM (UTC)")
    args.oha_path_ok = bool(args.oha) and os.access(args.oha, os.X_OK)
    return args


def versions(args) -> dict:
    def out(cmd: list[str]) -> str:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired, IndexError):
            return "unknown"

    code = "import locust, locust_rs; print(locust.__version__, getattr(locust_rs, '__version__', '?'))"
    return {
        "python": platform.python_version(),
        "locust, locust_rs": out([sys.executable, "-c", code]),
        "oha": out([args.oha, "--version"]) if args.oha_path_ok else "not installed",
        "nginx": nginx_version(),
        "locust_rs_fingerprint": locust_rs_fingerprint(),
        "cpus": psutil.cpu_count(),
        "load_average": os.getloadavg(),
    }


def all_runs(report: dict) -> list[dict]:
    stall = report.get("stall") or {}
    runs = [stall[k] for k in ("open", "oha", "closed") if stall.get(k)]
    return runs + [r for r in (report.get("rate") or {}).get("runs", []) if "build" in r]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="locust-rs-open-model-"))
    report: dict = {"argv": sys.argv, "started_utc": datetime.datetime.now(datetime.UTC).isoformat()}
    report["versions"] = versions(args)
    print(f"versions: {report['versions']}", flush=True)
    out: list[str] = []
    ok = True
    try:
        if "stall" in args.parts:
            if past_deadline(args):
                out.append(f"Part A skipped: past --stop-at {args.stop_at}")
            else:
                res = part_stall(args, workdir)
                if not args.oha_path_ok:
                    res["oha_missing"] = f"not installed ({args.oha}): cargo install oha --locked"
                report["stall"] = res
                out += ["### Part A: a 1 s stall at the midpoint (stall server)", "", stall_table(res, args), ""]
                o = (res.get("open") or {}).get("hdr") or {}
                h = (res.get("oha") or {}).get("oha") or {}
                r99, r999 = ratio(o.get("Corrected p99"), h.get("p99")), ratio(o.get("Corrected p99.9"), h.get("p99.9"))
                crit = r99 is not None and r999 is not None and abs(r99 - 1) <= 0.10 and abs(r999 - 1) <= 0.10
                res["criterion"] = {"p99_ratio": r99, "p99.9_ratio": r999, "within_10pct": crit}
                out.append(
                    f"Criterion (locust-rs open-model corrected p99 and p99.9 within 10 % of oha's): "
                    f"**{'met' if crit else 'NOT met'}** (p99 {f(r99, '.3f')}, p99.9 {f(r999, '.3f')})."
                )
                out.append("")
                ok &= crit
        if "rate" in args.parts:
            res = part_rate(args, workdir)
            report["rate"] = res
            out += [f"### Part B: rate accuracy (nginx, {args.duration} s per rate)", "", rate_table(res), ""]
            for r in res["runs"]:
                a = r.get("arrival")
                if not a:
                    ok = False
                    continue
                acc = ratio((a["Iterations"] or 0) + (a["Dropped iterations"] or 0), r["rate"] * (a["Elapsed"] or 0))
                r["accuracy"] = acc
                r["within_1pct"] = acc is not None and abs(acc - 1) <= 0.01
                ok &= r["within_1pct"]
            good = [f"{r['rate']:g}/s" for r in res["runs"] if r.get("within_1pct")]
            bad = [f"{r['rate']:g}/s" for r in res["runs"] if "within_1pct" in r and not r["within_1pct"]]
            out.append(
                f"Criterion ((iterations + dropped) / (rate × elapsed) within 1 %): met at {', '.join(good) or 'none'}"
                + (f"; **not met** at {', '.join(bad)}" if bad else "")
                + "."
            )
            out.append("")
    except KeyboardInterrupt:
        print("interrupted; stopping children", file=sys.stderr)
        ok = False
    finally:
        report["finished_utc"] = datetime.datetime.now(datetime.UTC).isoformat()
        builds = [r["build"] for r in all_runs(report) if r["build"] != "n/a"]
        report["builds"] = sorted(set(builds))
        if len(set(builds)) > 1:
            # An editable install rebuilt under the benchmark: its rows come from more than one build.
            out.append(
                f"**The installed locust_rs changed while this ran (builds per run: {', '.join(builds)}); rerun "
                "before comparing these rows.**"
            )
            ok = False
        elif builds:
            out.append(f"locust_rs build (hash of the installed package's files): {builds[0]}.")
        text = "\n".join(out)
        print()
        print(text)
        if args.json:
            # The CPU samples are long and only used above; keep the rest.
            def strip(o):
                if isinstance(o, dict):
                    return {k: strip(v) for k, v in o.items() if k != "samples"}
                if isinstance(o, list):
                    return [strip(v) for v in o]
                return o

            Path(args.json).write_text(json.dumps(strip(report), indent=2, default=str))
            print(f"wrote {args.json}")
        if args.keep_tmp:
            print(f"CSVs and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
