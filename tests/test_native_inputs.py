"""No argument makes a native entry point panic (issue "Panics reach Python").

Every entry point of ``locust_rs._native`` (the list is ``python/locust_rs/_native.pyi``) is called with extreme and
malformed arguments drawn by hypothesis: integers past 64 bits, negative and zero counts, NaN, infinities, huge and
tiny floats, empty, 1 MB, NUL, CR/LF and lone-surrogate strings, bytes where a str is expected, wrong types. Each call
must return or raise an ``Exception`` (TypeError, ValueError, OverflowError, UnicodeEncodeError...). pyo3 raises a
Rust panic as ``pyo3_runtime.PanicException``, which derives from ``BaseException`` only: ``call`` turns it into a
test failure that names the input. A call that returns a ``Ticket`` is also waited for through the bridge, and the
``NativeError`` it may complete with must not be of kind ``internal``, the kind of a panic caught inside a tokio task.

Network: every URL and proxy is loopback. Hypothesis never writes a host: generated text only follows a fixed
``scheme://127.0.0.1:PORT/`` prefix, or makes up a whole URL without a ``:`` (so without a scheme, which cannot be
parsed at all), and a redirect the fake server sends is a path on the same origin.
"""

import locust  # noqa: F401,I001 - monkey-patches first

import base64
import functools
import json
import math
import re
import struct
import zlib

import gevent
import gevent.server
import pytest
import trustme
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from locust_rs import _native
from locust_rs._gevent import bridge as _bridge
from test_websocket import ws_server  # noqa: F401 - the module-scoped WebSocket echo server fixture

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,  # nothing written into the repository (.hypothesis/)
    # No "explain" phase: it re-runs a failure under a tracer for a hint, and was half of a failing run's time.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
# Long enough for any loopback answer; a ticket still open after this is a hang, and fails the test.
WAIT_LIMIT = 10.0
# A streamed body from the fake server is at most a few KB: more chunks than this means read_chunk loops.
MAX_CHUNKS = 1000
# Each of these once hung or exhausted memory, and is now bounded, so the inputs below reach them: a 1 h response
# corrected at a 1 µs interval (3.6e9 back-filled samples, 36 s under the GIL, now recorded a bucket at a time),
# HistogramSet.distribution with millions of ticks (now a ValueError above 1,000), and a V2 histogram header that
# claims a 4 GB payload (now refused before anything is allocated).
MAX_TICKS = 2**32 - 1
MAX_PAYLOAD_LEN = 2**32 - 1


# --- the checks -----------------------------------------------------------------------------------------------------


def _is_panic(e: BaseException) -> bool:
    return type(e).__name__ == "PanicException" and not isinstance(e, Exception)


def call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or the Exception it raised: any Exception is a fine answer to a bad argument.

    A PanicException is re-raised as an AssertionError: hypothesis only shrinks and reports the input of an
    Exception, a bare BaseException would stop the run without saying which input it was. Anything else that is not
    an Exception (KeyboardInterrupt, gevent.Timeout, GreenletExit) propagates as it is.
    """
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        return e
    except BaseException as e:
        if _is_panic(e):
            raise AssertionError(f"Rust panic reached Python from {getattr(fn, '__qualname__', fn)}: {e}") from e
        raise


def check_value(value):
    if isinstance(value, _native.NativeError):
        assert value.kind != "internal", f"a panic inside a tokio task: {value.message!r}"
        for attr in ("message", "errno", "request"):
            call(getattr, value, attr)
        call(repr, value)
    return value


def wait_for(ticket, limit: float = WAIT_LIMIT, may_block: bool = False):
    """The value ``ticket`` completes with, waited for through the bridge for at most ``limit`` seconds.

    ``may_block``: the job may rightly never finish (WsConnection.wait without a timeout and nothing coming); it is
    then cancelled after ``limit`` and None returned, instead of failing as a hang.
    """
    timer = gevent.Timeout(limit)
    timer.start()
    try:
        value = _bridge.wait(ticket)
    except gevent.Timeout as t:
        if t is not timer:
            raise
        if may_block:
            return None
        raise AssertionError(f"ticket {ticket.id} had no result after {limit} s: a hang") from None
    finally:
        timer.close()
    return check_value(value)


def resolve(result, limit: float = WAIT_LIMIT, may_block: bool = False):
    """What a call gave, followed to the end: a Ticket waited for, a response read, a WebSocket closed."""
    if isinstance(result, _native.Ticket):
        result = wait_for(result, limit, may_block)
    if isinstance(result, _native.NativeResponse):
        read_response(result)
    elif isinstance(result, _native.WsConnection):
        wait_for(result.close())
    return result


def read_response(resp, header_names=()):
    for attr in (
        "status_code",
        "reason",
        "url",
        "response_time",
        "content",
        "content_length",
        "http_version",
        "body_error",
        "redirected",
        "is_stream",
    ):
        check_value(call(getattr, resp, attr))
    call(resp.headers)
    call(resp.history)
    for name in header_names:
        call(resp.header, name)
    if resp.is_stream:
        for _ in range(MAX_CHUNKS):
            chunk = resolve(call(resp.read_chunk))
            if not isinstance(chunk, bytes):
                break
        else:
            raise AssertionError(f"read_chunk still returned data after {MAX_CHUNKS} chunks")
        # Past the end, and over again: None or an error, never a panic.
        resolve(call(resp.read_chunk))
    else:
        call(resp.read_chunk)


def read_properties(obj, names):
    for name in names:
        check_value(call(getattr, obj, name))


# --- values ---------------------------------------------------------------------------------------------------------


class Huge(str):
    """A long string that prints as its recipe, so a falsifying example stays readable."""

    def __repr__(self):
        return f"{self[:1]!r} * {len(self)}"


class HugeBytes(bytes):
    def __repr__(self):
        return f"{self[:1]!r} * {len(self)}"


class ManyHeaders(dict):
    def __repr__(self):
        return f"{{f'{self.prefix}{{i}}': 'v' for i in range({len(self)})}}"


@functools.cache
def many_headers(args):
    """``n`` distinct header names; cached, as building 40,000 of them for each example and shrink step is slow."""
    n, prefix = args
    d = ManyHeaders((f"{prefix}{i}", "v") for i in range(n))
    d.prefix = prefix
    return d


class ManyPairs(list):
    def __repr__(self):
        return f"[(f'x-{{i}}', 'v') for i in range({len(self)})]"


class Unprintable:
    def __str__(self):
        raise ValueError("no str for you")

    def __repr__(self):
        return "Unprintable()"


class BadNumber:
    """Fails every numeric conversion pyo3 may try."""

    def __index__(self):
        raise ValueError("no index")

    def __float__(self):
        raise ValueError("no float")

    def __repr__(self):
        return "BadNumber()"


def opt(strategy):
    return st.one_of(st.none(), strategy)


def mostly(strategy, wrong, one_in=8):
    """``strategy``, and ``wrong`` one draw in ``one_in``.

    A wrong type, or an int outside the parameter's range, stops a call in pyo3's argument conversion before any of
    the Rust code runs: drawn as often as the rest, they would leave few calls that get in. They are still tried.
    """
    return st.integers(0, one_in - 1).flatmap(lambda i: wrong if i == 0 else strategy)


EDGE_INTS = (
    [0, 1, -1, 2, 255, 256, 1000, 1005, 1006, 1015, 4999, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1]
    + [2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**100, -(2**31), -(2**63), -(2**63) - 1]
    + [-(2**64)]
)
INTS = st.one_of(st.sampled_from(EDGE_INTS), st.integers(), st.integers(-(2**70), 2**70))


def ints(lo, hi, *edges):
    """An int of a parameter's range [lo, hi], its bounds and ``edges`` likelier; any int now and then."""
    return mostly(st.one_of(st.sampled_from([lo, hi, *edges]), st.integers(lo, hi)), INTS)


