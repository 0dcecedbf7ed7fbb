"""Shared fixtures of the test suite.

Pytest configuration lives in ``pyproject.toml``, not here::

    [tool.pytest.ini_options]
    testpaths = ["tests"]
    timeout = 120

When that is not in effect (no ``timeout`` ini value nor ``--timeout``), ``pytest_collection_modifyitems`` below
gives every test without its own ``timeout`` marker a default one, so a hung socket can never hang the whole run.

``locust`` is imported first on purpose: importing it runs ``gevent.monkey.patch_all()``, which has to happen before
anything else imports ``socket``, ``ssl`` or ``threading`` (Locust's own test suite relies on the same import
order). Both implementations under test then run under a patched, gevent-cooperative stdlib, as in a real run.
"""

import locust  # noqa: F401,I001 - must stay the first import, see above

import socket
import subprocess
from pathlib import Path

import pytest

# contract.py's own asserts get pytest's detailed messages too; must run before anything imports it
pytest.register_assert_rewrite("contract")

import child_servers  # noqa: E402
from contract import Contract, Endpoints, SessionFactory  # noqa: E402

DEFAULT_TEST_TIMEOUT = 60
SERVER_SCRIPT = Path(__file__).with_name("servers.py")
SERVER_START_TIMEOUT = 20


def pytest_addoption(parser):
    parser.addoption(
        "--shard",
        default=None,
        metavar="K/N",
        help="run only the K-th of N shards of the selected tests, whole files balanced by E2E_SECONDS "
        "(scripts/side_by_side.py --pytest-shards N runs the N side by side)",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "impl_ref: runs against the reference, locust.contrib.fasthttp (id `ref`)")
    config.addinivalue_line("markers", "impl_rs: runs against the candidate, locust_rs (id `rs`)")
    config.addinivalue_line(
        "markers", "wakeup: exercises the engine-to-hub wakeup; `make test-py-portable` runs these on the pipe"
    )
    for tier, what in TIER_HELP.items():
        config.addinivalue_line("markers", f"{tier}: {what}")
    config.pluginmanager.register(_Shard(), "locust_rs_shard")


# Tiers: every test file is in one, and `make test-py` runs the fast ones first, stopping at their first failure,
# then the end-to-end runs. A new test file must be given a tier here (collection fails otherwise).
TIER_HELP = {
    "unit": "in-process tests of one part (the engine through its Python API, the bridge, the facades' pieces)",
    "contract": "the same calls through Locust's own clients and ours, side by side",
    "demo": "the VoiceAssist demo server, its routes and its WebSocket, without Locust",
    "e2e": "whole locust runs in subprocesses (or Locust's runners in process), their outputs and their UI",
}
TIERS = {
    "contract": {"test_contract_fasthttp.py", "test_contract_httpsession.py", "test_contract_tls_proxies.py"},
    "demo": {
        "test_demo_admin.py", "test_demo_auth.py", "test_demo_chat.py", "test_demo_documents.py",
        "test_demo_openapi.py", "test_demo_realtime.py", "test_demo_server.py", "test_websocket_demo.py",
    },
    "e2e": {
        "test_analysis_notebook.py", "test_arrival.py", "test_arrival_in_process.py", "test_corpus.py",
        "test_distributed.py", "test_distributed_hosts.py", "test_distributed_in_process.py", "test_e2e_locust.py",
        "test_locust_compat.py", "test_metrics.py", "test_otel_e2e.py", "test_outputs_agree.py", "test_run_state.py",
        "test_suite_voiceassist.py", "test_thresholds.py", "test_user_stop.py", "test_web_ui.py",
        "test_web_ui_browser.py", "test_websocket_e2e.py",
    },
    "unit": {
        "test_body_limit.py", "test_bridge.py", "test_compare.py", "test_compare_intervals.py", "test_engine.py",
        "test_errors.py",
        "test_fasthttp_extras.py", "test_http2.py", "test_httpuser_extras.py", "test_kernel_stamps.py",
        "test_native_inputs.py", "test_otel.py",
        "test_response_memory.py", "test_stats.py", "test_tls.py", "test_websocket.py", "test_zero_wait.py",
    },
}  # fmt: skip
_TIER_OF = {name: tier for tier, names in TIERS.items() for name in names}

# About how long each end-to-end file takes (s, `pytest -m e2e --durations=0`), to balance `--shard`. The runs mostly
# wait (for a condition, a report, a browser), so two shards side by side on two cores take about half the time of
# one. A file not listed counts as 5 s. The figures only balance: a wrong one makes a shard longer, never a test fail.
E2E_SECONDS = {
    "test_arrival.py": 85, "test_suite_voiceassist.py": 85, "test_metrics.py": 60, "test_corpus.py": 27,
    "test_web_ui_browser.py": 32, "test_distributed.py": 21, "test_otel_e2e.py": 20, "test_thresholds.py": 20,
    "test_distributed_hosts.py": 19, "test_e2e_locust.py": 13, "test_analysis_notebook.py": 12,
    "test_outputs_agree.py": 12, "test_web_ui.py": 7,
}  # fmt: skip


