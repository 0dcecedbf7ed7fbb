"""Peak memory of a load generator: Locust's HttpUser and FastHttpUser against ours, one after another.

    python benchmarks/memory.py large-bodies --users 5 --size-mb 100 --duration 20
    python benchmarks/memory.py many-users --users 10000 --duration 30

``large-bodies``: every user fetches the same large body in a loop, from a local Python server. ``many-users``: many
users, each sending ``GET /`` once a second (``constant_pacing(1)``), to the local nginx of benchmarks/target_nginx.py.

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

    class Load(Base):
        wait_time = constant_pacing(1) if os.environ["SCENARIO"] == "many-users" else constant(0)

        @task
        def get(self):
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


def _hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run(scenario: str, variant: str, host: str, users: int, duration: int, workdir: Path) -> dict:
    result = workdir / f"{variant}.json"
    env = {**os.environ, "VARIANT": variant, "RESULT": str(result), "SCENARIO": scenario}
    # Many users spawn at 1,000 a second, as fast as Locust's spawner keeps up.
    rate = min(users, 1000)
    cmd = [sys.executable, "-m", "locust", "-f", str(workdir / "locustfile.py"), "--headless", "-u", str(users),
           "-r", str(rate), "-t", f"{duration}s", "--host", host, "--only-summary",
           "--stop-timeout", "10", "--loglevel", "WARNING"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    deadline = time.monotonic() + duration + 60
    while proc.poll() is None and time.monotonic() < deadline:
        peak = max(peak, _hwm_kib(proc.pid) or 0)
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    _, err = proc.communicate(timeout=30)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    figures = json.loads(result.read_text()) if result.exists() else {"requests": 0, "failures": 0, "error": err[-500:]}
    # CPU over the process's whole life (start-up and spawning included), in cores.
    return {"variant": variant, "peak_mib": peak / 1024, "cores": cpu / wall, **figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["large-bodies", "many-users"])
    parser.add_argument("--users", type=int, help="default: 5 (large-bodies), 10000 (many-users)")
    parser.add_argument("--size-mb", type=int, default=100, help="large-bodies: the body's size")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    users = args.users or (5 if args.scenario == "large-bodies" else 10_000)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        (workdir / "locustfile.py").write_text(LOCUSTFILE)
        if args.scenario == "many-users":
            host = stack.enter_context(NginxTarget()).url
            title = f"{users} users, GET / once a second each, {args.duration} s each"
        else:
            server = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(args.size_mb)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            stack.callback(server.wait, timeout=10)
            stack.callback(server.stdin.close)
            host = f"http://127.0.0.1:{int(server.stdout.readline())}"
            title = f"{users} users, {args.size_mb} MB bodies, {args.duration} s each"
        rows = [run(args.scenario, v, host, users, args.duration, workdir) for v in args.variants.split(",")]
    print(title)
    print(f"{'variant':<16} {'requests':>9} {'failures':>9} {'p99 ms':>9} {'CPU cores':>10} {'peak RSS MiB':>13}")
    for r in rows:
        p99 = r.get("p99_ms") or 0
        print(
            f"{r['variant']:<16} {r['requests']:>9} {r['failures']:>9} {p99:>9.1f} {r['cores']:>10.2f} "
            f"{r['peak_mib']:>13.0f}"
        )
        if "error" in r:
            print("   ", r["error"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
