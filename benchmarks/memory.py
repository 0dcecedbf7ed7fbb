"""Peak memory of a load generator: Locust's HttpUser and FastHttpUser against ours, one after another.

    python benchmarks/memory.py large-bodies --users 5 --size-mb 100 --duration 20
    python benchmarks/memory.py many-users --users 10000 --duration 30
    python benchmarks/memory.py many-names --names 50000 --duration 30

``large-bodies``: every user fetches the same large body in a loop, from a local Python server. ``many-users``: many
users, each sending ``GET /`` once a second (``constant_pacing(1)``), to the local nginx of benchmarks/target_nginx.py.
``many-names``: 50 users with no wait time send ``GET /`` to the same nginx under ``--names`` request names in turn
(so every name is in use every few seconds), with every output on (``--csv``, ``--html``, so the ``.hlog`` too). Its
variants are locust-rs's FastHttpUser with the HDR outputs and with ``--no-hdr-metrics``; it adds requests per
second, the steady resident memory (the median over the middle half of the run) and the ``.hlog``'s growth per second.

Each variant is a headless Locust run of its own; the table gives its requests, failures and p99, the CPU it used over
its whole life (start-up and spawning included) in cores, and the peak resident memory of the process (the kernel's
high-water mark, VmHWM, read until the process ends). Loopback only, bounded in
time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from target_nginx import NginxTarget  # noqa: E402

SERVER = textwrap.dedent(
    """
    import http.server, sys, threading
    BODY = b"x" * (int(sys.argv[1]) << 20)
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        def log_message(self, *a):
            pass
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    s.daemon_threads = True
    print(s.server_port, flush=True)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    sys.stdin.read()
    """
)

LOCUSTFILE = textwrap.dedent(
    """
    import json, os
    from locust import constant, constant_pacing, events, task
    if os.environ["VARIANT"].startswith("locust_rs"):
        from locust_rs import FastHttpUser, HttpUser
    else:
        from locust import HttpUser
        from locust.contrib.fasthttp import FastHttpUser
    Base = FastHttpUser if os.environ["VARIANT"].endswith("fast") else HttpUser

    NAMES = int(os.environ.get("NAMES", "0"))
    turn = iter(range(1 << 62))

    class Load(Base):
        wait_time = constant_pacing(1) if os.environ["SCENARIO"] == "many-users" else constant(0)

        @task
        def get(self):
            if NAMES:
                self.client.get("/", name=f"/name/{next(turn) % NAMES}").content
            else:
                self.client.get("/").content

    @events.quitting.add_listener
    def _(environment, **kw):
        total = environment.stats.total
        with open(os.environ["RESULT"], "w") as f:
            json.dump({"requests": total.num_requests, "failures": total.num_failures,
                       "p99_ms": total.get_response_time_percentile(0.99)}, f)
    """
)

VARIANTS = ["locust_http", "locust_rs_http", "locust_fast", "locust_rs_fast"]
NAME_VARIANTS = ["locust_rs_fast", "locust_rs_fast_nohdr"]


def _status_kib(pid: int, field: str) -> int | None:
    """A memory figure of /proc/PID/status (``VmRSS``, ``VmHWM``) in KiB; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run(scenario: str, variant: str, host: str, users: int, duration: int, workdir: Path, names: int = 0) -> dict:
    result = workdir / f"{variant}.json"
    env = {**os.environ, "VARIANT": variant, "RESULT": str(result), "SCENARIO": scenario, "NAMES": str(names)}
    # Many users spawn at 1,000 a second, as fast as Locust's spawner keeps up.
    rate = min(users, 1000)
    cmd = [sys.executable, "-m", "locust", "-f", str(workdir / "locustfile.py"), "--headless", "-u", str(users),
           "-r", str(rate), "-t", f"{duration}s", "--host", host, "--only-summary",
           "--stop-timeout", "10", "--loglevel", "WARNING"]  # fmt: skip
    if scenario == "many-names":
        cmd += ["--csv", str(workdir / variant), "--html", str(workdir / f"{variant}.html")]
        if variant.endswith("_nohdr"):
            cmd.append("--no-hdr-metrics")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    # Standard error to a file: a pipe nobody reads until the end fills up and stalls Locust's end-of-run table.
    log = workdir / f"{variant}.stderr"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"), text=True)
    peak, samples = 0, []
    deadline = time.monotonic() + duration + 60
    while proc.poll() is None and time.monotonic() < deadline:
        peak = max(peak, _status_kib(proc.pid, "VmHWM") or 0)
        samples.append((time.monotonic() - started, _status_kib(proc.pid, "VmRSS") or 0))
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    err = log.read_text(errors="replace")
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    figures = json.loads(result.read_text()) if result.exists() else {"requests": 0, "failures": 0, "error": err[-500:]}
    # Steady: the median resident memory over the middle half of the run's measured part.
    middle = sorted(kib for t, kib in samples if duration * 0.25 < t < duration * 0.75) or [0]
    steady = middle[len(middle) // 2]
    hlog = workdir / f"{variant}.hlog"
    extra = {"hlog_mib_per_s": hlog.stat().st_size / 2**20 / duration} if hlog.exists() else {}
    # CPU over the process's whole life (start-up and spawning included), in cores.
    return {"variant": variant, "peak_mib": peak / 1024, "steady_mib": steady / 1024, "cores": cpu / wall,
            "rps": figures.get("requests", 0) / duration, **extra, **figures}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["large-bodies", "many-users", "many-names"])
    parser.add_argument("--names", type=int, default=50_000, help="many-names: how many request names")
    parser.add_argument("--users", type=int, help="default: 5 (large-bodies), 10000 (many-users)")
    parser.add_argument("--size-mb", type=int, default=100, help="large-bodies: the body's size")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--variants", help=f"default: {','.join(VARIANTS)} ({','.join(NAME_VARIANTS)} for many-names)")
    args = parser.parse_args()
    users = args.users or {"large-bodies": 5, "many-users": 10_000, "many-names": 50}[args.scenario]
    variants = args.variants or ",".join(NAME_VARIANTS if args.scenario == "many-names" else VARIANTS)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        (workdir / "locustfile.py").write_text(LOCUSTFILE)
        if args.scenario == "many-users":
            host = stack.enter_context(NginxTarget()).url
            title = f"{users} users, GET / once a second each, {args.duration} s each"
        elif args.scenario == "many-names":
            host = stack.enter_context(NginxTarget()).url
            title = f"{users} users, no wait, {args.names} names in turn, every output on, {args.duration} s each"
        else:
            server = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(args.size_mb)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            stack.callback(server.wait, timeout=10)
            stack.callback(server.stdin.close)
            host = f"http://127.0.0.1:{int(server.stdout.readline())}"
            title = f"{users} users, {args.size_mb} MB bodies, {args.duration} s each"
        rows = [run(args.scenario, v, host, users, args.duration, workdir, args.names) for v in variants.split(",")]
    print(title)
    names = args.scenario == "many-names"
    extra = f" {'req/s':>9} {'steady MiB':>11} {'peak/steady':>12} {'.hlog MiB/s':>12}" if names else ""
    print(
        f"{'variant':<21} {'requests':>9} {'failures':>9} {'p99 ms':>9} {'CPU cores':>10} {'peak RSS MiB':>13}{extra}"
    )
    for r in rows:
        p99 = r.get("p99_ms") or 0
        more = ""
        if names:
            ratio = r["peak_mib"] / r["steady_mib"] if r["steady_mib"] else 0
            more = f" {r['rps']:>9.0f} {r['steady_mib']:>11.0f} {ratio:>12.2f} {r.get('hlog_mib_per_s', 0):>12.2f}"
        print(
            f"{r['variant']:<21} {r['requests']:>9} {r['failures']:>9} {p99:>9.1f} {r['cores']:>10.2f} "
            f"{r['peak_mib']:>13.0f}{more}"
        )
        if "error" in r:
            print("   ", r["error"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