def _shard_of_files(names: set[str], count: int) -> dict[str, int]:
    """Each file's shard (0 to count - 1): the longest first, each to the shard with the least time so far."""
    loads = [0.0] * count
    shard = {}
    for name in sorted(names, key=lambda n: (-E2E_SECONDS.get(n, 5), n)):
        k = loads.index(min(loads))
        shard[name] = k
        loads[k] += E2E_SECONDS.get(name, 5)
    return shard


class _Shard:
    # After every other selection (`-m`, `-k`): the files are balanced among those that will run.
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        _select_shard(config, items)


def _select_shard(config, items) -> None:
    spec = config.getoption("shard")
    if not spec:
        return
    try:
        k, n = (int(part) for part in spec.split("/"))
        if not 1 <= k <= n:
            raise ValueError
    except ValueError:
        raise pytest.UsageError(f"--shard {spec!r}: write K/N with 1 <= K <= N, such as 1/2") from None
    shard = _shard_of_files({item.path.name for item in items}, n)
    keep = [item for item in items if shard[item.path.name] == k - 1]
    config.hook.pytest_deselected(items=[item for item in items if shard[item.path.name] != k - 1])
    items[:] = keep


# The second pass of `make test` forces the portable wakeup (a pipe instead of eventfd, as on macOS); the third runs
# the same tests on the engine on the Python thread (`LOCUST_RS_ENGINE=inline`, opt-in). They run what exercises the
# wakeup and the engine's turns in their own ways: the bridge itself, WebSocket traffic (frames pushed without a
# request), a zero wait time (a wakeup per request, no sleep in between), HTTP/2 (streams and tasks of hyper's own),
# the contract tests of our classes (every kind of response and failure), and one `--processes` run (the wakeup
# re-made in forked children). Not the demo server, the suite, or Locust's own clients, which never touch it.
WAKEUP_FILES = {"test_bridge.py", "test_zero_wait.py", "test_websocket.py", "test_websocket_e2e.py", "test_http2.py"}
WAKEUP_CONTRACT_FILES = {"test_contract_fasthttp.py", "test_contract_httpsession.py", "test_contract_tls_proxies.py"}
WAKEUP_TESTS = {"test_e2e_locust.py::test_processes_fork"}


def _touches_the_wakeup(item) -> bool:
    path = item.path.name
    if path in WAKEUP_FILES or f"{path}::{item.originalname}" in WAKEUP_TESTS:
        return True
    return path in WAKEUP_CONTRACT_FILES and item.get_closest_marker("impl_ref") is None


# Differences from Locust's FastHttpSession that are known and documented in docs/compatibility.md. Each is a
# strict xfail: the day one of them starts to match, the suite says so and the entry must go.
KNOWN_DIFFERENCES = {
    "test_url_escaping_in_path[rs]": "percent-escapes of unreserved characters are sent as written (%41 stays %41)",
    "test_stream_iter_content[rs-default-/gzip]": ".content after a streamed gzip body is empty, not a zlib.error",
    "test_stream_iter_content[rs-7-/gzip]": ".content after a streamed gzip body is empty, not a zlib.error",
    "test_stream_iter_content[rs-raw-/gzip]": ".content after a streamed gzip body is empty, not a zlib.error",
    "test_server_misbehaves[rs-None-GET-/close-no-response]": "retries follow max_retries, not the pool size",
    "test_server_misbehaves[rs-4-GET-/close-no-response]": "retries follow max_retries, not the pool size",
    "test_server_misbehaves[rs-None-GET-/garbage]": "HTTPParseError carries hyper's message, not llhttp's",
    "test_server_misbehaves[rs-None-POST-/garbage]": "HTTPParseError carries hyper's message, not llhttp's",
    "test_server_misbehaves[rs-4-GET-/garbage]": "HTTPParseError carries hyper's message, not llhttp's",
    "test_server_misbehaves[rs-4-POST-/garbage]": "HTTPParseError carries hyper's message, not llhttp's",
    **{
        f"test_user_timeouts_out_of_range[rs-{value}-{attr}]": "a timeout of NaN raises ValueError"
        for value in ("nan",)
        for attr in ("network_timeout", "connection_timeout")
    },
    "test_connection_reset[rs-/reset-0]": "retries follow max_retries, not the pool size",
    "test_headers_sent_or_refused[rs-bytes]": "a bytes header value is sent as its bytes, not as its repr",
    # HttpSession (tests/test_contract_httpsession.py)
    "test_header_values_and_names[rs-space-name]": "a header name that is not an HTTP token is a failed request",
    "test_timeout_out_of_range[rs-nan]": "a timeout of NaN raises ValueError",
}


