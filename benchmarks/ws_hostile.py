"""Peak memory of a locust-rs WebSocket connection under two hostile servers, on loopback.

    python benchmarks/ws_hostile.py --seconds 15 [--python /path/to/other/python]

- ``flood``: the server streams 1 KiB binary frames as fast as the socket takes them; the client connects and
  never calls ``recv``.
- ``pingflood``: the server stops reading and sends 125-byte pings as fast as the socket takes them; the client
  waits in ``recv``.

Each case runs the client in its own process (``--python`` picks the interpreter, e.g. one whose PYTHONPATH holds
another build) for ``--seconds`` at most, sampling its resident memory every 100 ms; a client past ``--kill-at``
MiB is killed, so that an unbounded build cannot take the machine. Printed per case: peak RSS, the client's
outcome (its exception, or that it was still waiting), and how many bytes the server got out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

CASES = ("flood", "pingflood")


# -- the server (a child process) ---------------------------------------------------------------------------------


async def _serve(seconds: float) -> None:
    from websockets.asyncio.server import serve

    sent = {"bytes": 0}

    async def handler(ws):
        transport = ws.transport
        if ws.request.path.startswith("/pingflood"):
            transport.pause_reading()
            blob = (b"\x89\x7d" + b"p" * 125) * 8192
        else:
            frame = b"\x82\x7e\x04\x00" + b"x" * 1024  # binary, 1024-byte payload
            blob = frame * 1024
        end = time.monotonic() + seconds
        while time.monotonic() < end and not transport.is_closing():
            transport.write(blob)
            sent["bytes"] += len(blob)
            while transport.get_write_buffer_size() > 4 * len(blob) and not transport.is_closing():
                await asyncio.sleep(0.0005)
                if time.monotonic() > end:
                    break
        print(json.dumps({"server_sent": sent["bytes"]}), flush=True)
        transport.abort()

    async with serve(handler, "127.0.0.1", 0, max_size=None, ping_interval=None) as server:
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        await asyncio.sleep(seconds + 30)


# -- the client (a child process) ---------------------------------------------------------------------------------


def _client(url: str, case: str, seconds: float) -> None:
    import locust  # noqa: F401 - monkey-patches first
    from locust.env import Environment

    import gevent

    from locust_rs.websocket import WebSocketUser

    class U(WebSocketUser):
        host = url

    user = U(Environment(user_classes=[U]))
    ws = user.connect(f"/{case}")
    outcome = "still waiting"
    try:
        if case == "flood":
            gevent.sleep(seconds)
        else:
            ws.recv(timeout=seconds)
            outcome = "a message"
    except Exception as e:  # the outcome is what is measured
        outcome = f"{type(e).__name__}: {e}"
    print(json.dumps({"outcome": outcome, "pending": ws._native.pending}), flush=True)


# -- the parent -----------------------------------------------------------------------------------------------------


def run_case(case: str, python: str, seconds: float, kill_at_mib: float) -> dict:
    me = str(Path(__file__).resolve())
    server = subprocess.Popen(
        [sys.executable, me, "--serve", str(seconds)], stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    try:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        client = subprocess.Popen(
            [python, me, "--client", f"http://127.0.0.1:{port}", case, str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        proc = psutil.Process(client.pid)
        peak, killed, started = 0, False, time.monotonic()
        deadline = time.monotonic() + seconds + 20
        while client.poll() is None and time.monotonic() < deadline:
            try:
                peak = max(peak, proc.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            if peak > kill_at_mib * 2**20:
                client.kill()
                killed = True
                break
            time.sleep(0.1)
        if client.poll() is None:
            client.kill()
        out, err = client.communicate()
        result = json.loads(out.splitlines()[-1]) if out.strip() else {}
        if killed:
            result["outcome"] = f"killed at {kill_at_mib:.0f} MiB, {time.monotonic() - started:.1f} s in"
        elif not result:
            result["outcome"] = f"exit {client.returncode}: {err.strip().splitlines()[-1:] or ''}"
        server.terminate()
        rest, _ = server.communicate(timeout=10)
        sent = [json.loads(line)["server_sent"] for line in rest.splitlines() if "server_sent" in line]
        summary = {"case": case, "peak_rss_mib": round(peak / 2**20, 1), "server_sent_mib": round(sum(sent) / 2**20)}
        return summary | result
    finally:
        if server.poll() is None:
            server.kill()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        asyncio.run(_serve(float(sys.argv[2])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        _client(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--python", default=sys.executable, help="the client's interpreter")
    parser.add_argument("--kill-at", type=float, default=3072.0, help="MiB of client RSS at which to stop a case")
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    print("| case | peak RSS (MiB) | server sent (MiB) | client's outcome |")
    print("|---|---:|---:|---|")
    for case in args.cases.split(","):
        r = run_case(case, args.python, args.seconds, args.kill_at)
        print(f"| {case} | {r['peak_rss_mib']} | {r['server_sent_mib']} | {r['outcome']} |", flush=True)


if __name__ == "__main__":
    main()