U16 = ints(0, 2**16 - 1, 1, 1000, 1005, 1006)
U32 = ints(0, 2**32 - 1, 1, 2**31)
U64 = ints(0, 2**64 - 1, 1, 2**32, 2**63)
I64 = ints(-(2**63), 2**63 - 1, -1, 0, 1)
EDGE_FLOATS = (
    [math.nan, -math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, -5e-324, 1e-300]
    + [2.2250738585072014e-308, 1e-9, 0.0004, 0.0005, 0.001, 0.5, 1.0, 1000.0, 3.6e6, 3.6e9, 1e20]
    + [-1e20, 1e308, -1e308, 1.7976931348623157e308, float(2**53), float(2**63), float(2**64)]
)
FLOATS = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats())
JUNK = st.sampled_from([None, True, b"x", "x", bytearray(b"x"), [], [1], (), {}, 1j, Unprintable(), BadNumber()])
# Where a float is expected; an int converts too, unless past what a float holds.
NUMBERS = mostly(st.one_of(FLOATS, st.integers(-(2**64), 2**64)), st.one_of(INTS, st.booleans(), JUNK))
FLAGS = mostly(st.booleans(), st.one_of(JUNK, INTS))

ANY_CHAR = st.characters(exclude_categories=())  # lone surrogates included
SPECIAL_TEXT = (
    ["", " ", "\x00", "a\x00b", "\r\n", "\r", "\n", "x\r\nX-Injected: 1", "\t", "\x7f", "\x1b[0m", "\ufeff", "\u2028"]
    + ["\ud800", "\udfff", "a\udc80b", "\u0130", "\u00e9", "\u00df", "\U0001f600", "\U0010ffff", "\uffff"]
    + ["%", "%zz", "%00", "%2F", "?", "#", "[", "]", "@", ";", ",", "=", '"', "\\", "..", "a" * 255, "a" * 256]
)
HUGE_TEXT = st.sampled_from([1 << 10, 1 << 16, 1 << 20]).map(lambda n: Huge("a" * n))
HUGE_BYTES = st.sampled_from([1 << 10, 1 << 16, 1 << 20]).map(lambda n: HugeBytes(b"b" * n))
TEXT = st.one_of(st.sampled_from(SPECIAL_TEXT), st.text(ANY_CHAR, max_size=40), st.text(max_size=8), HUGE_TEXT)
WRONG_STR = st.one_of(st.binary(max_size=16), JUNK)
STR_ARG = mostly(TEXT, WRONG_STR)
# Without a ":" there is no scheme, so nothing a URL parser accepts; without "//" nothing that looks like a host.
NO_SCHEME_TEXT = TEXT.map(lambda s: s.replace(":", "_").replace("/", "/_"))

HEADER_NAMES = mostly(
    st.one_of(
        st.sampled_from(
            ["Host", "Content-Length", "Transfer-Encoding", "Cookie", "Authorization", "Connection"]
            + ["Upgrade", "Accept-Encoding", "User-Agent", "Expect", "TE", "X-Dup", "x-dup", ":authority"]
            + [":path", "", " ", "a b", "a:b", "\u00e9", "\ud800", "\x00", "a\r\nb"]
        ),
        TEXT,
    ),
    st.one_of(st.binary(max_size=8), INTS),
    one_in=16,
)
HEADER_VALUES = mostly(
    st.one_of(
        st.sampled_from(["", "100-continue", "chunked", "close", "-1", "18446744073709551616", "\x00", "a\r\nb"]),
        TEXT,
        st.binary(max_size=16),
        FLOATS,
        INTS,
        st.none(),
    ),
    st.sampled_from([Unprintable(), BadNumber(), [], {}]),
    one_in=16,
)
# http's HeaderMap holds 32,768 entries at most; it panics on insert/append past 24,576 names.
MANY_HEADERS = st.tuples(
    st.sampled_from([24577, 40000, 32768, 24576, 24575, 20000, 16384]), st.sampled_from(["x-", "y-"])
).map(many_headers)
HEADER_DICTS = mostly(st.one_of(st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=5), MANY_HEADERS), JUNK)

