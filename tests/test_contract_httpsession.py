"""Contract tests: locust_rs.HttpSession/HttpUser must behave like Locust's own (locust.clients.HttpSession).

Each scenario runs with Locust's HttpSession (the reference) and with the candidate (``ref`` = Locust again, checking
the harness is deterministic; ``rs`` = locust_rs), and the normalized records, fired events included, must be equal.
The recording and normalization are those of ``contract.py`` (see there for what is compared of an event).
"""

import io
import json
import re
import types
import uuid

import gevent
import pytest
import requests
from contract import DEFAULT_USER_CONTEXT, HEADER_CASES, SCENARIO_TIMEOUT, Normalizer, Recorder, diff_records, probe

OBSERVED = ("content-type", "content-length", "location", "set-cookie", "x-a")


class _User:
    def context(self):
        return dict(DEFAULT_USER_CONTEXT)


def _impl(name):
    if name == "ref":
        from locust import HttpUser
        from locust.clients import HttpSession, ResponseContextManager
    else:
        from locust_rs.clients import HttpSession, HttpUser, ResponseContextManager
    return types.SimpleNamespace(
        name=name, HttpSession=HttpSession, HttpUser=HttpUser, ResponseContextManager=ResponseContextManager
    )


class Ctx:
    def __init__(self, impl, recorder, endpoints, tag):
        from locust.event import EventHook

        self.impl = impl
        self.endpoints = endpoints
        self.base_url = endpoints.base_url
        self.tag = tag
        self.event = EventHook()
        self.event.add_listener(recorder)

    def session(self, base_url=None, **kwargs):
        return self.impl.HttpSession(base_url or self.base_url, self.event, _User(), **kwargs)

    def user(self, **attrs):
        from locust.env import Environment

        cls = type("ContractUser", (self.impl.HttpUser,), {"host": self.base_url, **attrs})
        env = Environment(user_classes=[cls])
        env.events.request.add_listener(self.event.fire)
        return cls(env)

    def observe(self, r, content=True):
        obs = {
            "status_code": probe(lambda: r.status_code),
            "ok": probe(lambda: r.ok),
            "url": probe(lambda: r.url),
            "reason": probe(lambda: r.reason),
            "is_rcm": isinstance(r, self.impl.ResponseContextManager),
            "is_requests_response": isinstance(r, requests.Response),
            "headers": {h: probe(lambda h=h: r.headers.get(h)) for h in OBSERVED},
            "history": probe(lambda: [(h.status_code, h.url, h.headers.get("location")) for h in r.history]),
            "cookies": probe(lambda: sorted(r.cookies.get_dict().items())),
            "elapsed_type": probe(lambda: type(r.elapsed).__name__),
            "error": probe(lambda: repr(getattr(r, "error", None))),
            "raise_for_status": probe(lambda: r.raise_for_status()),
            "request": probe(lambda: (r.request.method, r.request.url) if r.request is not None else None),
        }
        if content:
            obs["content"] = probe(lambda: r.content)
            obs["text"] = probe(lambda: r.text)
            obs["encoding"] = probe(lambda: r.encoding)
            obs["json"] = probe(lambda: _echo_view(r.json()))
        return obs


def _echo_view(js):
    """The /echo answer without what legitimately differs: the User-Agent and Accept-Encoding (br, zstd) values."""
    if isinstance(js, dict) and js.get("echo"):
        js = dict(js)
        js["headers"] = {k: v for k, v in js["headers"].items() if k not in ("accept-encoding", "connection")}
    return js


# Ports of servers other than ``endpoints`` that appear in records (https servers, proxies): port -> placeholder.
EXTRA_PORTS: dict[int, str] = {}


