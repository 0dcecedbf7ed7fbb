"""wrk against the VoiceAssist demo server, to show it is never the bottleneck of a load-generator benchmark.

    python benchmarks/demo_wrk.py --duration 10

The server runs in its own process pinned to one core (its tokio runtime has one worker), wrk on another, both on
loopback. Routes: ``GET /health`` and, once the chat routes exist, ``POST /api/chat/query`` with the chat latency set
to 0, authenticated as the seeded admin. Needs ``wrk`` (``apt-get install wrk``).
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ADMIN = {"email": "admin@voiceassist.local", "password": "admin12345"}
CHAT_LUA = """
wrk.method = "POST"
wrk.body = '{"query": "How does VoiceAssist keep my data secure?"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cmd: list[str], core: int) -> list[str]:
    # Pinning keeps "one core" honest on a 2-core machine; without taskset the figures are only indicative.
    return ["taskset", "-c", str(core), *cmd] if shutil.which("taskset") and os.cpu_count() >= 2 else cmd


def start_server(port: int, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "locust_rs.demo", "--port", str(port), "--login-attempts-per-minute", "0", *extra]
    proc = subprocess.Popen(pinned(cmd, 0), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"demo server did not start: {proc.stdout.read() if proc.stdout else ''}")


def login(base: str) -> str:
    req = urllib.request.Request(
        f"{base}/api/auth/login", data=json.dumps(ADMIN).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())["access_token"]


def chat_available(base: str, token: str) -> bool:
    req = urllib.request.Request(
        f"{base}/api/chat/query",
        data=b'{"query": "ping"}',
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5):
            return True
    except urllib.error.HTTPError as e:
        return e.code != 404


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc; 0 where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, duration: int, connections: int, script: str | None, server_pid: int) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    cpu0 = cpu_seconds(server_pid)
    out = subprocess.run(pinned(cmd, 1), capture_output=True, text=True, timeout=duration + 30).stdout
    cpu = cpu_seconds(server_pid) - cpu0
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "req_s": float(rps.group(1)) if rps else 0.0,
        "p50": p50.group(1) if p50 else "?",
        "p99": p99.group(1) if p99 else "?",
        "non_2xx": int(errors.group(1)) if errors else 0,
        # the server's own cost, steadier than req/s on a shared machine
        "req_per_cpu_s": int(total.group(1)) / cpu if total and cpu > 0 else 0.0,
        "cpu_s": cpu,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per route (default %(default)s)")
    ap.add_argument("--connections", type=int, default=50, help="wrk connections (default %(default)s)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # The chat options only exist once the chat routes do; an older server refuses unknown flags.
    proc = start_server(port, ["--chat-latency-ms", "0"]) if _has_chat_flag() else start_server(port, [])
    try:
        rows = [("GET /health", run_wrk(f"{base}/health", args.duration, args.connections, None, proc.pid))]
        token = login(base)
        if chat_available(base, token):
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
                f.write(CHAT_LUA % token)
            try:
                row = run_wrk(f"{base}/api/chat/query", args.duration, args.connections, f.name, proc.pid)
                rows.append(("POST /api/chat/query", row))
            finally:
                os.unlink(f.name)
        else:
            print("POST /api/chat/query: not built yet, skipped")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"\nwrk -t1 -c{args.connections} -d{args.duration}s; server pinned to one core, wrk to another\n")
    print("| route | req/s | server req/CPU-s | server CPU-s | p50 | p99 | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(
            f"| {name} | {r['req_s']:,.0f} | {r['req_per_cpu_s']:,.0f} | {r['cpu_s']:.2f} | {r['p50']} | {r['p99']} "
            f"| {r['non_2xx']} |"
        )
    return 0 if all(r["req_s"] > 0 and r["non_2xx"] == 0 for _, r in rows) else 1


def _has_chat_flag() -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "locust_rs.demo", "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    return "--chat-latency-ms" in out


if __name__ == "__main__":
    sys.exit(main())