BODIES = mostly(
    st.one_of(st.binary(max_size=64), HUGE_BYTES),
    st.one_of(st.text(max_size=4), st.builds(bytearray, st.binary(max_size=8)), JUNK),
)
TIMEOUT_PAIRS = mostly(
    st.tuples(opt(NUMBERS), opt(NUMBERS)),
    st.one_of(st.sampled_from([(1.0,), (1.0, 2.0, 3.0), [1.0, 2.0], "ab", (BadNumber(), 1.0)]), JUNK),
)
METHODS = mostly(
    st.one_of(
        st.sampled_from(
            ["GET", "get", "gEt", "POST", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PATCH", "DELETE", "PUT", ""]
            + [" ", "G E T", "GET\r\n", "GET\x00", "\u00c4\u00d6", "\ud800", "X" * 10000]
        ),
        TEXT,
    ),
    WRONG_STR,
)


def http_urls(port: int):
    """A URL whose host, if it has one, is loopback, with ``port``."""
    prefixes = st.sampled_from(
        [f"http://127.0.0.1:{port}/", f"https://127.0.0.1:{port}/", f"HTTP://127.0.0.1:{port}/"]
        + [f"http://[::1]:{port}/", f"http://127.1:{port}/", f"http://2130706433:{port}/"]
        + [f"http://u:p@127.0.0.1:{port}/", f"http://127.0.0.1:{port}/?", f"http://127.0.0.1:{port}/#"]
    )
    fixed = [
        "",
        "http:",
        "http://",
        "https://",
        "http:///",
        f"http://:{port}/",
        "http://[::1",
        "http://[::1]:/",
        "http://127.0.0.1:65536/",
        "http://127.0.0.1:-1/",
        "http://127.0.0.1:99999999999999999999/",
        "http://127.0.0.1:port/",
        f"ftp://127.0.0.1:{port}/",
        "file:///nonexistent",
        f"ws://127.0.0.1:{port}/",
        "http://%zz/",
        "http://\x00/",
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{port}?q",
        f"http://127.0.0.1.:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"http://127.0.0.1:{port}/\ud800",
    ]
    return mostly(
        st.one_of(st.builds(lambda p, t: p + t, prefixes, TEXT), NO_SCHEME_TEXT, st.sampled_from(fixed)),
        WRONG_STR,
    )


def proxy_lists(port: int):
    urls = mostly(
        st.one_of(
            st.sampled_from(
                [
                    f"http://127.0.0.1:{port}",
                    f"https://127.0.0.1:{port}",
                    f"socks5://127.0.0.1:{port}",
                    f"socks5h://127.0.0.1:{port}",
                    f"socks4://127.0.0.1:{port}",
                    f"socks4a://127.0.0.1:{port}",
                    f"127.0.0.1:{port}",
                    f"http://u:p@127.0.0.1:{port}",
                    f"http://127.0.0.1:{port}/",
                    "",
                    "http://",
                    "socks5://",
                    f"ftp://127.0.0.1:{port}",
                    "http://127.0.0.1:99999",
                    "http://[::1",
                    "\ud800",
                ]
            ),
            st.builds(lambda t: f"http://127.0.0.1:{port}/" + t, TEXT),
        ),
        WRONG_STR,
        one_in=16,
    )
    keys = mostly(
        st.one_of(
            st.sampled_from(
                ["http", "https", "all", "HTTP", "all://", "http://127.0.0.1", f"http://127.0.0.1:{port}"]
                + ["https://127.0.0.1", "no_proxy", "no", ""]
            ),
            TEXT,
        ),
        st.binary(max_size=4),
        one_in=16,
    )
    return mostly(st.lists(st.tuples(keys, urls), max_size=4), JUNK)


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory):
    """Paths for ca_bundle / client_cert: real PEMs, garbage, directories, a missing file."""
    d = tmp_path_factory.mktemp("pem")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    garbage_der = base64.encodebytes(b"\x30\x82\xff\xff" + bytes(64))
    files = {
        "ca.pem": ca.cert_pem.bytes(),
        "chain.pem": cert.cert_chain_pems[0].bytes(),
        "key.pem": cert.private_key_pem.bytes(),
        "both.pem": cert.private_key_and_cert_chain_pem.bytes(),
        "empty.pem": b"",
        "binary.pem": bytes(range(256)) * 4,
        "bad-base64.pem": b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "bad-der.pem": b"-----BEGIN CERTIFICATE-----\n" + garbage_der + b"-----END CERTIFICATE-----\n",
        "truncated.pem": ca.cert_pem.bytes()[:200],
        "bad-key.pem": b"-----BEGIN PRIVATE KEY-----\n" + garbage_der + b"-----END PRIVATE KEY-----\n",
        "bad-ec-key.pem": b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        "bad-rsa-key.pem": b"-----BEGIN RSA PRIVATE KEY-----\n\n-----END RSA PRIVATE KEY-----\n",
        "huge.pem": b"-----BEGIN CERTIFICATE-----\n" + b"A" * (1 << 20) + b"\n-----END CERTIFICATE-----\n",
    }
    for name, content in files.items():
        (d / name).write_bytes(content)
    hashed = d / "hashed"
    hashed.mkdir()
    (hashed / "0123abcd.0").write_bytes(files["ca.pem"])
    (hashed / "deadbeef.0").write_bytes(files["binary.pem"])
    (hashed / "deadbeef.x").write_bytes(files["bad-der.pem"])
    (d / "empty-dir").mkdir()
    return d, [str(d / n) for n in files] + [str(hashed), str(d / "empty-dir"), str(d / "missing.pem")]


def file_paths(cert_files):
    base, files = cert_files
    # Generated names stay inside the temporary directory: no separator, so no /dev/zero or /proc.
    names = TEXT.map(lambda s: "f" + s.replace("/", "_"))
    return mostly(st.one_of(st.sampled_from(files), names.map(lambda n: str(base) + "/" + n)), WRONG_STR)


def cert_pairs(cert_files):
    paths = file_paths(cert_files)
    return mostly(
        st.tuples(paths, opt(paths)),
        st.one_of(st.sampled_from([("a",), ("a", "b", "c"), "a", ["a", None]]), JUNK),
    )


# --- loopback servers -----------------------------------------------------------------------------------------------


class RawHTTP:
    """A loopback server that reads a request head and answers whatever bytes ``response`` holds, then closes."""

    def __init__(self):
        self.response = b""
        self.server = gevent.server.StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()
        self.port = self.server.server_port

    def _handle(self, sock, _addr):
        try:
            with gevent.Timeout(5, False):
                head = b""
                while b"\r\n\r\n" not in head and len(head) < (4 << 20):
                    data = sock.recv(65536)
                    if not data:
                        break
                    head += data
                sock.sendall(self.response)
        except OSError:
            pass  # the client gave up first: what it makes of that is the point, not the server's error
        finally:
            sock.close()


@pytest.fixture(scope="module")
def raw_http():
    server = RawHTTP()
    try:
        yield server
    finally:
        server.server.stop(timeout=1)


@pytest.fixture(scope="module")
def closing_port():
    """A loopback port that accepts and closes at once: gets an https request past TCP, into loading its TLS files."""
    server = gevent.server.StreamServer(("127.0.0.1", 0), lambda sock, _addr: sock.close())
    server.start()
    try:
        yield server.server_port
    finally:
        server.stop(timeout=1)


def _neutralize_location(b: bytes) -> bytes:
    # No generated byte may spell a Location header: the client would follow it to whatever host it names.
    return re.sub(rb"(?i)location", b"x-moved", b)


SAFE_LOCATION = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/\\:"), max_size=20
).map(lambda p: b"/" + p.encode())  # a path on the same origin: no second slash, backslash or scheme


def _response(version, status, reason, headers, location, body):
    head = version + b" " + status + b" " + reason + b"\r\n"
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    head = _neutralize_location(head)
    if location is not None:
        head += b"Location: " + location + b"\r\n"
    # After a 1xx head the body is read as the next response's head.
    return head + b"\r\n" + _neutralize_location(body)