def run(impl_name, endpoints, scenario):
    impl = _impl(impl_name)
    recorder = Recorder(impl)
    tag = f"t{uuid.uuid4().hex[:16]}"
    ctx = Ctx(impl, recorder, endpoints, tag)
    try:
        with gevent.Timeout(SCENARIO_TIMEOUT, AssertionError("scenario hung")):
            outcome = {"returned": scenario(ctx.session(), ctx)}
    except Exception as e:  # noqa: BLE001 - the exception is part of the record
        outcome = {"raised": {"type": type(e).__name__, "str": str(e)}}
    ports = {
        int(endpoints.base_url.rsplit(":", 1)[1]): "<PORT>",
        int(endpoints.refused_url.rsplit(":", 1)[1]): "<REFUSED_PORT>",
        int(endpoints.blackhole_url.rsplit(":", 1)[1]): "<BLACKHOLE_PORT>",
        **EXTRA_PORTS,
    }
    return Normalizer({tag: "<TAG>"}, ports)({"outcome": outcome, "events": recorder.log})


@pytest.fixture(params=["ref", "rs"])
def check(request, endpoints):
    def check(scenario):
        reference = run("ref", endpoints, scenario)
        candidate = run(request.param, endpoints, scenario)
        if candidate != reference:
            pytest.fail(f"differs from Locust's HttpSession:\n{diff_records(reference, candidate)}", pytrace=False)

    return check


# ---- verbs, bodies, params, headers ------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_verbs(check, verb):
    check(lambda s, ctx: ctx.observe(getattr(s, verb.lower())("/echo"), content=verb != "HEAD"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": {"a": "1", "b": "two words", "c": "é&="}},
        {"data": [("a", "1"), ("a", "2")]},
        {"data": "plain text é"},
        {"data": b"\x00\x01raw bytes"},
        {"json": {"a": 1, "nested": {"b": [1, 2, None]}, "s": "é"}},
        {"json": {"a": 1}, "headers": {"Content-Type": "application/vnd.custom+json"}},
        {"files": {"f": ("a.txt", b"hello file", "text/plain")}, "data": {"field": "v"}},
        {"files": {"f": io.BytesIO(b"from a file object")}},
        {"data": io.BytesIO(b"file-like body")},
    ],
    ids=["form", "form-list", "str", "bytes", "json", "json-ctype", "multipart", "multipart-fileobj", "filelike"],
)
def test_bodies(check, kwargs):
    def scenario(s, ctx):
        kw = {k: (io.BytesIO(v.getvalue()) if isinstance(v, io.BytesIO) else v) for k, v in kwargs.items()}
        if "files" in kw:
            kw["files"] = {
                k: io.BytesIO(v.getvalue()) if isinstance(v, io.BytesIO) else v for k, v in kw["files"].items()
            }
        r = s.post("/echo", **kw)
        js = r.json()
        # the multipart boundary is random
        body = re.sub("[0-9a-f]{32}", "<BOUNDARY>", js["body"])
        return {"body": body, "length_header_present": "content-length" in js["headers"], "status": r.status_code}

    check(scenario)


def test_generator_body(check):
    def scenario(s, ctx):
        js = s.post("/echo", data=(c for c in [b"ab", b"cd"])).json()
        return js["body"]

    check(scenario)


@pytest.mark.parametrize(
    "params",
    [{"a": "1", "b": ["x", "y"]}, [("a", "1"), ("a", "2")], "raw=1&z", {"q": "é ?&"}],
    ids=["dict-list", "pairs", "str", "quoting"],
)
def test_params(check, params):
    check(lambda s, ctx: ctx.observe(s.get("/echo?pre=1", params=params)))


def test_headers_and_session_headers(check):
    def scenario(s, ctx):
        first = s.get("/echo", headers={"X-A": "1"}).json()["headers"].get("x-a")
        s.headers.update({"X-Session": "s"})
        second = s.get("/echo", headers={"X-A": "2"}).json()["headers"]
        return [first, second.get("x-a"), second.get("x-session"), second.get("accept")]

    check(scenario)


def test_response_headers_case_insensitive(check):
    def scenario(s, ctx):
        r = s.get("/response-headers?X-A=1&X-A=2")
        return [r.headers.get("x-a"), r.headers.get("X-A"), "X-a" in r.headers]

    check(scenario)


# ---- statuses, events, catch_response ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", [200, 201, 204, 302, 304, 400, 401, 404, 500, 503])
def test_status(check, code):
    check(lambda s, ctx: ctx.observe(s.get(f"/status/{code}", allow_redirects=False)))


