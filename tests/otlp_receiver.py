"""A minimal OTLP/HTTP receiver for the OpenTelemetry tests, meant to run in its own process.

``python tests/otlp_receiver.py OUT.jsonl [--lifetime S]`` serves, on 127.0.0.1:

* ``POST /v1/traces``, ``POST /v1/metrics``, ``POST /v1/logs``: a protobuf body (``application/x-protobuf``; gzip or
  deflate encoded when ``Content-Encoding`` says so) of the matching ``Export*ServiceRequest``. It is decoded and
  appended to ``OUT.jsonl`` as one line, ``{"signal": "traces"|"metrics"|"logs", "request": {...}}`` (the request as
  ``google.protobuf.json_format.MessageToDict`` gives it, camelCase names, 64-bit integers as strings), flushed at
  once. The answer is 200 with the empty ``Export*ServiceResponse``.
* anything else: 404; a body that does not decode: 400 (and nothing written).

On start-up it prints one JSON line on stdout, ``{"port": P}``. It exits when its stdin reaches EOF (the parent
closed it or died), or after ``--lifetime`` seconds, with ``tests/servers.py``'s process rules. Every blocking call
has a timeout. Only the stdlib, ``opentelemetry-proto`` and ``tests/servers.py`` (stdlib only) are used.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from servers import exit_after, serve_until_stdin_closes

# path -> (signal, request type, response type)
SIGNALS = {
    "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "/v1/metrics": (
        "metrics",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "/v1/logs": ("logs", logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
}

IDLE_KEEPALIVE_TIMEOUT = 30.0
MAX_BODY = 64 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = IDLE_KEEPALIVE_TIMEOUT  # bounds every read of an idle or stalled connection

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        if os.environ.get("LOCUST_RS_TESTSERVER_DEBUG"):
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def _answer(self, status: int, body: bytes = b"", ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._answer(413)
            return
        body = self.rfile.read(length) if length else b""
        route = SIGNALS.get(self.path.split("?", 1)[0])
        if route is None:
            self._answer(404, b"no such route")
            return
        signal, request_type, response_type = route
        try:
            encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding not in ("", "identity"):
                raise ValueError(f"unknown Content-Encoding {encoding!r}")
            request = request_type.FromString(body)
        except Exception as e:  # noqa: BLE001 - any undecodable body is the client's error
            self._answer(400, f"{type(e).__name__}: {e}".encode())
            return
        record = {"signal": signal, "request": MessageToDict(request)}
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self.server.out_lock:
            self.server.out.write(line)
            self.server.out.flush()
        self._answer(200, response_type().SerializeToString(), "application/x-protobuf")

    def do_GET(self):
        self._answer(404, b"POST only")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="JSONL file the decoded requests are appended to")
    parser.add_argument("--lifetime", type=float, default=300.0, help="hard limit, in seconds, on the process life")
    args = parser.parse_args(argv)

    exit_after(args.lifetime)
    server = Server(("127.0.0.1", 0), Handler)
    server.out = open(args.out, "a", encoding="utf-8")  # noqa: SIM115 - closed at exit
    server.out_lock = threading.Lock()
    serve_until_stdin_closes(server, {"port": server.server_address[1]})
    with server.out_lock:
        server.out.close()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