FIXED_RESPONSES = [
    b"",
    b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nx",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: \xff\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",
    b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 4\r\n\r\n\xff\xff\xff\xff",
    b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: 4\r\n\r\nxxxx",
    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip, gzip, br, identity, x\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 999 \xff\xfe\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n",
    b"HTTP/1.1 200 OK\r\nX: " + b"a" * (1 << 20) + b"\r\n\r\n",
    b"HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 302 Found\r\nLocation: /\xff\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 302 Found\r\nLocation: \r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nSet-Cookie: a=b; Domain=127.0.0.1; Max-Age=99999999999999999999\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nSet-Cookie: \xff=\xfe; Path=\xff\r\nSet-Cookie: =\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\nuntil the connection closes",
    b"HTTP/1.1 200 OK\r\n Folded: header\r\n\r\n",
    b"\x00\x00\x12\x04\x00\x00\x00\x00\x00",
]
RAW_RESPONSES = st.one_of(
    st.builds(
        _response,
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"HTTP/0.9", b"HTTP/1.1 ", b"http/1.1", b"ICY", b""]),
        st.one_of(
            st.sampled_from(
                [b"200", b"204", b"301", b"302", b"303", b"307", b"308", b"100", b"101", b"199", b"999", b"000"]
                + [b"1000", b"-1", b"", b"20x"]
            ),
            st.integers(0, 1000).map(lambda n: str(n).encode()),
        ),
        st.one_of(st.just(b"OK"), st.binary(max_size=32)),
        st.lists(
            st.tuples(
                st.one_of(
                    st.sampled_from(
                        [b"Content-Length", b"Transfer-Encoding", b"Content-Encoding", b"Set-Cookie", b"Content-Type"]
                        + [b"Connection", b"Upgrade", b"Trailer", b"X-A", b""]
                    ),
                    st.binary(max_size=16),
                ),
                st.one_of(
                    st.sampled_from(
                        [b"chunked", b"gzip", b"br", b"deflate", b"identity, gzip", b"-1", b"0", b"5"]
                        + [b"18446744073709551616", b"close", b"a=b; Path=/", b"a=b; Domain=127.0.0.1"]
                        + [b"x=\xff; Max-Age=-1"]
                    ),
                    st.binary(max_size=32),
                ),
            ),
            max_size=6,
        ),
        opt(SAFE_LOCATION),
        st.one_of(st.binary(max_size=64), st.sampled_from([b"5\r\nhello\r\n0\r\n\r\n", b"-1\r\n", b"\x1f\x8b\x08"])),
    ),
    st.binary(max_size=128).map(_neutralize_location),
    st.sampled_from(FIXED_RESPONSES),
)


# --- the module's functions -----------------------------------------------------------------------------------------


def test_the_harness_sees_a_panic_inside_a_task():
    """The ``internal`` check is live: a task that panics fails ``wait_for`` (a build with the test-hooks feature)."""
    if not hasattr(_native, "_submit_panicking_task"):
        pytest.skip("built without the test-hooks cargo feature")
    with pytest.raises(AssertionError, match="panic inside a tokio task"):
        wait_for(_native._submit_panicking_task())


@FUZZ
@given(arg=st.one_of(INTS, FLOATS, JUNK), keyword=st.booleans())
def test_configure(arg, keyword):
    # With the runtime already built, no count set here builds one (2**63 threads would be a bad day).
    _native.wakeup_fd()
    saved = _native.configure()
    try:
        result = call(_native.configure, worker_threads=arg) if keyword else call(_native.configure, arg)
        if not isinstance(result, Exception):
            assert isinstance(result, int) and result > 0
    finally:
        _native.configure(saved)
    assert _native.configure() == saved


@FUZZ
@given(max_=st.one_of(INTS, FLOATS, JUNK))
def test_drain_and_flush(max_):
    # drain takes finished jobs out of the bridge's hands: only safe while no greenlet waits for one.
    assert _bridge.pending() == 0
    result = call(_native.drain, max_)
    if not isinstance(result, Exception):
        for _ticket_id, value in result:
            check_value(value)
    call(_native.drain, max=max_)
    call(_native.flush)
    call(_native.flush, max_)


@FUZZ
@given(args=st.lists(st.one_of(NUMBERS, STR_ARG), max_size=2))
def test_functions_without_arguments_and_classes_without_constructors(args):
    for fn in (
        _native.runtime_started,
        _native.wakeup_fd,
        _native.wakeup_backend,
        _native.ws_counters,
        _native.ws_clock_ns,
    ):
        call(fn)
        call(fn, *args)
    for cls in (
        _native.Ticket,
        _native.NativeError,
        _native.NativeResponse,
        _native.WsConnection,
        _native.StatsEntryCore,
    ):
        call(cls, *args)


@FUZZ
@given(data=st.data())
def test_ticket_cancel(data, refused_port):
    client = _native.Client()
    ticket = client.request("GET", f"http://127.0.0.1:{refused_port}/")
    call(getattr, ticket, "id")
    for _ in range(data.draw(st.integers(1, 3), label="cancels")):
        call(ticket.cancel)
    call(ticket.cancel, *data.draw(st.lists(NUMBERS, min_size=1, max_size=2), label="extra args"))
    # A completed ticket cancelled late.
    done = client.request("GET", f"http://127.0.0.1:{refused_port}/")
    resolve(done)
    call(done.cancel)


# --- HTTP -----------------------------------------------------------------------------------------------------------


@FUZZ
@given(concurrency=mostly(U64, st.one_of(FLOATS, JUNK)), use=st.booleans())
def test_connection_pool(concurrency, use, refused_port):
    pool = call(_native.ConnectionPool, concurrency)
    call(_native.ConnectionPool, concurrency=concurrency)
    if not isinstance(pool, _native.ConnectionPool):
        return
    read_properties(pool, ["concurrency"])
    call(pool.idle_connections)
    # A concurrency beyond what the semaphore holds once read as 6917529027641081857 requests in flight.
    assert call(pool.in_flight) == 0
    if use:
        client = _native.Client(pool=pool)
        assert client.pool is pool
        resolve(call(client.request, "GET", f"http://127.0.0.1:{refused_port}/"))
        call(pool.in_flight)
    call(pool.close)
    call(pool.close)
    call(pool.idle_connections)


def client_kwargs(port, cert_files):
    paths = file_paths(cert_files)
    return st.fixed_dictionaries(
        {},
        optional={
            "network_timeout": opt(NUMBERS),
            "connection_timeout": opt(NUMBERS),
            "max_redirects": mostly(U32, JUNK),
            "max_retries": mostly(U32, JUNK),
            "insecure": FLAGS,
            "headers": opt(HEADER_DICTS),
            "proxy_host": opt(
                mostly(
                    st.sampled_from(["127.0.0.1", "", "127.0.0.1\x00"]), st.sampled_from([b"127.0.0.1", "\ud800", 1])
                )
            ),
            "proxy_port": opt(mostly(st.one_of(st.just(port), U16), JUNK)),
            "pool": opt(mostly(st.builds(_native.ConnectionPool), JUNK)),
            "concurrency": mostly(U64, JUNK),
            "http2_prior_knowledge": FLAGS,
            "ca_bundle": opt(paths),
            "client_cert": opt(cert_pairs(cert_files)),
        },
    )