@pytest.mark.parametrize(
    "query",
    ["200?reason=All%20Good", "404?reason=", "599?reason=Custom", "413", "302?location=/echo&reason=Moved%20Along"],
    ids=["custom", "empty", "unknown-code", "python-phrase", "redirect-hop"],
)
def test_reason_phrase_as_sent(check, query):
    def scenario(s, ctx):
        r = s.get(f"/status/{query}")
        return [r.reason, [h.reason for h in r.history]]

    check(scenario)


def test_names_and_rename(check):
    def scenario(s, ctx):
        s.get("/echo?x=1")
        s.get("/echo", name="named")
        s.get("/status/404", name="named404")
        with s.rename_request("grouped"):
            s.get("/echo/a")
            s.get("/echo/b")
        s.get(ctx.base_url + "/echo/absolute", params={"p": 1})
        s.get("/echo", context={"extra": 1})
        return None

    check(scenario)


def test_catch_response(check):
    def scenario(s, ctx):
        with s.get("/status/404", catch_response=True) as r:
            r.success()
        with s.get("/echo", catch_response=True) as r:
            r.failure("custom failure")
        with s.get("/status/500", catch_response=True) as r:
            pass
        with s.get("/echo", catch_response=True) as r:
            from locust.exception import ResponseError

            raise ResponseError("raised inside")
        return probe(lambda: s.get("/echo").success())

    check(scenario)


def test_with_block_without_catch_response(check):
    def scenario(s, ctx):
        r = s.get("/echo")
        return probe(lambda: r.__enter__())

    check(scenario)


def test_rest(check):
    def scenario(s, ctx):
        user = ctx.user()
        out = []
        with user.rest("POST", "/echo", json={"a": 1}) as r:
            out.append(r.js["method"])
        with user.rest("GET", "/json-invalid") as r:
            out.append(r.js)
        with user.rest("GET", "/json") as r:
            assert r.js["hello"] == "nope", "not the hello,"
        with user.rest("GET", "/status/404") as r:
            pass
        return out

    check(scenario)


# ---- redirects ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/redirect/3", "/absolute-redirect/2", "/redirect-to?url=/echo&status=307"])
def test_redirects(check, path):
    check(lambda s, ctx: ctx.observe(s.get(path)))


def test_redirect_not_followed(check):
    check(lambda s, ctx: ctx.observe(s.get("/redirect/2", allow_redirects=False)))


def test_redirect_post_becomes_get(check):
    def scenario(s, ctx):
        r = s.post("/redirect-to?url=/echo&status=302", data={"a": "1"})
        return [r.json()["method"], r.json()["body"], [h.status_code for h in r.history]]

    check(scenario)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("verb", ["POST", "PUT", "DELETE"])
def test_redirect_method_rewriting(check, verb, status):
    def scenario(s, ctx):
        r = s.request(verb, f"/redirect-to?url=/echo&status={status}", data="payload")
        js = r.json()
        return [js["method"], js["body"], js["headers"].get("content-length"), r.request.method]

    check(scenario)


def test_head_does_not_follow(check):
    check(lambda s, ctx: ctx.observe(s.head("/redirect/1"), content=False))


# ---- cookies -----------------------------------------------------------------------------------------------------


def test_cookies_across_requests(check):
    def scenario(s, ctx):
        r = s.get("/cookies/set?a=1&b=2")
        out = [sorted(r.cookies.get_dict().items()), sorted(s.cookies.get_dict().items())]
        out.append(s.get("/cookies").json()["cookies"])
        s.get("/cookies/delete?a")
        out.append(s.get("/cookies").json()["cookies"])
        out.append(s.get("/cookies/set-redirect?c=3").json()["cookies"])
        return out

    check(scenario)


def test_cookies_argument_dict_and_jar(check):
    def scenario(s, ctx):
        s.get("/cookies/set?a=1")
        jar = requests.cookies.RequestsCookieJar()
        jar.set("j", "jv")
        out = [
            s.get("/cookies", cookies={"d": "dv"}).json()["cookies"],
            s.get("/cookies", cookies=jar).json()["cookies"],
            s.get("/cookies", cookies={"a": "override"}).json()["cookies"],
            # per-request cookies are not kept by the session
            sorted(s.cookies.get_dict().items()),
        ]
        return out

    check(scenario)


