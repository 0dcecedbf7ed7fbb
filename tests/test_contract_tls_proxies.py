"""Contract tests for requests' connection arguments: ``verify`` (a CA bundle), ``cert`` (client certificates) and
``proxies`` (per request and per session; plain http forwarding, CONNECT tunnels, proxy credentials, https
proxies), run through Locust's HttpSession and locust_rs's and compared as in ``test_contract_httpsession.py``.

The servers: ``tests/servers.py`` over TLS (a trustme CA; client certificates optional, ``/peer`` names the one it
got) and ``tests/proxy_server.py`` (plain, requiring credentials, and speaking TLS), each in its own process.
Each proxy scenario returns what the proxy logged, so "it went through the proxy" is part of the comparison.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import gevent
import pytest
import trustme
from test_contract_httpsession import EXTRA_PORTS, run

HERE = Path(__file__).parent

# urllib3 warns about the proxy it does not verify for plain http (see the last test); that is requests' design.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


class _Proc:
    def __init__(self, argv: list[str], placeholder: str):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=HERE)
        try:
            with gevent.Timeout(20, RuntimeError(f"{argv[1]} did not start")):
                self.port = json.loads(self.proc.stdout.readline())["port"]
        except BaseException:
            self.proc.kill()
            raise
        EXTRA_PORTS[self.port] = placeholder

    def stop(self):
        EXTRA_PORTS.pop(self.port, None)
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Pki:
    """The CA and certificates of these tests, as files."""

    def __init__(self, root: Path):
        self.root = root
        ca = trustme.CA()
        self.ca = str(root / "ca.pem")
        ca.cert_pem.write_to_path(self.ca)
        self.server = str(root / "server.pem")
        ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(self.server)
        client = ca.issue_cert("client@locust.test", common_name="locust-client")
        self.client_combined = str(root / "client.pem")
        client.private_key_and_cert_chain_pem.write_to_path(self.client_combined)
        self.client_cert = str(root / "client-cert.pem")
        client.cert_chain_pems[0].write_to_path(self.client_cert)
        self.client_key = str(root / "client-key.pem")
        client.private_key_pem.write_to_path(self.client_key)
        other = trustme.CA()
        self.other_ca = str(root / "other-ca.pem")
        other.cert_pem.write_to_path(self.other_ca)
        self.other_server = str(root / "other-server.pem")
        other.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(self.other_server)


class Net:
    """An https server and the proxies, with their logs."""

    def __init__(self, pki: Pki, root: Path):
        self.pki = pki
        script = [sys.executable, str(HERE / "servers.py"), "--lifetime", "900"]
        tls = ["--tls-cert", pki.server, "--client-ca", pki.ca]
        self.https = _Proc([*script, *tls], "<HTTPS_PORT>")
        self.https_url = f"https://127.0.0.1:{self.https.port}"
        self.logs = {}
        self.proxies = {}
        for name, extra in {
            "plain": [],
            "auth": ["--auth", "user:p@ss word"],
            "tls": ["--cert", pki.server],
            "untrusted": ["--cert", pki.other_server],
        }.items():
            log = root / f"proxy-{name}.log"
            log.touch()
            self.logs[name] = log
            argv = [sys.executable, str(HERE / "proxy_server.py"), "--log", str(log), *extra]
            self.proxies[name] = _Proc(argv, f"<PROXY_{name.upper()}_PORT>")

        self.socks = {}
        for name, extra in {"socks": [], "socks_auth": ["--auth", "user:pw"]}.items():
            log = root / f"{name}.log"
            log.touch()
            self.logs[name] = log
            argv = [sys.executable, str(HERE / "socks_server.py"), "--log", str(log), *extra]
            self.socks[name] = _Proc(argv, f"<{name.upper()}_PORT>")

    def proxy_url(self, name: str, credentials: str = "") -> str:
        scheme = "https" if name in ("tls", "untrusted") else "http"
        return f"{scheme}://{credentials}127.0.0.1:{self.proxies[name].port}"

    def log_size(self, name: str) -> int:
        return len(self.logs[name].read_text().splitlines())

    def log_since(self, name: str, start: int) -> list[dict]:
        return [json.loads(line) for line in self.logs[name].read_text().splitlines()[start:]]

    def stop(self):
        for p in [self.https, *self.proxies.values(), *self.socks.values()]:
            p.stop()


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    n = Net(Pki(root), root)
    try:
        yield n
    finally:
        n.stop()


def _mask(value, pattern, placeholder):
    if isinstance(value, str):
        return pattern.sub(placeholder, value)
    if isinstance(value, dict):
        return {k: _mask(v, pattern, placeholder) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v, pattern, placeholder) for v in value)
    return value


# The reason after OpenSSL's prefix is OpenSSL's own text in Locust's client and rustls' in ours.
VERIFY_REASON = re.compile(r"(certificate verify failed: ).*?(?=\\?['\"]\)|$)")


@pytest.fixture(params=["ref", "rs"])
def check(request, endpoints):
    def check(scenario, mask_verify_reason=False):
        from contract import diff_records

        reference = run("ref", endpoints, scenario)
        candidate = run(request.param, endpoints, scenario)
        if mask_verify_reason:
            reference, candidate = (_mask(r, VERIFY_REASON, r"\1<REASON>") for r in (reference, candidate))
        if candidate != reference:
            pytest.fail(f"differs from Locust's HttpSession:\n{diff_records(reference, candidate)}", pytrace=False)

    return check


def through(net, name, fn):
    """Runs ``fn`` and returns its result with what proxy ``name`` logged meanwhile."""
    start = net.log_size(name)
    out = fn()
    # http.client sends CONNECT without a Host header (HTTP/1.0 style); that is not what is compared here.
    log = [
        {k: v for k, v in e.items() if not (k == "host" and e["method"] == "CONNECT")}
        for e in net.log_since(name, start)
    ]
    return {"result": out, "proxy_log": log}


def brief(r):
    """What a response (or a failed one) shows: status, error, and the JSON it carried."""
    try:
        body = r.json() if r.status_code == 200 else None
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("echo"):
        body = {"target": body["target"], "proxy_authorization": body["headers"].get("proxy-authorization")}
    return {"status": r.status_code, "error": repr(getattr(r, "error", None)), "body": body}


# ---- verify and cert --------------------------------------------------------------------------------------------


def test_verify_with_a_ca_bundle(check, net):
    check(lambda s, ctx: ctx.observe(s.get(f"{net.https_url}/peer", verify=net.pki.ca)))


def test_verify_on_the_session(check, net):
    def scenario(s, ctx):
        s.trust_env = False  # as HttpUser sets it; with it on, REQUESTS_CA_BUNDLE would win (test below)
        s.verify = net.pki.ca
        return [brief(s.get(f"{net.https_url}/peer")) for _ in range(2)]

    check(scenario)


def test_verify_with_a_hashed_ca_directory(check, net, tmp_path):
    # OpenSSL's c_rehash layout: only <subject hash>.0 counts, a plain ca.pem beside it does not.
    hashed = tmp_path / "hashed"
    hashed.mkdir()
    subject_hash = subprocess.run(
        ["openssl", "x509", "-subject_hash", "-noout", "-in", net.pki.ca], capture_output=True, text=True, check=True
    ).stdout.strip()
    shutil.copy(net.pki.ca, hashed / f"{subject_hash}.0")
    check(lambda s, ctx: brief(s.get(f"{net.https_url}/peer", verify=str(hashed))))


def test_wrong_ca_bundle_fails_verification(check, net):
    # Classes and OpenSSL's reason code are the same; the reason's words are the TLS library's own.
    check(lambda s, ctx: ctx.observe(s.get(f"{net.https_url}/peer", verify=net.pki.other_ca)), mask_verify_reason=True)


def test_environment_ca_bundle_overrides_session_verify(check, net, monkeypatch):
    # requests' trust_env (on for a bare session, off in HttpUser): REQUESTS_CA_BUNDLE beats session.verify.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", net.pki.other_ca)

    def scenario(s, ctx):
        s.verify = net.pki.ca
        first = brief(s.get(f"{net.https_url}/peer"))
        s.trust_env = False
        return [first, brief(s.get(f"{net.https_url}/peer"))]

    check(scenario, mask_verify_reason=True)


@pytest.mark.parametrize("form", ["combined", "pair"])
def test_client_certificate(check, net, form):
    def scenario(s, ctx):
        cert = net.pki.client_combined if form == "combined" else (net.pki.client_cert, net.pki.client_key)
        return ctx.observe(s.get(f"{net.https_url}/peer", verify=net.pki.ca, cert=cert))

    check(scenario)


def test_client_certificate_on_the_session(check, net):
    def scenario(s, ctx):
        s.trust_env = False
        s.verify = net.pki.ca
        # Without a certificate first: the kept-alive connection that made must not serve the requests below.
        without = brief(s.get(f"{net.https_url}/peer"))
        s.cert = net.pki.client_combined
        with_cert = brief(s.get(f"{net.https_url}/peer"))
        # A request's own cert wins over the session's.
        other = brief(s.get(f"{net.https_url}/peer", cert=(net.pki.client_cert, net.pki.client_key)))
        s.cert = None
        again_without = brief(s.get(f"{net.https_url}/peer"))
        return [without, with_cert, other, again_without]

    check(scenario)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"verify": "/nonexistent/ca.pem"},
        {"cert": "/nonexistent/client.pem"},
        {"cert": ("CLIENT_CERT", "/nonexistent/key.pem")},
    ],
    ids=["ca-bundle", "cert", "key"],
)
def test_missing_certificate_files_raise(check, net, kwargs):
    def scenario(s, ctx):
        kw = {k: (net.pki.client_cert, v[1]) if isinstance(v, tuple) else v for k, v in kwargs.items()}
        return ctx.observe(s.get(f"{net.https_url}/peer", **kw))

    check(scenario)


def test_missing_ca_bundle_is_ignored_for_http(check):
    # requests checks the bundle only for https URLs.
    check(lambda s, ctx: ctx.observe(s.get("/echo", verify="/nonexistent/ca.pem")))


# ---- proxies ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["http", "all", "http://127.0.0.1", "all://127.0.0.1"])
def test_http_through_a_proxy(check, net, key):
    def scenario(s, ctx):
        return through(net, "plain", lambda: ctx.observe(s.get("/echo?a=1", proxies={key: net.proxy_url("plain")})))

    check(scenario)


def test_https_through_a_connect_tunnel(check, net):
    def scenario(s, ctx):
        proxies = {"https": net.proxy_url("plain")}
        return through(net, "plain", lambda: brief(s.get(f"{net.https_url}/peer", verify=net.pki.ca, proxies=proxies)))

    check(scenario)


def test_session_proxies_and_request_overrides(check, net):
    def scenario(s, ctx):
        s.proxies = {"http": net.proxy_url("plain")}
        via = through(net, "plain", lambda: brief(s.get("/echo")))
        # None removes the session's entry for this request: it goes direct.
        direct = through(net, "plain", lambda: brief(s.get("/echo", proxies={"http": None})))
        # An empty value stops the search at that key: direct as well.
        empty = through(net, "plain", lambda: brief(s.get("/echo", proxies={"http": ""})))
        return [via, direct, empty]

    check(scenario)


def test_proxy_without_a_scheme(check, net):
    def scenario(s, ctx):
        proxy = net.proxy_url("plain").removeprefix("http://")
        return through(net, "plain", lambda: brief(s.get("/echo", proxies={"http": proxy})))

    check(scenario)


@pytest.mark.parametrize("target", ["http", "https"])
def test_proxy_credentials(check, net, target):
    def scenario(s, ctx):
        proxies = {"all": net.proxy_url("auth", "user:p%40ss%20word@")}
        url = "/echo" if target == "http" else f"{net.https_url}/peer"
        return through(net, "auth", lambda: brief(s.get(url, verify=net.pki.ca, proxies=proxies)))

    check(scenario)


@pytest.mark.parametrize("target", ["http", "https"])
def test_proxy_refuses_without_credentials(check, net, target):
    # plain http: the proxy's 407 is the response; https: the CONNECT fails, a ProxyError.
    def scenario(s, ctx):
        url = "/echo" if target == "http" else f"{net.https_url}/peer"
        return through(
            net, "auth", lambda: ctx.observe(s.get(url, verify=net.pki.ca, proxies={"all": net.proxy_url("auth")}))
        )

    check(scenario)


@pytest.mark.parametrize("target", ["http", "https"])
def test_proxy_connect_timeout(check, endpoints, target, net):
    def scenario(s, ctx):
        url = "/echo?q=1" if target == "http" else f"{net.https_url}/peer"
        return ctx.observe(s.get(url, verify=net.pki.ca, proxies={"all": endpoints.blackhole_url}, timeout=(0.3, 5)))

    check(scenario)


@pytest.mark.parametrize("target", ["http", "https"])
def test_proxy_connection_refused(check, net, refused_port, target):
    def scenario(s, ctx):
        url = "/echo?q=1" if target == "http" else f"{net.https_url}/peer"
        return ctx.observe(s.get(url, verify=net.pki.ca, proxies={"all": f"http://127.0.0.1:{refused_port}"}))

    check(scenario)


@pytest.mark.parametrize("proxy", ["http://", "ftp://127.0.0.1:1"], ids=["no-host", "scheme"])
def test_unusable_proxy_urls_raise(check, proxy):
    check(lambda s, ctx: ctx.observe(s.get("/echo", proxies={"http": proxy})))


# ---- SOCKS (requests needs PySocks for these; the test dependencies install it) ----------------------------------


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "socks4", "socks4a"])
@pytest.mark.parametrize("target", ["http", "https"])
def test_socks_proxies(check, net, scheme, target):
    # By name: socks5 and socks4 resolve "localhost" here and send the address, socks5h and socks4a send the name.
    def scenario(s, ctx):
        base = ctx.base_url if target == "http" else net.https_url
        url = base.replace("127.0.0.1", "localhost") + ("/echo?a=1" if target == "http" else "/peer")
        proxies = {"all": f"{scheme}://127.0.0.1:{net.socks['socks'].port}"}
        return through(net, "socks", lambda: brief(s.get(url, verify=net.pki.ca, proxies=proxies)))

    check(scenario)


@pytest.mark.parametrize("credentials", ["user:pw@", "user:wrong@", ""], ids=["right", "wrong", "none"])
def test_socks5_credentials(check, net, credentials):
    def scenario(s, ctx):
        proxies = {"all": f"socks5://{credentials}127.0.0.1:{net.socks['socks_auth'].port}"}
        return through(net, "socks_auth", lambda: ctx.observe(s.get("/echo", proxies=proxies)))

    check(scenario)


@pytest.mark.parametrize("scheme", ["socks5", "socks4"])
def test_socks_proxy_refused_and_target_down(check, net, refused_port, scheme):
    def scenario(s, ctx):
        refused = ctx.observe(s.get("/echo", proxies={"all": f"{scheme}://127.0.0.1:{refused_port}"}))
        proxies = {"all": f"{scheme}://127.0.0.1:{net.socks['socks'].port}"}
        down = ctx.observe(s.get(f"http://127.0.0.1:{refused_port}/x", proxies=proxies))
        return [refused, down]

    check(scenario)


def test_unknown_socks_version_raises(check):
    check(lambda s, ctx: ctx.observe(s.get("/echo", proxies={"http": "socks6://127.0.0.1:1"})))


def test_redirect_chooses_the_proxy_per_hop(check, net):
    # The first hop (http) goes direct, the redirect's https hop through the tunnel of its scheme's proxy.
    def scenario(s, ctx):
        proxies = {"https": net.proxy_url("plain")}
        url = f"/redirect-to?url={net.https_url}/peer"
        return through(net, "plain", lambda: ctx.observe(s.get(url, verify=net.pki.ca, proxies=proxies), content=False))

    check(scenario)


@pytest.mark.parametrize("target", ["http", "https"])
def test_https_proxy(check, net, target):
    # TLS to the proxy itself, verified with the same bundle; for https, TLS inside the tunnel as well.
    def scenario(s, ctx):
        url = "/echo" if target == "http" else f"{net.https_url}/peer"
        proxies = {"all": net.proxy_url("tls")}
        return through(net, "tls", lambda: brief(s.get(url, verify=net.pki.ca, proxies=proxies)))

    check(scenario)


@pytest.mark.parametrize("target", ["http", "https"])
def test_https_proxy_with_a_certificate_the_bundle_does_not_trust(check, net, target):
    # requests does not verify an https proxy for a plain http URL (its cert_reqs is CERT_NONE there), and does
    # for https, where the proxy's certificate fails as a ProxyError.
    def scenario(s, ctx):
        url = "/echo" if target == "http" else f"{net.https_url}/peer"
        proxies = {"all": net.proxy_url("untrusted")}
        return through(net, "untrusted", lambda: ctx.observe(s.get(url, verify=net.pki.ca, proxies=proxies)))

    check(scenario, mask_verify_reason=True)


# ---- FastHttpSession's proxy_host / proxy_port (the same engine path) -------------------------------------------


def test_fast_http_session_proxy_host_matches_locust(net, endpoints, refused_port):
    from locust.contrib.fasthttp import FastHttpSession as LocustFastHttpSession
    from locust.event import EventHook

    import locust_rs

    def record(cls):
        def session(port):
            return cls(endpoints.base_url, EventHook(), None, proxy_host="127.0.0.1", proxy_port=port, insecure=True)

        plain = net.proxies["plain"].port
        start = net.log_size("plain")
        forwarded = session(plain).get("/echo?a=1")
        tunneled = session(plain).get(f"{net.https_url}/peer")
        refused = session(refused_port).get("/echo")
        return {
            "forwarded": (forwarded.status_code, forwarded.json()["target"]),
            "tunneled": (tunneled.status_code, tunneled.json()),
            "refused": (refused.status_code, repr(refused.error)),
            "proxy_log": [(e["method"], e["target"]) for e in net.log_since("plain", start)],
        }

    assert record(locust_rs.FastHttpSession) == record(LocustFastHttpSession)


def test_fast_http_session_ca_bundle_and_client_certificate(net, endpoints):
    # locust-rs only (Locust's FastHttpSession takes an ssl.SSLContext, which rustls cannot use).
    from locust.event import EventHook

    import locust_rs

    def peer(**kwargs):
        r = locust_rs.FastHttpSession(net.https_url, EventHook(), None, **kwargs).get("/peer")
        return r.status_code, (r.json() if r.status_code == 200 else type(r.error).__name__)

    assert peer(insecure=False, ca_bundle=net.pki.ca) == (200, {"client_cert": None})
    assert peer(insecure=False, ca_bundle=net.pki.other_ca) == (0, "SSLError")
    assert peer(insecure=False, ca_bundle=net.pki.ca, client_cert=net.pki.client_combined) == (
        200,
        {"client_cert": "locust-client"},
    )
    assert peer(client_cert=(net.pki.client_cert, net.pki.client_key)) == (200, {"client_cert": "locust-client"})
    with pytest.raises(FileNotFoundError, match="no such file"):
        peer(client_cert="/nonexistent/client.pem")


def test_fast_http_user_tls_attributes_and_the_ssl_context_factory_warning(net, caplog, monkeypatch):
    from locust import task
    from locust.env import Environment

    import ssl

    import locust_rs
    import locust_rs.fasthttp

    monkeypatch.setattr(locust_rs.fasthttp, "_warned_ssl_context_factory", False)

    class User(locust_rs.FastHttpUser):
        host = net.https_url
        insecure = False
        ca_bundle = net.pki.ca
        client_cert = net.pki.client_combined
        ssl_context_factory = staticmethod(ssl.create_default_context)

        @task
        def t(self):
            pass

    user = User(Environment(user_classes=[User]))
    assert user.client.get("/peer").json() == {"client_cert": "locust-client"}
    assert "ignores ssl_context_factory" in caplog.text