@FUZZ
@given(data=st.data())
def test_client_constructor(data, refused_port, closing_port, cert_files):
    kwargs = data.draw(client_kwargs(refused_port, cert_files), label="kwargs")
    client = call(_native.Client, **kwargs)
    if not isinstance(client, _native.Client):
        return
    read_properties(client, ["pool"])
    # Bounded retries only: a retry is immediate against these ports, but 2**32 of them are not.
    if isinstance(kwargs.get("max_retries"), int) and kwargs["max_retries"] > 100:
        return
    # The client's own timeouts are the ones under test, so none is given; but a proxy on a drawn port (or on the
    # default 8080) could be a loopback service that never answers, and then one is.
    proxied = kwargs.get("proxy_host") is not None and kwargs.get("proxy_port") != refused_port
    timeout = (2.0, 2.0) if proxied else None
    for url in (f"http://127.0.0.1:{refused_port}/", f"https://127.0.0.1:{closing_port}/"):
        resolve(call(client.request, "GET", url, timeout=timeout))
    call(client.cookies)


def request_kwargs(port, cert_files):
    paths = file_paths(cert_files)
    return st.fixed_dictionaries(
        {},
        optional={
            "headers": opt(HEADER_DICTS),
            "body": opt(BODIES),
            "allow_redirects": FLAGS,
            "stream": FLAGS,
            "timeout": opt(TIMEOUT_PAIRS),
            "insecure": opt(FLAGS),
            "replace_defaults": FLAGS,
            "max_redirects": opt(mostly(U32, JUNK)),
            "requests_redirects": FLAGS,
            "ca_bundle": opt(paths),
            "client_cert": opt(cert_pairs(cert_files)),
            "proxies": opt(proxy_lists(port)),
        },
    )


@FUZZ
@given(data=st.data())
def test_client_request(data, refused_port, closing_port, cert_files):
    client = _native.Client(network_timeout=5, connection_timeout=5)
    method = data.draw(METHODS, label="method")
    port = data.draw(st.sampled_from([refused_port, closing_port]), label="port")
    url = data.draw(http_urls(port), label="url")
    kwargs = data.draw(request_kwargs(refused_port, cert_files), label="kwargs")
    resolve(call(client.request, method, url, **kwargs))
    call(client.request)
    call(client.request, method)


@FUZZ
@given(data=st.data())
def test_client_reads_malformed_responses(data, raw_http):
    raw_http.response = data.draw(RAW_RESPONSES, label="response")
    client = call(
        _native.Client,
        network_timeout=5,
        connection_timeout=5,
        http2_prior_knowledge=data.draw(st.booleans(), label="http2_prior_knowledge"),
        headers=data.draw(opt(MANY_HEADERS), label="client headers"),
    )
    if not isinstance(client, _native.Client):
        return
    method = data.draw(st.sampled_from(["GET", "HEAD", "POST", "OPTIONS"]), label="method")
    path = data.draw(TEXT, label="path")
    kwargs = data.draw(
        st.fixed_dictionaries(
            {
                "stream": st.booleans(),
                "allow_redirects": st.booleans(),
                "max_redirects": st.integers(0, 5),
                "requests_redirects": st.booleans(),
            },
            optional={"headers": MANY_HEADERS, "body": st.binary(max_size=64)},
        ),
        label="kwargs",
    )
    result = resolve(call(client.request, method, f"http://127.0.0.1:{raw_http.port}/" + path, **kwargs))
    if isinstance(result, _native.NativeResponse):
        read_response(result, data.draw(st.lists(STR_ARG, max_size=4), label="header names"))
    call(client.cookies)
    call(client.cookie_header, f"http://127.0.0.1:{raw_http.port}/")


OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize("names", [10_000, 10_001, 24575, 24577, 40000])
@pytest.mark.parametrize("door", ["Client", "request", "ws_connect"])
def test_many_header_names(door, names, raw_http, refused_port):
    """Every place a header map is built, around the 24,576 names past which http's HeaderMap panics on insert
    ("size overflows MAX_SIZE"). More than 10,000 headers from Python are a ValueError that says so; hypothesis
    draws such sizes as well: this tries each door with each, every run."""
    raw_http.response = OK_RESPONSE
    url = f"http://127.0.0.1:{raw_http.port}/"
    if door == "Client":
        result = call(_native.Client, headers=many_headers((names, "x-")))
        if isinstance(result, _native.Client):
            resolve(call(result.request, "GET", url))
    elif door == "request":
        result = call(_native.Client().request, "GET", url, headers=many_headers((names, "x-")))
        resolve(result)
    else:
        pairs = ManyPairs((f"x-{i}", "v") for i in range(names))
        result = call(_native.ws_connect, f"ws://127.0.0.1:{refused_port}/", headers=pairs)
        resolve(result)
    if names > 10_000:
        assert isinstance(result, ValueError) and "too many headers" in str(result), result


def test_the_most_headers_of_a_client_and_a_request_together(raw_http):
    # Each map at the limit: the request's headers are the client's defaults plus its own, and they must still fit.
    raw_http.response = OK_RESPONSE
    client = _native.Client(headers=many_headers((10_000, "x-")))
    value = resolve(call(client.request, "GET", f"http://127.0.0.1:{raw_http.port}/", many_headers((10_000, "y-"))))
    assert isinstance(value, _native.NativeResponse), value


@FUZZ
@given(data=st.data())
def test_client_cookies(data, raw_http):
    client = _native.Client()
    origin = f"http://127.0.0.1:{raw_http.port}/"
    set_cookies = mostly(
        st.one_of(
            st.sampled_from(
                ["a=b", "a=b; Domain=127.0.0.1", "a=b; Domain=.0.0.1", "a=b; Domain=", "a=b; Path=", "=b", "a"]
                + [";", "", "a=b; Max-Age=-99999999999999999999", "a=b; Max-Age=9223372036854775807"]
                + ["a=b; Secure; HttpOnly", "a=b; Expires=Fri, 31 Dec 9999 23:59:59 GMT"]
                + ["a=b; Expires=Sat, 01 Jan 0000 00:00:00 GMT", "a=b; SameSite=Bogus", "a=\x00", "a=b\r\nc=d"]
                + ["a=\ud800"]
            ),
            TEXT,
            st.builds(lambda n, v, a: f"{n}={v}; {a}", TEXT, TEXT, TEXT),
        ),
        WRONG_STR,
    )
    urls = http_urls(raw_http.port)
    for _ in range(data.draw(st.integers(1, 3), label="rounds")):
        call(client.set_cookie, data.draw(set_cookies, label="set_cookie"), data.draw(urls, label="url"))
        call(client.cookie_header, data.draw(urls, label="cookie_header url"))
        call(
            client.set_cookie_anywhere,
            data.draw(STR_ARG, label="name"),
            data.draw(STR_ARG, label="value"),
            data.draw(STR_ARG, label="path"),
        )
        call(client.cookies)
    # The jar's contents go out on a request: a Cookie header is built from whatever was stored.
    raw_http.response = OK_RESPONSE
    resolve(call(client.request, "GET", origin + data.draw(TEXT, label="request path")))
    call(client.cookie_header, origin)
    call(client.clear_cookies)
    call(client.clear_cookies, 1)
    assert client.cookies() == []