def test_session_cookie_set_by_hand(check):
    def scenario(s, ctx):
        s.cookies.set("token", "abc")
        s.cookies["other"] = "x"
        return [s.get("/cookies").json()["cookies"], s.cookies.get("token"), "other" in s.cookies]

    check(scenario)


@pytest.mark.parametrize("form", ["jar", "dict-jar"])
def test_assigning_a_cookie_jar(check, form):
    def scenario(s, ctx):
        from requests.cookies import RequestsCookieJar, cookiejar_from_dict

        s.get("/cookies/set?old=1")
        if form == "jar":
            jar = RequestsCookieJar()
            jar.set("a", "1", domain="127.0.0.1", path="/")
            jar.set("b", "2")
        else:
            jar = cookiejar_from_dict({"c": "3"})
        s.cookies = jar
        return [s.get("/cookies").json()["cookies"], sorted((c.name, c.value) for c in s.cookies)]

    check(scenario)


def test_cookie_set_by_hand_goes_to_every_host(check):
    # requests (http.cookiejar) sends a cookie without a domain to any host, on paths under its own.
    def scenario(s, ctx):
        s.cookies.set("token", "abc")
        s.cookies.set("scoped", "1", path="/cookies")
        other = ctx.base_url.replace("127.0.0.1", "localhost")
        s.get("/cookies/set?host=1")
        out = [
            s.get("/cookies").json()["cookies"],
            s.get(other + "/cookies").json()["cookies"],
            s.get(other + "/echo").json()["headers"].get("cookie"),
        ]
        del s.cookies["token"]
        out.append(s.get(other + "/cookies").json()["cookies"])
        out.append(sorted((c.name, c.value, c.domain, c.path) for c in s.cookies))
        s.cookies.clear()
        out.append(s.get("/cookies").json()["cookies"])
        return out

    check(scenario)


# ---- auth --------------------------------------------------------------------------------------------------------


def test_auth(check):
    def scenario(s, ctx):
        out = [s.get("/basic-auth/u/p", auth=("u", "p")).status_code, s.get("/basic-auth/u/p").status_code]
        s.auth = requests.auth.HTTPBasicAuth("u", "p")
        out.append(s.get("/basic-auth/u/p").status_code)

        class Token(requests.auth.AuthBase):
            def __call__(self, r):
                r.headers["X-A"] = "token"
                return r

        out.append(s.get("/echo", auth=Token()).json()["headers"].get("x-a"))
        return out

    check(scenario)


def test_auth_in_base_url(check, endpoints):
    def scenario(s, ctx):
        s2 = ctx.session(base_url=endpoints.base_url.replace("http://", "http://us%40er:p%3Ass@"))
        return [s2.base_url.replace(endpoints.base_url, "<BASE>"), s2.get("/basic-auth/us@er/p:ss").status_code]

    check(scenario)


# ---- errors ------------------------------------------------------------------------------------------------------


def test_connection_refused(check, endpoints):
    check(lambda s, ctx: ctx.observe(s.get(endpoints.refused_url + "/x")))


def test_connect_timeout(check, endpoints):
    check(lambda s, ctx: ctx.observe(s.get(endpoints.blackhole_url + "/x", timeout=0.3)))


@pytest.mark.parametrize("timeout", [0.3, (5, 0.3)], ids=["float", "tuple"])
def test_read_timeout(check, timeout):
    check(lambda s, ctx: ctx.observe(s.get("/slow?delay=2", timeout=timeout)))


@pytest.mark.parametrize(
    "timeout",
    [0, -1, 0.0, (0, 5), (5, -1), (None, 0), True, "soon", (1, 2, 3), 1e20, float("inf"), float("nan")],
    ids=["0", "-1", "0.0", "tuple-0", "tuple-neg", "tuple-none-0", "bool", "str", "triple", "1e20", "inf", "nan"],
)
def test_timeout_out_of_range(check, timeout):
    """urllib3's ValueError, word for word, raised before anything is sent; 1e20 and infinity are a long
    timeout."""
    check(lambda s, ctx: ctx.observe(s.get("/echo", timeout=timeout)))


