"""A local OTLP/HTTP sink for the benchmark's ``--otel`` variants: accepts what an OpenTelemetry SDK exports, counts it,
and throws it away.

    python benchmarks/otlp_sink.py            # prints {"port": N}; GET /stats for the counts; Ctrl-C to stop

``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs`` are read to the end and answered ``200`` with an empty body (an
empty ``Export*ServiceResponse``: everything accepted). Per signal it counts requests and bytes (as sent, before any
``Content-Encoding`` is undone), and for traces the spans in each ``ExportTraceServiceRequest``, found by walking the
protobuf's three levels of length-delimited fields (resource spans, scope spans, spans) without decoding anything
else, so the standard library is enough. ``GET /stats`` returns the counts as JSON.

It listens on 127.0.0.1 only, in a process of its own: benchmarks/run.py starts one per ``--otel`` run and never counts
its CPU as the generator's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import signal
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIGNALS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}


# ---------------------------------------------------------------------------------------------------------------------
# counting spans in an ExportTraceServiceRequest


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _submessages(buf: memoryview, field: int):
    """The length-delimited values of ``field`` in the message ``buf``, skipping every other field."""
    i, end = 0, len(buf)
    while i < end:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(buf, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            length, i = _varint(buf, i)
            if number == field:
                yield buf[i : i + length]
            i += length
        else:
            raise ValueError(f"wire type {wire} does not occur in OTLP")
        if i > end:
            raise ValueError("truncated message")


def count_spans(body: bytes) -> int:
    """Spans in a serialized ``ExportTraceServiceRequest``: resource_spans = 1, its scope_spans = 2, their spans = 2."""
    n = 0
    for resource_spans in _submessages(memoryview(body), 1):
        for scope_spans in _submessages(resource_spans, 2):
            n += sum(1 for _ in _submessages(scope_spans, 2))
    return n


# ---------------------------------------------------------------------------------------------------------------------
# the server


class Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_signal = {name: {"requests": 0, "bytes": 0} for name in SIGNALS.values()}
        self.by_signal["traces"]["spans"] = 0
        self.undecodable = 0
        self.other_requests = 0

    def snapshot(self) -> dict:
        with self.lock:
            return {
                **{name: dict(c) for name, c in self.by_signal.items()},
                "undecodable": self.undecodable,
                "other_requests": self.other_requests,
            }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the exporters reuse one connection each
    server: SinkServer

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, body: bytes = b"", content_type: str = "application/x-protobuf") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - the name BaseHTTPRequestHandler dispatches to
        body = self._read_body()
        name = SIGNALS.get(self.path.split("?", 1)[0])
        counts = self.server.counts
        if name is None:
            with counts.lock:
                counts.other_requests += 1
            self._reply(404)
            return
        spans, bad = 0, False
        if name == "traces":
            try:
                encoding = self.headers.get("Content-Encoding", "").lower()
                raw = {"gzip": gzip.decompress, "deflate": zlib.decompress}.get(encoding, bytes)(body)
                spans = count_spans(raw)
            except (ValueError, OSError, zlib.error, IndexError):
                bad = True
        with counts.lock:
            c = counts.by_signal[name]
            c["requests"] += 1
            c["bytes"] += len(body)
            if name == "traces":
                c["spans"] += spans
            counts.undecodable += bad
        self._reply(200)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0] == "/stats":
            self._reply(200, json.dumps(self.server.counts.snapshot()).encode(), "application/json")
        else:
            self._reply(404)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's signature
        pass


class SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.counts = Counts()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    args = p.parse_args(argv)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    server = SinkServer(args.port)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print(json.dumps(server.counts.snapshot()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