# --- WebSocket ------------------------------------------------------------------------------------------------------

WS_HEADERS = mostly(
    st.one_of(
        st.lists(
            st.tuples(
                st.one_of(HEADER_NAMES, st.just("Sec-WebSocket-Key")),
                mostly(TEXT, st.binary(max_size=4), one_in=16),
            ),
            max_size=4,
        ),
        st.sampled_from([24576, 24577, 40000]).map(lambda n: ManyPairs((f"x-{i}", "v") for i in range(n))),
    ),
    st.one_of(st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2), JUNK),
)
SUBPROTOCOLS = mostly(
    st.lists(
        mostly(
            st.one_of(st.sampled_from(["chat.v1", "chat.v2", "", " ", ",", "a, b", "\r\n"]), TEXT),
            st.binary(max_size=4),
            one_in=16,
        ),
        max_size=4,
    ),
    st.one_of(st.text(max_size=4), JUNK),
)
WS_MESSAGES = mostly(
    st.one_of(
        TEXT,
        st.binary(max_size=64),
        HUGE_BYTES,
        st.builds(bytearray, st.binary(max_size=8)),
        st.builds(memoryview, st.binary(max_size=8)),
        # Commands the echo server obeys (tests/ws_server.py): it closes, streams, pings.
        st.sampled_from(
            [
                '{"type": "close", "code": 4000, "reason": "x"}',
                '{"type": "close", "code": 1000}',
                '{"type": "ping-me"}',
                '{"type": "stream", "n": 3}',
                '{"type": "big", "size": 70000}',
            ]
        ),
    ),
    st.one_of(JUNK, INTS),
)
WS_PROPERTIES = ["url", "subprotocol", "status", "handshake_ms", "open", "pending", "close_status", "error"]


def ws_urls(port, tls_port, refused_port):
    prefixes = st.sampled_from(
        [f"ws://127.0.0.1:{port}/echo", f"ws://127.0.0.1:{port}/", f"WS://127.0.0.1:{port}/"]
        + [f"wss://127.0.0.1:{tls_port}/", f"ws://127.0.0.1:{tls_port}/", f"wss://127.0.0.1:{port}/"]
        + [f"ws://127.0.0.1:{refused_port}/", f"ws://[::1]:{refused_port}/", f"http://127.0.0.1:{port}/"]
    )
    fixed = [
        "",
        "ws:",
        "ws://",
        "wss://",
        "ws:///",
        "ws://[::1",
        "ws://127.0.0.1:65536/",
        f"ws://:{port}/",
        "ws://127.0.0.1:99999999999999999999/",
        f"ws://127.0.0.1:{port}",
        f"ws://u:p@127.0.0.1:{port}/echo",
    ]
    return mostly(
        st.one_of(st.builds(lambda p, t: p + t, prefixes, TEXT), NO_SCHEME_TEXT, st.sampled_from(fixed)),
        WRONG_STR,
    )


@FUZZ
@given(data=st.data())
def test_ws_connect(data, ws_server, refused_port):  # noqa: F811
    url = data.draw(ws_urls(ws_server["port"], ws_server["tls_port"], refused_port), label="url")
    kwargs = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "headers": opt(WS_HEADERS),
                "subprotocols": opt(SUBPROTOCOLS),
                "timeout": opt(NUMBERS),
                "insecure": FLAGS,
                "max_message_size": opt(mostly(U64, JUNK)),
            },
        ),
        label="kwargs",
    )
    conn = call(_native.ws_connect, url, **kwargs)
    if isinstance(conn, _native.Ticket):
        conn = wait_for(conn)
    if isinstance(conn, _native.WsConnection):
        try:
            read_properties(conn, WS_PROPERTIES)
            call(conn.headers)
            if isinstance(call(conn.send, "hello"), int):
                wait_for(conn.wait(5.0))
            call(conn.try_recv)
        finally:
            wait_for(conn.close())
    call(_native.ws_connect)


@FUZZ
@given(data=st.data())
def test_ws_connection_methods(data, ws_server):  # noqa: F811
    conn = wait_for(_native.ws_connect(f"ws://127.0.0.1:{ws_server['port']}/echo"))
    assert isinstance(conn, _native.WsConnection), conn
    try:
        sent = 0
        for message in data.draw(st.lists(WS_MESSAGES, max_size=3), label="messages"):
            if isinstance(call(conn.send, message), int):
                sent += 1
        call(conn.send)
        timeout = data.draw(opt(NUMBERS), label="wait timeout")
        ticket = call(conn.wait, timeout)
        if isinstance(ticket, _native.Ticket):
            # Without a message on its way the wait may rightly last forever (or 1e20 s): cut short, not a hang.
            resolve(ticket, limit=WAIT_LIMIT if sent else 0.05, may_block=not sent)
        for _ in range(5):
            if call(conn.try_recv) is None:
                break
        call(conn.try_recv, 1)
        call(conn.headers)
        call(conn.stats)
        read_properties(conn, WS_PROPERTIES)
        code = data.draw(
            mostly(
                st.one_of(st.sampled_from([0, 999, 1000, 1004, 1005, 1006, 1015, 2999, 3000, 4999, 5000]), U16), JUNK
            ),
            label="close code",
        )
        reason = data.draw(
            st.one_of(st.sampled_from(["", "x" * 123, "x" * 124, "\u00e9" * 62, "\u00e9" * 63]), STR_ARG),
            label="close reason",
        )
        resolve(call(conn.close, code, reason))
        resolve(call(conn.close, code=code))
        resolve(call(conn.close, reason=reason))
        # A drawn code or reason may have been refused: this close ends the connection whatever they were.
        resolve(call(conn.close))
        # Over: everything answers at once.
        call(conn.send, "after close")
        call(conn.try_recv)
        resolve(call(conn.wait, None))
        resolve(call(conn.close))
        read_properties(conn, WS_PROPERTIES)
        call(conn.stats)
    finally:
        if conn.open:
            wait_for(conn.close())


# --- statistics -----------------------------------------------------------------------------------------------------


class WithInterval:
    """A response carrying the expected interval (ms) of a paced user, as locust-rs sessions set it."""

    def __init__(self, interval):
        self._locust_rs_interval = interval

    def __repr__(self):
        return f"WithInterval({self._locust_rs_interval!r})"