@pytest.mark.parametrize("headers", HEADER_CASES.values(), ids=HEADER_CASES.keys())
def test_header_values_and_names(check, headers):
    """requests sends a str value in latin-1 and bytes as they are; a value latin-1 cannot encode raises
    UnicodeEncodeError, an invalid name or value is a failed request (InvalidHeader)."""
    check(lambda s, ctx: ctx.observe(s.get("/echo", headers=headers)))


def test_read_timeout_is_per_read(check):
    """A reply that trickles in, headers included, for longer than the read timeout, with no gap as long: requests'
    timeout is per read, so it succeeds (it failed after `timeout` before)."""
    check(lambda s, ctx: ctx.observe(s.get("/trickle?gap=0.25", timeout=(5, 0.6))))


def test_timeout_not_reached(check):
    check(lambda s, ctx: ctx.observe(s.get("/slow?delay=0.1", timeout=(5, 5))))


@pytest.mark.parametrize("path", ["/close-mid-body", "/close-no-response", "/reset", "/reset-mid-body"])
def test_server_misbehaves(check, path):
    check(lambda s, ctx: ctx.observe(s.get(path)))


@pytest.mark.parametrize("url", ["http:///nohost", "ftp://x/y", "nohost", "http://exa mple.com:99999/"])
def test_invalid_urls(check, url):
    check(lambda s, ctx: ctx.observe(s.get(url)))


@pytest.mark.parametrize("url", ["/x", "http://"], ids=["path", "scheme-only"])
def test_invalid_base_urls(check, url):
    def scenario(s, ctx):
        return ctx.observe(ctx.session(base_url="no-scheme.example").get(url))

    check(scenario)


@pytest.mark.parametrize(
    "base", ["telnet://127.0.0.1", "127.0.0.1", "127.0.0.1:1", "//127.0.0.1:1", "ftp://127.0.0.1:1", "http://"]
)
def test_base_urls_without_an_http_scheme(check, base):
    """requests' InvalidSchema (no adapter), MissingSchema or InvalidURL, raised out of the request."""
    check(lambda s, ctx: ctx.observe(ctx.session(base_url=base).get("/x")))


def test_exceptions_users_catch(check, endpoints):
    def scenario(s, ctx):
        out = []
        for target in (endpoints.refused_url + "/x", "/status/500"):
            try:
                s.get(target).raise_for_status()
            except requests.exceptions.RequestException as e:
                out.append([type(e).__name__, isinstance(e, requests.ConnectionError | requests.HTTPError)])
        return out

    check(scenario)


# ---- bodies out: content, text, json, encoding, streaming -------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/text", "/text?charset=latin-1", "/text?charset=utf-8&ctype=text/html", "/json", "/bytes/64", "/empty"]
)
def test_response_bodies(check, path):
    check(lambda s, ctx: ctx.observe(s.get(path)))


@pytest.mark.parametrize("path", ["/gzip", "/deflate", "/brotli"])
def test_compressed(check, path):
    check(lambda s, ctx: ctx.observe(s.get(path)))


def test_invalid_json(check):
    def scenario(s, ctx):
        r = s.get("/json-invalid")
        return probe(lambda: r.json())["raises"]["type"]

    check(scenario)


@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_stream(check, chunk_size):
    def scenario(s, ctx):
        r = s.get("/stream/4", stream=True)
        chunks = list(r.iter_content(chunk_size=chunk_size))
        out = {"joined": b"".join(chunks), "again": probe(lambda: list(r.iter_content()))}
        out["content_after"] = probe(lambda: r.content)
        if chunk_size is not None:
            out["sizes"] = [len(c) for c in chunks]
        r2 = s.get("/stream/3", stream=True)
        out["lines"] = list(r2.iter_lines(decode_unicode=True))
        r3 = s.get("/json", stream=True)
        out["content_of_stream"] = r3.json()
        return out

    check(scenario)


def test_elapsed_and_ok(check):
    def scenario(s, ctx):
        r = s.get("/echo")
        return [r.elapsed.total_seconds() >= 0, r.ok, bool(r), r.is_redirect]

    check(scenario)


