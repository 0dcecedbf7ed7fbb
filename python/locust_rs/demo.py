"""The VoiceAssist demo server: a stand-in for the API the VoiceAssist suite load-tests.

The server is written in Rust (axum) and runs on this process's tokio runtime. From Python::

    from locust_rs import demo

    with demo.start(port=0, register_per_minute=0) as server:
        print(server.url)  # http://127.0.0.1:PORT

From a shell::

    python -m locust_rs.demo --host 127.0.0.1 --port 8000
    voiceassist-demo --port 8000 --login-attempts-per-minute 0

Options, defaults and routes are in ``docs/demo-server.md``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from locust_rs._native import DemoServer

__all__ = ["DemoServer", "main", "start"]

# option name -> (type, help); defaults come from the native side, so they live in one place
_OPTIONS: dict[str, tuple[type, str]] = {
    "admin_email": (str, "email of the seeded admin account"),
    "admin_password": (str, "password of the seeded admin account"),
    "jwt_secret": (str, "HMAC secret of the tokens (default: random per start)"),
    "access_token_ttl": (int, "access-token lifetime, seconds"),
    "refresh_token_ttl": (int, "refresh-token lifetime, seconds"),
    "password_hash_iterations": (int, "PBKDF2-HMAC-SHA256 iterations per password hash"),
    "register_per_minute": (int, "registrations accepted per minute, server-wide (0: no limit)"),
    "login_attempts_per_minute": (int, "login attempts per account per minute (0: no limit)"),
    "max_users": (int, "users kept; one more evicts the oldest non-admin user"),
    "max_revoked_tokens": (int, "revoked token ids remembered until they expire"),
    "chat_latency_ms": (int, "mean added latency of a chat answer, ms (0: none)"),
    "chat_latency_jitter_ms": (int, "spread of the chat latency: uniform in mean +/- jitter, ms"),
    "max_conversations_per_user": (int, "conversations kept per user; one more evicts the user's oldest"),
    "max_conversations": (int, "conversations kept in all; one more evicts the oldest"),
    "max_messages_per_conversation": (int, "messages kept per conversation; the oldest are dropped"),
    "error_rate": (float, "fault injection: fraction (0..1) of non-health requests answered 500"),
    "latency_scale": (float, "fault injection: multiplies the chat latency"),
    "drop_rate": (float, "fault injection: probability (0..1) of dropping a chat answer mid-body"),
    "ws_max_message_size": (int, "largest realtime WebSocket message, bytes; a larger one closes with 1009"),
    "ws_max_audio_bytes": (int, "most audio bytes between audio_start and audio_end; more closes with 1009"),
    "ws_max_connections": (int, "most realtime WebSocket connections at once; more are refused with 503"),
    "max_upload_bytes": (int, "largest document upload, bytes (more is a 413)"),
    "document_processing_ms": (int, "ms a document stays 'processing' before 'ready' (0: at once)"),
    "max_documents": (int, "documents kept; one more evicts the oldest"),
    "access_log": (str, "access log, one line per request: '-' for stderr or a file path (default: off)"),
}


def start(host: str = "127.0.0.1", port: int = 0, **options: Any) -> DemoServer:
    """Start a demo server and return once it listens.

    :param host: address to bind; loopback unless told otherwise.
    :param port: port to bind; 0 picks a free one (read it back from ``.port`` or ``.url``).
    :param options: any of the server options (see ``docs/demo-server.md``), e.g.
        ``access_token_ttl=60`` or ``register_per_minute=0``.
    :return: the running server; ``.stop()`` it, or use it as a context manager.
    """
    return DemoServer(host, port, **options)


def _parser() -> argparse.ArgumentParser:
    defaults = DemoServer.default_options()
    p = argparse.ArgumentParser(
        prog="voiceassist-demo",
        description="Serve the VoiceAssist demo API until Ctrl-C or SIGTERM.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port to bind, 0 for any (default: %(default)s)")
    p.add_argument(
        "--print-openapi",
        action="store_true",
        help="print the OpenAPI document (what /openapi.json serves) and exit",
    )
    for name, (kind, text) in _OPTIONS.items():
        default = defaults.get(name)
        shown = "" if name in ("jwt_secret", "access_log") else f" (default: {default})"
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None, help=text + shown)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m locust_rs.demo`` and ``voiceassist-demo``."""
    args = _parser().parse_args(argv)
    if args.print_openapi:
        print(DemoServer.openapi_json())
        return 0
    options = {name: getattr(args, name) for name in _OPTIONS if getattr(args, name) is not None}
    try:
        server = start(args.host, args.port, **options)
    except (OSError, ValueError) as e:
        print(f"voiceassist-demo: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"VoiceAssist demo server listening on {server.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    print("VoiceAssist demo server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