class RaisingInterval:
    @property
    def _locust_rs_interval(self):
        raise ValueError("no interval")

    def __repr__(self):
        return "RaisingInterval()"


def _micros(ms) -> float:
    """ms_to_micros of crates/locust-rs/src/metrics/mod.rs, on what pyo3 would extract as f64."""
    if not isinstance(ms, (int, float)):
        return 0.0
    try:
        v = float(ms)
    except OverflowError:
        return 0.0
    if not v > 0:
        return 0.0
    return min(round(min(v * 1000, 4e9)), 3_600_000_000)


def _raise_value_error(*_args):
    raise ValueError("callback failed")


CALLBACKS = st.sampled_from([None, lambda *a: None, _raise_value_error, lambda: None, 1, "not callable"])
EXCEPTIONS = st.one_of(
    st.none(),
    st.sampled_from([ValueError("x"), ConnectionRefusedError(111, "refused"), Exception(), KeyboardInterrupt()]),
    JUNK,
)
RESPONSES = st.one_of(st.none(), st.builds(WithInterval, opt(NUMBERS)), st.just(RaisingInterval()), JUNK)
RESPONSE_TIMES = opt(NUMBERS)
LENGTHS = opt(mostly(I64, st.one_of(FLOATS, JUNK)))
ENTRY_PROPERTIES = (
    "num_requests num_none_requests num_failures total_response_time min_response_time max_response_time"
    " total_content_length start_time last_request_timestamp"
).split()


def draw_event(data, core):
    """One request event into ``core``, through one of its four doors."""
    kind = data.draw(st.sampled_from(["on_request", "record", "log_request", "log_error"]), label="event")
    method, name = data.draw(STR_ARG, label="request_type"), data.draw(STR_ARG, label="name")
    rt = data.draw(RESPONSE_TIMES, label="response_time")
    if kind == "on_request":
        response = data.draw(RESPONSES, label="response")
        interval = getattr(response, "_locust_rs_interval", None) if isinstance(response, WithInterval) else None
        kwargs = data.draw(st.dictionaries(st.text(max_size=6), st.one_of(NUMBERS, JUNK), max_size=2), label="extra")
        call(
            core.on_request,
            method,
            name,
            rt,
            data.draw(LENGTHS, label="response_length"),
            exception=data.draw(EXCEPTIONS, label="exception"),
            response=response,
            context=data.draw(JUNK, label="context"),
            start_time=data.draw(opt(NUMBERS), label="start_time"),
            url=data.draw(opt(STR_ARG), label="url"),
            **kwargs,
        )
    elif kind == "record":
        interval = data.draw(NUMBERS, label="interval_ms")
        call(
            core.record,
            method,
            name,
            rt,
            data.draw(LENGTHS, label="response_length"),
            data.draw(EXCEPTIONS, label="exception"),
            interval,
        )
    elif kind == "log_request":
        call(core.log_request, method, name, rt, data.draw(LENGTHS, label="content_length"))
    else:
        call(core.log_error, method, name, data.draw(EXCEPTIONS, label="error"))


TIME_PAIRS = mostly(st.lists(st.tuples(NUMBERS, U64), max_size=6), JUNK)
SECOND_PAIRS = mostly(st.lists(st.tuples(I64, U64), max_size=6), JUNK)
SERIALIZED = st.fixed_dictionaries(
    {
        "start_time": NUMBERS,
        "last_request_timestamp": opt(NUMBERS),
        "num_requests": U64,
        "num_none_requests": U64,
        "num_failures": U64,
        "total_response_time": NUMBERS,
        "min_response_time": opt(NUMBERS),
        "max_response_time": NUMBERS,
        "total_content_length": I64,
        "response_times": TIME_PAIRS,
        "reqs_per_sec": SECOND_PAIRS,
        "fails_per_sec": SECOND_PAIRS,
    },
    optional={"corrected_times": opt(TIME_PAIRS)},
)
QUANTILES = mostly(st.one_of(FLOATS, st.sampled_from([0.0, 1.0, 0.5, 0.999999, 1.0000001])), st.one_of(INTS, JUNK))


def exercise_entry(data, entry, other):
    read_properties(entry, ENTRY_PROPERTIES)
    for _ in range(data.draw(st.integers(0, 3), label="logs")):
        call(entry.log, data.draw(RESPONSE_TIMES, label="log response_time"), data.draw(LENGTHS, label="log length"))
    call(entry.log_error)
    for attr in ("start_time", "last_request_timestamp"):
        call(setattr, entry, attr, data.draw(opt(NUMBERS), label=attr))
    q = data.draw(QUANTILES, label="q")
    call(entry.percentile, q)
    call(entry.current_percentile, q)  # the first call starts the window
    call(entry.current_percentile, q)
    kwargs = data.draw(SERIALIZED, label="extend_serialized")
    call(entry.extend_serialized, **kwargs)
    call(entry.extend, data.draw(st.one_of(st.just(other), st.just(entry), JUNK), label="extend with"))
    call(entry.percentile, q)
    call(entry.current_percentile, q)
    for method in (entry.response_times, entry.corrected_times, entry.reqs_per_sec, entry.fails_per_sec):
        call(method)
    read_properties(entry, ENTRY_PROPERTIES)
    call(repr, entry)
    if data.draw(st.booleans(), label="reset"):
        call(entry.reset)


TICKS = mostly(
    st.one_of(st.sampled_from([0, 1, 5, MAX_TICKS]), st.integers(0, MAX_TICKS)),
    st.one_of(st.sampled_from([2**32, 2**64, 2**100, -1, -(2**70)]), FLOATS, JUNK),
)


def exercise_set(data, hs):
    keys = call(hs.keys)
    call(len, hs)
    known = st.sampled_from(keys) if isinstance(keys, list) and keys else st.nothing()
    request_type, name = data.draw(
        st.one_of(known, st.tuples(opt(STR_ARG), opt(STR_ARG)), st.just((None, None))), label="key"
    )
    corrected = data.draw(FLAGS, label="corrected")
    call(hs.count, request_type, name)
    call(hs.has_corrected, request_type, name)
    call(
        hs.summary,
        request_type,
        name,
        corrected,
        quantiles=data.draw(opt(mostly(st.lists(QUANTILES, max_size=6), JUNK)), label="quantiles"),
    )
    call(hs.value_at_quantile, data.draw(QUANTILES, label="q"), request_type, name, corrected)
    call(hs.distribution, request_type, name, corrected, ticks=data.draw(TICKS, label="ticks"))
    call(hs.encode_histogram, request_type, name, corrected)
    blob = call(hs.encode)
    if isinstance(blob, bytes):
        back = call(_native.HistogramSet.decode, blob)
        if isinstance(back, _native.HistogramSet):
            call(back.merge, hs)
            call(hs.merge, back)
    call(hs.merge, data.draw(JUNK, label="merge junk"))
    copy = call(hs.copy)
    call(hs.clear)
    return copy