def test_verify_argument_accepted(check):
    check(lambda s, ctx: ctx.observe(s.get("/echo", verify=False)))


def test_response_hooks(check):
    def scenario(s, ctx):
        seen = []
        s.get("/echo", hooks={"response": lambda r, *a, **k: seen.append(r.status_code)})
        return seen

    check(scenario)


def test_user_defaults(check):
    def scenario(s, ctx):
        user = ctx.user()
        user.client.get("/echo")
        return [user.client.trust_env, user.client.verify, isinstance(user.client, requests.Session)]

    check(scenario)


def test_json_round_trip(check):
    def scenario(s, ctx):
        return json.loads(s.post("/echo", json={"k": [1, 2]}).content)["body"]

    check(scenario)


def test_base_url_with_path(check, endpoints):
    def scenario(s, ctx):
        s2 = ctx.session(base_url=endpoints.base_url + "/echo")
        return [s2.get("/sub?x=1").json()["path"], s2.get("").status_code, s2.get("/a#frag").json()["path"]]

    check(scenario)


def test_session_headers_replaced_and_deleted(check):
    def scenario(s, ctx):
        s.headers = {"X-A": "replaced"}
        first = s.get("/echo").json()["headers"].get("x-a")
        s.headers["X-A"] = "changed"
        second = s.get("/echo").json()["headers"].get("x-a")
        return [first, second]

    check(scenario)


def test_session_params_and_stream_attributes(check):
    def scenario(s, ctx):
        s.params = {"always": "1"}
        first = s.get("/echo", params={"x": "2"}).json()["args"]
        s.params = {}
        s.stream = True
        r = s.get("/stream/2")
        return [first, b"".join(r.iter_content(None)).count(b"\n")]

    check(scenario)


def test_header_none_removes_a_default(check):
    def scenario(s, ctx):
        js = s.get("/echo", headers={"Accept": None, "x-a": "1"}).json()["headers"]
        s.headers["Authorization"] = "Bearer session"
        js2 = s.get("/echo", headers={"authorization": "Bearer request"}).json()["headers"]
        js3 = s.get("/echo").json()["headers"]
        return [js.get("accept"), js.get("x-a"), js2.get("authorization"), js3.get("authorization")]

    check(scenario)


@pytest.mark.parametrize("where", ["request", "session"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_digest_auth(check, where, method):
    # HTTPDigestAuth answers the 401 from a response hook, through response.connection.send: one event, the 401 in
    # the history, the second round trip's answer as the response.
    def scenario(s, ctx):
        from requests.auth import HTTPDigestAuth

        auth = HTTPDigestAuth("user", "pw")
        kw = {"auth": auth} if where == "request" else {}
        if where == "session":
            s.auth = auth
        first = ctx.observe(s.request(method, "/digest-auth/user/pw?x=1", data=b"payload", **kw))
        # The nonce is known now: the next request answers the challenge at once.
        second = ctx.observe(s.request(method, "/digest-auth/user/pw", **kw))
        wrong = ctx.observe(s.get("/digest-auth/user/other", auth=HTTPDigestAuth("user", "pw")))
        return [first, second, wrong]

    check(scenario)


def test_response_hooks_of_request_replace_the_sessions(check):
    def scenario(s, ctx):
        seen = []
        s.hooks["response"].append(lambda r, **kw: seen.append(("session", r.status_code, sorted(kw))))
        s.get("/status/200")
        s.get("/status/201", hooks={"response": lambda r, **kw: seen.append(("request", r.status_code))})
        return seen

    check(scenario)


def test_history_responses_carry_their_bodies(check):
    def scenario(s, ctx):
        r = s.get("/status/302?location=/status/301%3Flocation%3D/echo")
        return [(h.status_code, h.content, h.text, h.encoding) for h in r.history]

    check(scenario)


def test_too_many_redirects(check):
    def scenario(s, ctx):
        s.max_redirects = 2
        r = s.get("/redirect/5")
        return [r.status_code, repr(r.error), type(r.error).__name__]

    check(scenario)
