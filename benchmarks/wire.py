"""Response times as the wire saw them: a packet capture on the loopback device (Linux, root; stdlib only).

    with WireCapture(port=8089, cpu=1) as wire:
        ...                       # load against 127.0.0.1:8089
    wire.latencies_ms              # one per request: its first segment leaving, to its response's leaving

Each request's time runs from the moment the kernel passed the request's first segment to the loopback device to
the moment it passed the response's first segment (the stamps the device tap takes, SO_TIMESTAMPNS on an AF_PACKET
socket). That is what a load generator should report, however late it got round to writing or reading: the same
run's own truth, with no second run at "the same rate" whose arrivals are spaced differently.

One request at a time per connection (HTTP/1.1 without pipelining), a response in one segment (the small answers of
tests/stall_server.py), IPv4. The capture runs in its own process (pinned to ``cpu``), reads with a large buffer and
reports when stopped; its scheduling does not move the stamps, which the kernel took.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33


def latencies(sock: socket.socket, port: int, stop) -> tuple[list[float], int]:
    """Reads frames until ``stop()``; returns each request's wire time (ms) and how many frames were read."""
    waiting: dict[int, float] = {}
    out: list[float] = []
    frames = 0
    sock.settimeout(0.2)
    while not stop():
        try:
            data, anc, _flags, addr = sock.recvmsg(128, 64)
        except TimeoutError:
            continue
        except InterruptedError:
            continue
        if addr[2] != PACKET_OUTGOING or len(data) < 14 + 20 or data[12:14] != b"\x08\x00":
            continue
        frames += 1
        ip = data[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6:
            continue
        total = struct.unpack_from("!H", ip, 2)[0]
        src, dst = struct.unpack_from("!HH", ip, ihl)
        doff = (ip[ihl + 12] >> 4) * 4
        if total - ihl - doff <= 0:
            continue  # an ACK, a SYN, a FIN: no payload
        stamp = None
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                stamp = sec + nsec / 1e9
        if stamp is None:
            continue
        if dst == port and src not in waiting:
            waiting[src] = stamp
        elif src == port and dst in waiting:
            out.append((stamp - waiting.pop(dst)) * 1000.0)
    return out, frames


def serve(port: int, out: Path) -> int:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind(("lo", 0))
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 256 << 20)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    print("ready", flush=True)
    got, frames = latencies(sock, port, lambda: bool(stopping))
    out.write_text(json.dumps({"latencies_ms": got, "frames": frames}))
    return 0


class WireCapture:
    """Captures loopback traffic to ``port`` in a child process on ``cpu`` while the block runs."""

    def __init__(self, port: int, cpu: int | None = None) -> None:
        self.port = port
        self.cpu = cpu
        self.latencies_ms: list[float] = []
        self.error = ""
        self._out = Path(tempfile.mkstemp(prefix="wire_", suffix=".json")[1])
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> WireCapture:
        cmd = [sys.executable, __file__, "--port", str(self.port), "--out", str(self._out)]
        if self.cpu is not None:
            cmd = ["taskset", "-c", str(self.cpu), *cmd]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()  # "ready", or EOF when the capture could not start
        if line.strip() != "ready":
            self._proc.wait(timeout=10)
            self.error = (self._proc.stderr.read() if self._proc.stderr else "").strip().splitlines()[-1:]
            self.error = self.error[0] if self.error else "the capture did not start"
            self._proc = None
        return self

    def __exit__(self, *exc) -> None:
        if self._proc is None:
            return
        time.sleep(0.3)  # the last responses' frames
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            self.error = "the capture did not stop"
            return
        try:
            self.latencies_ms = json.loads(self._out.read_text())["latencies_ms"]
        except (OSError, ValueError, KeyError) as e:
            self.error = f"no capture results: {e}"
        finally:
            with contextlib.suppress(OSError):
                os.unlink(self._out)

    def percentile(self, q: float) -> float:
        """The q-quantile (0..1) of the captured times: the smallest with at least q of them at or below it."""
        xs = sorted(self.latencies_ms)
        if not xs:
            return float("nan")
        return xs[max(0, min(len(xs) - 1, math.ceil(q * len(xs)) - 1))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    return serve(args.port, args.out)


if __name__ == "__main__":
    sys.exit(main())