# Where Locust's own FastHttpSession (the reference, `ref`) did otherwise before 2.47: on the range's floor
# (`make test-locust-floor`) these contract tests check the harness against an older client.
LOCUST_BEFORE_2_47 = {
    "test_url_escaping_in_path[ref]": "Locust < 2.47's FastHttpSession raises ValueError for a space in the path",
    **{
        f"test_server_misbehaves[ref-{retries}-{verb}-/garbage]": "Locust < 2.47's FastHttpSession raises "
        "HTTPParseError out of request() instead of reporting it"
        for retries in ("None", "4")
        for verb in ("GET", "POST")
    },
}
if tuple(int(n) for n in locust.__version__.split(".")[:2]) < (2, 47):
    KNOWN_DIFFERENCES = {**KNOWN_DIFFERENCES, **LOCUST_BEFORE_2_47}


def pytest_collection_modifyitems(config, items):
    untiered = sorted({item.path.name for item in items if item.path.name not in _TIER_OF})
    if untiered:
        raise pytest.UsageError(f"test files without a tier (tests/conftest.py's TIERS): {', '.join(untiered)}")
    for item in items:
        item.add_marker(getattr(pytest.mark, _TIER_OF[item.path.name]))
        if _touches_the_wakeup(item):
            item.add_marker(pytest.mark.wakeup)
        reason = KNOWN_DIFFERENCES.get(item.name)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"known difference: {reason}"))
    # an explicit --timeout / ini timeout wins; this is only the fallback for a bare `pytest tests`
    if config.getoption("timeout", None) or config.getini("timeout"):
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT))


class TestServer:
    """Handle on the server subprocess of ``tests/servers.py``."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, proc: subprocess.Popen, port: int, blackhole_port: int):
        self.proc = proc
        self.port = port
        self.blackhole_port = blackhole_port
        self.base_url = f"http://127.0.0.1:{port}"
        self.blackhole_url = f"http://127.0.0.1:{blackhole_port}"

    def stop(self):
        child_servers.stop(self.proc)


def start_server(lifetime: float = 900.0) -> TestServer:
    proc, info = child_servers.spawn(
        SERVER_SCRIPT, "--lifetime", str(lifetime), what="test server", timeout=SERVER_START_TIMEOUT
    )
    return TestServer(proc, info["port"], info["blackhole_port"])


@pytest.fixture(scope="session")
def test_server():
    """The server subprocess (see ``tests/servers.py``), shared by the whole session."""
    server = start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def http_server(test_server) -> str:
    """Base URL of the test server: ``http://127.0.0.1:PORT`` (no trailing slash)."""
    return test_server.base_url


@pytest.fixture(scope="session")
def blackhole_url(test_server) -> str:
    """A loopback URL whose TCP connect hangs (full accept queue): provokes connection timeouts."""
    return test_server.blackhole_url


def _free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


@pytest.fixture(scope="session")
def refused_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago; nothing in this suite binds it again)."""
    return _free_port()


@pytest.fixture(scope="session")
def refused_url(refused_port) -> str:
    """``http://127.0.0.1:PORT`` where connecting is refused (ECONNREFUSED)."""
    return f"http://127.0.0.1:{refused_port}"


@pytest.fixture(scope="session")
def endpoints(http_server, refused_url, blackhole_url) -> Endpoints:
    return Endpoints(base_url=http_server, refused_url=refused_url, blackhole_url=blackhole_url)


# Param ids `ref` / `rs` also appear inside ordinary words (`refused`, `headers`), so `-k` cannot tell them apart:
# select an implementation with the markers instead, `-m impl_ref` or `-m impl_rs`.
@pytest.fixture(
    params=[
        pytest.param("ref", marks=pytest.mark.impl_ref, id="ref"),
        pytest.param("rs", marks=pytest.mark.impl_rs, id="rs"),
    ]
)
def session_factory(request, endpoints) -> SessionFactory:
    """Builds sessions of the implementation under test: ``session_factory(base_url=..., **kwargs)``.

    ``ref`` is Locust's own FastHttpSession (checks the harness against itself), ``rs`` is locust_rs's.
    """
    return SessionFactory(request.param, endpoints)


@pytest.fixture
def contract(request, session_factory) -> Contract:
    """``contract.check(scenario, **session_kwargs)``: the scenario's record must equal Locust's.

    The reference record is cached per test (its name and parameters other than the implementation), so Locust runs
    each scenario once for the `rs` variant, and twice for `ref` (which then checks the harness is deterministic).
    """
    callspec = getattr(request.node, "callspec", None)
    params = {} if callspec is None else {k: v for k, v in callspec.params.items() if k != "session_factory"}
    key = (request.node.path.name, request.node.originalname, repr(sorted(params.items())))
    return Contract(session_factory, key)
