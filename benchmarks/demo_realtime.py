"""The demo server's realtime WebSocket under load: ping/pong and streamed chat answers, with the server's own CPU cost.

    python benchmarks/demo_realtime.py --connections 50 --duration 10

The server runs in its own process pinned to core 0 (its tokio runtime has one worker), with the chat latency set to
0; this script is the client, pinned to core 1: websocket-client on gevent, one greenlet per connection, each sending
its next frame as soon as the previous reply is complete (closed loop). A Python client saturates long before the
server, so the figure that describes the server is the last column: messages it handled per CPU-second of the
server process (user + system time from /proc, sampled around each phase).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import gevent  # noqa: E402
import websocket  # noqa: E402
from demo_wrk import cpu_seconds, free_port, pinned, start_server  # noqa: E402 - the wrk benchmark's helpers

ADMIN = {"email": "admin@voiceassist.local", "password": "admin12345"}


def login(base: str) -> str:
    req = urllib.request.Request(
        f"{base}/api/auth/login", data=json.dumps(ADMIN).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())["access_token"]


def ping_once(ws, i):
    ws.send(json.dumps({"type": "ping", "id": i}))
    reply = json.loads(ws.recv())
    assert reply["type"] == "pong" and reply["id"] == i, reply
    return 1  # frames received


def answer_once(ws, i):
    ws.send(json.dumps({"type": "message", "content": "How much does the Team plan cost?", "id": i}))
    frames = 0
    while True:
        reply = json.loads(ws.recv())
        frames += 1
        if reply["type"] == "message_complete":
            assert reply["citations"], reply
            return frames
        assert reply["type"] == "chunk", reply


def phase(url: str, connections: int, duration: float, step) -> dict:
    sockets = [websocket.create_connection(url, timeout=10) for _ in range(connections)]
    latencies: list[float] = []
    frames_in = [0]
    stop_at = time.monotonic() + duration

    def loop(ws):
        i = 0
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            frames = step(ws, i)  # not inlined: `+=` would read the total before step() yields to other greenlets
            frames_in[0] += frames
            latencies.append(time.perf_counter() - started)
            i += 1

    started = time.monotonic()
    jobs = [gevent.spawn(loop, ws) for ws in sockets]
    gevent.joinall(jobs, timeout=duration + 30)
    elapsed = time.monotonic() - started
    for ws in sockets:
        ws.close()
    failed = [j.exception for j in jobs if not j.successful()]
    if failed:
        raise SystemExit(f"{len(failed)} connections failed: {failed[0]!r}")
    latencies.sort()
    return {
        "requests": len(latencies),
        "per_s": len(latencies) / elapsed,
        "frames_out": frames_in[0],
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=50, help="WebSocket connections (default %(default)s)")
    ap.add_argument("--duration", type=float, default=10, help="seconds per phase (default %(default)s)")
    args = ap.parse_args()
    if pinned([], 1):  # taskset exists and there are two cores: the server has core 0, this client core 1
        os.sched_setaffinity(0, {1})
    port = free_port()
    proc = start_server(port, ["--chat-latency-ms", "0"])
    rows = []
    try:
        token = login(f"http://127.0.0.1:{port}")
        url = f"ws://127.0.0.1:{port}/api/realtime/ws?token={token}"
        for name, step in [("ping -> pong", ping_once), ("message -> chunks + message_complete", answer_once)]:
            before = cpu_seconds(proc.pid)
            r = phase(url, args.connections, args.duration, step)
            r["server_cpu_s"] = cpu_seconds(proc.pid) - before
            rows.append((name, r))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"\n{args.connections} connections, {args.duration:g} s per phase; server on core 0, client on core 1\n")
    columns = ["exchange", "exchanges/s", "p50 ms", "p99 ms", "frames out/exchange", "server CPU s"]
    print("| " + " | ".join([*columns, "frames out per server CPU-s"]) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        per_cpu = r["frames_out"] / r["server_cpu_s"] if r["server_cpu_s"] > 0 else float("inf")
        print(
            f"| {name} | {r['per_s']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['frames_out'] / max(r['requests'], 1):.1f} | {r['server_cpu_s']:.2f} | {per_cpu:,.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