@FUZZ
@given(data=st.data())
def test_stats_core(data):
    core = call(
        _native.StatsCore,
        data.draw(FLAGS, label="use_response_times_cache"),
        on_new_entry=data.draw(CALLBACKS, label="on_new_entry"),
        on_error=data.draw(CALLBACKS, label="on_error"),
    )
    if not isinstance(core, _native.StatsCore):
        core = _native.StatsCore()
    call(setattr, core, "correcting", data.draw(FLAGS, label="correcting"))
    if data.draw(st.booleans(), label="track_intervals"):
        call(core.track_intervals)
    for _ in range(data.draw(st.integers(1, 5), label="events")):
        draw_event(data, core)
    entry = call(core.entry, data.draw(STR_ARG, label="entry name"), data.draw(STR_ARG, label="entry method"))
    if isinstance(entry, _native.StatsEntryCore):
        exercise_entry(data, entry, core.total)
    exercise_entry(data, core.total, _native.StatsCore().total)
    hs = call(core.histograms)
    if isinstance(hs, _native.HistogramSet):
        exercise_set(data, hs)
    quantiles = data.draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4), label="quantiles")
    call(core.summaries, quantiles)
    call(core.distribution, data.draw(STR_ARG, label="type"), data.draw(STR_ARG, label="name"),
         data.draw(FLAGS, label="corrected"), data.draw(st.integers(-1, 2000), label="ticks"))  # fmt: skip
    call(core.take_interval_log)
    call(core.reset_all)
    call(repr, core)
    call(core.clear_all)
    read_properties(core, ["total", "correcting"])


# --- histograms on the wire -----------------------------------------------------------------------------------------

V2_COOKIE = 0x1C849313
V2_DEFLATE_COOKIE = 0x1C849314


def _varints(values):
    """HdrHistogram's LEB128 (9 bytes at most, the last one whole) of zig-zag encoded values."""
    out = bytearray()
    for v in values:
        z = ((v << 1) ^ (v >> 63)) & (2**64 - 1)
        for _ in range(8):
            if z < 0x80:
                break
            out.append((z & 0x7F) | 0x80)
            z >>= 7
        out.append(z & 0xFF)
    return bytes(out)


def _v2_blob(payload_len, offset, digits, low, high, ratio, payload):
    if payload_len is None:
        payload_len = len(payload)
    return struct.pack(">IIIIQQd", V2_COOKIE, payload_len, offset, digits, low, high, ratio) + payload


def _deflated(inner, length_delta):
    z = zlib.compress(inner)
    return struct.pack(">II", V2_DEFLATE_COOKIE, max(0, min(len(z) + length_delta, 2**32 - 1))) + z


WORD = st.one_of(st.sampled_from([0, 1, 2**31, 2**32 - 1]), st.integers(0, 2**32 - 1))  # any u32 field
HDR_BLOBS = st.builds(
    _v2_blob,
    opt(st.integers(0, MAX_PAYLOAD_LEN)),
    st.one_of(st.just(0), WORD),
    st.one_of(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 255]), WORD),
    st.one_of(st.sampled_from([0, 1, 2, 1000, 2**62, 2**63 - 1, 2**63, 2**64 - 1]), st.integers(0, 2**64 - 1)),
    st.one_of(
        st.sampled_from([0, 1, 2, 2048, 3_600_000_000, 2**62, 2**63 - 1, 2**63, 2**64 - 1]), st.integers(0, 2**64 - 1)
    ),
    st.sampled_from([1.0, 0.0, math.nan, math.inf, 2.0]),
    st.one_of(
        st.binary(max_size=64),
        st.lists(
            st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([-(2**63), 2**63 - 1, -1, 0, 1])), max_size=16
        ).map(_varints),
    ),
)
HDR_ANY = st.one_of(HDR_BLOBS, st.builds(_deflated, HDR_BLOBS, st.integers(-8, 8)), st.binary(max_size=64))


def _real_histogram_b64():
    core = _native.StatsCore()
    for rt in (0.001, 1.0, 123.0, 3.6e6):
        core.log_request("GET", "/", rt, 1)
    return core.histograms().encode_histogram()[0]


def _mutate(blob: bytes, edits) -> bytes:
    b = bytearray(blob)
    for pos, value in edits:
        if b:
            b[pos % len(b)] = value
    return bytes(b)


REAL_B64 = _real_histogram_b64()
MUTATED_REAL = st.builds(
    _mutate,
    st.just(base64.b64decode(REAL_B64)),
    st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 255)), max_size=4),
)
ENCODED_TEXT = st.one_of(
    st.one_of(HDR_ANY, MUTATED_REAL).map(lambda b: base64.b64encode(b).decode()),
    st.sampled_from([REAL_B64, " " + REAL_B64 + "\n", REAL_B64[:-4], REAL_B64 + "=", "", "=", "====", "\x00"]),
    TEXT,
)
ENCODED = mostly(ENCODED_TEXT, st.one_of(st.binary(max_size=8), JUNK))
JSONISH = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)
WIRE = mostly(
    st.one_of(
        st.lists(
            st.fixed_dictionaries(
                {
                    "t": st.one_of(st.text(ANY_CHAR, max_size=5), JSONISH),
                    "n": st.one_of(st.text(ANY_CHAR, max_size=5), JSONISH),
                    "r": st.one_of(ENCODED_TEXT, JSONISH),
                },
                optional={"c": st.one_of(ENCODED_TEXT, JSONISH), "x": JSONISH},
            ),
            max_size=3,
        ).map(lambda doc: json.dumps(doc).encode()),
        st.binary(max_size=64),
        st.sampled_from([b"", b"[]", b"{}", b"null", b"[" * 100_000, b"{" * 100_000, b'[{"t": "a"}]', b"\xff\xfe"]),
        HUGE_BYTES,
    ),
    st.one_of(st.text(max_size=4), JUNK),
)


@FUZZ
@given(data=st.data())
def test_histogram_set_decoding(data):
    hs = _native.HistogramSet()
    call(_native.HistogramSet, data.draw(JUNK, label="constructor junk"))
    for _ in range(data.draw(st.integers(1, 3), label="adds")):
        call(
            hs.add_encoded,
            data.draw(STR_ARG, label="request_type"),
            data.draw(STR_ARG, label="name"),
            data.draw(ENCODED, label="b64"),
            data.draw(FLAGS, label="corrected"),
        )
    decoded = call(_native.HistogramSet.decode, data.draw(WIRE, label="wire"))
    if isinstance(decoded, _native.HistogramSet):
        call(hs.merge, decoded)
        exercise_set(data, decoded)
    copy = exercise_set(data, hs)
    if isinstance(copy, _native.HistogramSet):
        exercise_set(data, copy)
