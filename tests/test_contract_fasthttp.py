"""Contract tests: locust_rs.FastHttpSession must behave like locust.contrib.fasthttp.FastHttpSession.

Each test hands a scenario to ``contract.check``, which runs it with Locust's implementation (the reference) and with
the one under test (``session_factory``'s param: ``ref`` = Locust again, ``rs`` = locust_rs) and compares the
records, events included. See ``contract.py`` for what a record holds. Where Locust's behaviour looks odd, it is
still the contract: these tests compare, they do not judge.

Select one implementation with ``-m impl_ref`` / ``-m impl_rs`` (``-k`` would also match ``refused``, ``headers``).
Set ``LOCUST_RS_CONTRACT_DUMP=1`` to print each reference record.
"""

from locust.exception import CatchResponseError, ResponseError

import time

import gevent
import pytest
from contract import HEADER_CASES, probe

VERBS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


# ---- verbs, bodies, parameters, headers --------------------------------------------------------------------------


@pytest.mark.parametrize("verb", VERBS)
def test_verb_method(contract, verb):
    def scenario(s, ctx):
        return ctx.observe(getattr(s, verb.lower())("/echo"), json_body=verb != "HEAD")

    contract.check(scenario)


@pytest.mark.parametrize("verb", [*VERBS, "get"])
def test_verb_request(contract, verb):
    # "get": Locust reports the method as given in the event, while the wire gets it upper-cased
    def scenario(s, ctx):
        return ctx.observe(s.request(verb, "/echo/sub?x=1"), json_body=verb != "HEAD")

    contract.check(scenario)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": {"a": "1", "b": "two words", "c": "é&="}},
        {"data": "plain text é"},
        {"data": b"\x00\x01raw bytes"},
        {"json": {"a": 1, "nested": {"b": [1, 2, None]}, "s": "é"}},
        {"json": []},
        {"json": None},
        {"data": "", "json": {"data": "empty, so json wins"}},
        {"data": "data wins", "json": {"ignored": True}},
        {"json": {"a": 1}, "headers": {"Content-Type": "application/vnd.custom+json", "Accept": "text/plain"}},
        {"data": {"a": "1"}, "headers": {"content-type": "application/x-custom"}},
    ],
    ids=[
        "form",
        "str",
        "bytes",
        "json",
        "json-empty-list",
        "json-none",
        "empty-data-and-json",
        "data-and-json",
        "json-custom-content-type",
        "form-custom-content-type",
    ],
)
@pytest.mark.parametrize("verb", ["POST", "PUT", "PATCH", "DELETE"])
def test_request_bodies(contract, verb, kwargs):
    def scenario(s, ctx):
        return ctx.observe(s.request(verb, "/echo", **kwargs))

    contract.check(scenario)


def test_body_through_named_methods(contract):
    def scenario(s, ctx):
        return [
            ctx.observe(s.post("/echo", {"positional": "form"})),
            ctx.observe(s.post("/echo", json={"k": "v"})),
            ctx.observe(s.put("/echo", "positional put")),
            ctx.observe(s.put("/echo", json={"k": "put"})),
            ctx.observe(s.patch("/echo", b"positional patch")),
            ctx.observe(s.delete("/echo", json={"k": "delete"})),
            ctx.observe(s.options("/echo", data="options body")),
        ]

    contract.check(scenario)


@pytest.mark.parametrize(
    "url, params",
    [
        ("/echo", {"a": "1", "b": "2"}),
        ("/echo", {"sp ace": "a b", "amp": "x&y=z", "uni": "é€", "slash": "a/b?c"}),
        ("/echo", {"multi": ["x", "y"], "n": 3}),
        ("/echo", [("k", "1"), ("k", "2")]),
        ("/echo?already=here", {"added": "1"}),
        ("/echo?already=here&a=0", {"a": "1"}),
        ("/echo", {}),
    ],
    ids=["simple", "escaping", "list-and-int", "pairs", "merge-with-url-query", "same-key-as-url", "empty"],
)
def test_query_params(contract, url, params):
    def scenario(s, ctx):
        return ctx.observe(s.get(url, params=params))

    contract.check(scenario)


def test_url_escaping_in_path(contract):
    def scenario(s, ctx):
        return [
            ctx.observe(s.get("/echo/a b")),
            ctx.observe(s.get("/echo/é")),
            ctx.observe(s.get("/echo/%41%20b?q=%20x")),
            ctx.observe(s.get("/echo/x?q=a b")),
        ]

    contract.check(scenario)


def test_custom_headers(contract):
    def scenario(s, ctx):
        return [
            ctx.observe(s.get("/echo", headers={"X-Custom": "value", "X-Empty": "", "Accept": "text/html"})),
            # Locust only adds its Accept-Encoding when the caller set none
            ctx.observe(s.get("/echo", headers={"accept-encoding": "identity"})),
            ctx.observe(s.get("/echo", headers={"Host": "example.test"})),
        ]

    contract.check(scenario)


def test_session_default_headers(contract):
    def scenario(s, ctx):
        return [
            ctx.observe(s.get("/echo")),
            ctx.observe(s.get("/echo", headers={"X-Default": "overridden", "X-Other": "1"})),
        ]

    contract.check(scenario, headers={"X-Default": "from-session", "Accept": "application/xml"})


# ---- redirects ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, kwargs",
    [
        ("/redirect/1", {}),
        ("/redirect/3", {}),
        ("/absolute-redirect/2", {}),
        ("/redirect/2", {"allow_redirects": False}),
        ("/redirect-to?url=/echo/target&status=301", {}),
        ("/redirect-to?url=/echo/target&status=303", {}),
        ("/redirect-to?url=/echo/target&status=307", {}),
        ("/redirect-to?url=/echo/target&status=308", {}),
        ("/redirect-to?url=/status/404&status=302", {}),
        ("/status/302", {}),  # a redirect status without Location
        ("/status/301?location=", {}),
    ],
    ids=[
        "one",
        "three",
        "absolute",
        "not-followed",
        "301",
        "303",
        "307",
        "308",
        "to-404",
        "no-location",
        "empty-location",
    ],
)
@pytest.mark.parametrize("verb", ["GET", "POST"])
def test_redirects(contract, verb, url, kwargs):
    # POST shows what happens to method and body: dropped to GET on 301/302/303, kept on 307/308
    def scenario(s, ctx):
        return ctx.observe(s.request(verb, url, data="payload" if verb == "POST" else None, **kwargs))

    contract.check(scenario)


@pytest.mark.parametrize(
    "session_kwargs, url",
    [
        ({}, "/redirect/3"),  # the session's default limit is 3 (geventhttpclient's UserAgent default)
        ({}, "/redirect/4"),
        ({"max_redirects": 1}, "/redirect/2"),
        ({"max_redirects": 0}, "/redirect/1"),  # 0 does not raise: the 302 itself is returned
        ({"max_redirects": 5}, "/redirect/5"),
        ({"max_redirects": 5}, "/redirect/6"),
    ],
    ids=["default-at-limit", "default-over-limit", "1-over", "0", "5-at-limit", "5-over"],
)
def test_redirect_limit(contract, session_kwargs, url):
    def scenario(s, ctx):
        return ctx.observe(s.get(url))

    contract.check(scenario, **session_kwargs)


def test_redirect_to_refused(contract):
    def scenario(s, ctx):
        return ctx.observe(s.get(f"/redirect-to?url={ctx.refused_url}/echo"))

    contract.check(scenario)


# ---- status codes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [200, 201, 202, 204, 206, 226, 300, 304, 400, 401, 403, 404, 418, 500, 502, 503])
def test_status_codes(contract, code):
    def scenario(s, ctx):
        obs = ctx.observe(s.get(f"/status/{code}?tag={ctx.tag}"))
        # bad statuses must not be retried
        return obs, ctx.hits()

    contract.check(scenario)


def test_head_and_empty_bodies(contract):
    def scenario(s, ctx):
        return [
            ctx.observe(s.head("/bytes/50")),
            ctx.observe(s.head("/stream/3")),
            ctx.observe(s.get("/empty")),
            ctx.observe(s.get("/status/204")),
        ]

    contract.check(scenario)


# ---- response bodies: streaming, no length, compression ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/stream/5", "/no-length", "/bytes/3000", "/gzip", "/deflate", "/deflate-raw", "/brotli", "/text"],
)
def test_bodies(contract, path):
    def scenario(s, ctx):
        return ctx.observe(s.get(path))

    contract.check(scenario)


@pytest.mark.parametrize("path", ["/stream/5", "/no-length", "/bytes/3000", "/gzip", "/json"])
@pytest.mark.parametrize("chunk_size, decode", [(1024, True), (7, True), (100, False)], ids=["default", "7", "raw"])
def test_stream_iter_content(contract, path, chunk_size, decode):
    def scenario(s, ctx):
        response = s.get(path, stream=True)
        ctx.checkpoint("returned")
        chunks = list(response.iter_content(chunk_size=chunk_size, decode_content=decode))
        return {
            "response": ctx.observe(response, content=False),
            # each chunk is decoded on its own: a UTF-8 sequence split by the chunking stays bytes, so types mix
            "chunks": [(type(c).__name__, len(c)) for c in chunks],
            "joined": b"".join(c.encode() if isinstance(c, str) else c for c in chunks),
            "content_after": probe(lambda: response.content),
        }

    contract.check(scenario)


@pytest.mark.parametrize("catch", [False, True], ids=["plain", "catch_response"])
@pytest.mark.parametrize("path", ["/stream/5", "/bytes/3000", "/no-length"])
def test_stream_attribute_reads_the_body(contract, path, catch):
    """``response.stream`` is a readable file, also inside ``catch_response`` (it raised AttributeError)."""

    def scenario(s, ctx):
        response = s.get(path, stream=True, catch_response=catch)
        if catch:
            with response as r:
                reads = [r.stream.read(10), r.stream.read(100), r.stream.read()]
                r.success()
        else:
            reads = [response.stream.read(10), response.stream.read(100), response.stream.read()]
        return {"reads": reads, "after": probe(lambda: response.stream.read())}

    contract.check(scenario)


def test_stream_read_then_content(contract):
    def scenario(s, ctx):
        response = s.get("/bytes/3000", stream=True)
        first = response.stream.read(100)
        return {"first": first, "content": response.content}

    contract.check(scenario)


def test_stream_then_content(contract):
    def scenario(s, ctx):
        response = s.get("/stream/4", stream=True)
        return ctx.observe(response)

    contract.check(scenario)


def test_iter_content_after_content(contract):
    def scenario(s, ctx):
        response = s.get("/bytes/100")
        content = response.content
        return {"content": content, "iterated": probe(lambda: list(response.iter_content(chunk_size=10)))}

    contract.check(scenario)


@pytest.mark.parametrize("path", ["/stream/5", "/no-length", "/text", "/empty", "/status/404", "/gzip"])
def test_session_iter_lines(contract, path):
    def scenario(s, ctx):
        lines = s.iter_lines(path)
        ctx.checkpoint("generator created")
        return probe(lambda: list(lines))

    contract.check(scenario)


def test_iter_lines_on_refused(contract):
    def scenario(s, ctx):
        return probe(lambda: list(s.iter_lines("/stream/3")))

    contract.check(scenario, base_url=contract.endpoints.refused_url)


# ---- text decoding and JSON ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "charset=utf-8",
        "charset=latin-1",
        "charset=utf-16",
        "",  # text/plain without charset: requests' rule says ISO-8859-1, so UTF-8 bytes come out as mojibake
        "ctype=application/octet-stream",  # no charset rule at all: charset_normalizer guesses
        "ctype=application/json",
        "ctype=text/html&charset=latin-1",
    ],
)
def test_text_decoding(contract, query):
    def scenario(s, ctx):
        return ctx.observe(s.get(f"/text?{query}"))

    contract.check(scenario)


def test_encoding_override(contract):
    def scenario(s, ctx):
        response = s.get("/text")
        response.encoding = "utf-8"
        return {"text": response.text, "encoding": response.encoding}

    contract.check(scenario)


def test_json(contract):
    def scenario(s, ctx):
        return [
            ctx.observe(s.get("/json?a=1")),
            ctx.observe(s.get("/json-invalid")),
            ctx.observe(s.get("/empty")),
        ]

    contract.check(scenario)


def test_response_headers_mapping(contract):
    def scenario(s, ctx):
        response = s.get("/response-headers?X-One=1&X-Multi=a&X-Multi=b&Set-Cookie=c1%3D1&Set-Cookie=c2%3D2")
        headers = response.headers
        return {
            "get": {name: probe(lambda n=name: headers.get(n)) for name in ("X-One", "x-one", "X-MULTI", "set-cookie")},
            "getitem": {name: probe(lambda n=name: headers[n]) for name in ("X-One", "x-multi", "missing")},
            "get_default": probe(lambda: headers.get("missing", "dflt")),
            "contains": ["x-one" in headers, "X-ONE" in headers, "missing" in headers],
            "items": probe(
                lambda: sorted((k.lower(), v) for k, v in headers.items() if k.lower() not in ("date", "server"))
            ),
        }

    contract.check(scenario)


# ---- cookies -----------------------------------------------------------------------------------------------------


def test_cookies_round_trip(contract):
    def scenario(s, ctx):
        return [
            ctx.observe(s.get("/cookies/set?a=1&b=two")),
            ctx.observe(s.get("/cookies")),
            ctx.observe(s.get("/cookies/set?a=changed")),
            ctx.observe(s.get("/cookies")),
            ctx.observe(s.get("/cookies/delete?b")),
            ctx.observe(s.get("/cookies")),
            # another session has its own jar
            ctx.observe(ctx.session().get("/cookies")),
        ]

    contract.check(scenario)


def test_cookies_set_on_redirect(contract):
    def scenario(s, ctx):
        return [ctx.observe(s.get("/cookies/set-redirect?r=1")), ctx.observe(s.get("/cookies"))]

    contract.check(scenario)


def test_cookies_explicit_header_wins(contract):
    def scenario(s, ctx):
        s.get("/cookies/set?jar=1")
        return ctx.observe(s.get("/cookies", headers={"Cookie": "explicit=1"}))

    contract.check(scenario)


def test_cookiejar_attribute(contract):
    # FastHttpSession.cookiejar (an http.cookiejar.CookieJar) is public: locustfiles read and clear it
    def scenario(s, ctx):
        s.get("/cookies/set?a=1&b=2")
        seen = sorted((c.name, c.value, c.path) for c in s.cookiejar)
        s.cookiejar.clear()
        return {"jar": seen, "after_clear": ctx.observe(s.get("/cookies"))}

    contract.check(scenario)


def test_cookiejar_replaced(contract):
    # Assigning another jar to `client.cookiejar` changes nothing in Locust (geventhttpclient's UserAgent keeps the
    # jar it was built with): the session's cookies go on being sent, and the new jar's are not.
    def scenario(s, ctx):
        from http.cookiejar import Cookie, CookieJar

        s.get("/cookies/set?a=1")
        s.cookiejar = CookieJar()
        after_reset = s.get("/cookies").json()["cookies"]
        jar = CookieJar()
        jar.set_cookie(
            Cookie(0, "b", "2", None, False, "127.0.0.1", True, False, "/", True, False, None, False, None, None, {})
        )
        s.cookiejar = jar
        return {"after_reset": after_reset, "with_jar": s.get("/cookies").json()["cookies"]}

    contract.check(scenario)


# ---- authentication ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, auth",
    [
        ("/basic-auth/user/passwd", ("user", "passwd")),
        ("/basic-auth/user/passwd", ("user", "wrong")),
        ("/basic-auth/user/passwd", None),
        ("/basic-auth/us%C3%A9r/p%C3%A4ss", ("usér", "päss")),  # latin-1 encoded on the wire, not UTF-8
        ("/basic-auth/user/passwd", (b"user", b"passwd")),
        ("/redirect-to?url=/basic-auth/user/passwd", ("user", "passwd")),  # same origin: kept across the redirect
    ],
    ids=["ok", "wrong", "missing", "non-ascii", "bytes", "after-redirect"],
)
def test_basic_auth_param(contract, path, auth):
    def scenario(s, ctx):
        return ctx.observe(s.get(path, auth=auth))

    contract.check(scenario)


@pytest.mark.parametrize(
    "credentials, path, auth",
    [
        ("user:passwd", "/basic-auth/user/passwd", None),
        ("us%40er:p%3Ass", "/basic-auth/us@er/p:ss", None),  # percent-encoded in the URL, decoded for the header
        ("user:passwd", "/basic-auth/other/pw", ("other", "pw")),  # auth= wins over the URL's credentials
        ("user:", "/basic-auth/user/passwd", None),  # no password: Locust sends no Authorization at all
    ],
    ids=["plain", "percent-encoded", "auth-param-wins", "empty-password"],
)
def test_basic_auth_in_base_url(contract, credentials, path, auth):
    def scenario(s, ctx):
        return ctx.observe(s.get(path, auth=auth))

    base = contract.endpoints.base_url.replace("http://", f"http://{credentials}@")
    contract.check(scenario, base_url=base)


# ---- connection failures and timeouts ----------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["GET", "POST"])
@pytest.mark.parametrize("session_kwargs", [{}, {"max_retries": 0}], ids=["default-retries", "no-retries"])
def test_connection_refused(contract, verb, session_kwargs):
    def scenario(s, ctx):
        return ctx.observe(s.request(verb, "/echo", data="x" if verb == "POST" else None))

    contract.check(scenario, base_url=contract.endpoints.refused_url, **session_kwargs)


def test_connection_refused_absolute_url(contract):
    def scenario(s, ctx):
        return ctx.observe(s.get(ctx.refused_url + "/echo?q=1", params={"p": "2"}, name="refused"))

    contract.check(scenario)


@pytest.mark.parametrize(
    "verb, path, session_kwargs",
    [
        ("GET", "/slow?delay=3", {"network_timeout": 0.5, "max_retries": 0}),
        ("GET", "/never", {"network_timeout": 0.5, "max_retries": 0}),
        # the session's default max_retries is 3: an idempotent request is sent 4 times
        ("GET", "/never", {"network_timeout": 0.25}),
        # ... but a POST only once, while the exception still says 3
        ("POST", "/never", {"network_timeout": 0.25}),
        ("PUT", "/never", {"network_timeout": 0.25, "max_retries": 1}),
    ],
    ids=["slow", "never", "never-default-retries", "post-default-retries", "put-1-retry"],
)
def test_network_timeout(contract, verb, path, session_kwargs):
    def scenario(s, ctx):
        started = time.monotonic()
        obs = ctx.observe(s.request(verb, f"{path}{'&' if '?' in path else '?'}tag={ctx.tag}"))
        elapsed = time.monotonic() - started
        # the server counts a request when it reads it, so this is the number of attempts
        hits = ctx.hits()
        return {"response": obs, "hits": hits, "took_at_least_timeouts": elapsed >= hits * s_timeout * 0.9}

    s_timeout = session_kwargs["network_timeout"]
    contract.check(scenario, **session_kwargs)


@pytest.mark.parametrize(
    "session_kwargs",
    [{"connection_timeout": 0.5, "max_retries": 0}, {"connection_timeout": 0.3}],
    ids=["no-retries", "default-retries"],
)
def test_connection_timeout(contract, session_kwargs):
    def scenario(s, ctx):
        started = time.monotonic()
        obs = ctx.observe(s.get("/echo"))
        # nothing reaches the server, so the number of attempts can only be told from the time taken; the estimate
        # has ~0.1 timeout of slack downwards and ~0.9 upwards, and a loaded machine only makes requests slower
        attempts = int((time.monotonic() - started) / session_kwargs["connection_timeout"] + 0.1)
        return {"response": obs, "attempts": attempts}

    contract.check(scenario, base_url=contract.endpoints.blackhole_url, **session_kwargs)


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "stream"])
def test_server_closes_mid_body(contract, stream):
    def scenario(s, ctx):
        response = s.get(f"/close-mid-body?tag={ctx.tag}", stream=stream)
        result = {"response": ctx.observe(response, content=False)}
        if stream:
            result["iter_content"] = probe(lambda: [len(c) for c in response.iter_content(chunk_size=64)])
        result["content"] = probe(lambda: response.content)
        result["text"] = probe(lambda: response.text)
        result["hits"] = ctx.hits()
        return result

    contract.check(scenario, max_retries=0)


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize("path", ["/reset", "/reset-mid-body"])
def test_connection_reset(contract, path, retries):
    """A reset before the response is a closed connection to geventhttpclient (retried as one); a reset in the
    middle of the body is the socket's ConnectionResetError."""

    def scenario(s, ctx):
        return ctx.observe(s.get(f"{path}?tag={ctx.tag}")), ctx.hits()

    contract.check(scenario, max_retries=retries)


@pytest.mark.parametrize("path", ["/close-no-response", "/garbage"])
@pytest.mark.parametrize("verb", ["GET", "POST"])
@pytest.mark.parametrize("concurrency", [None, 4])
def test_server_misbehaves(contract, path, verb, concurrency):
    # hits: geventhttpclient resends an idempotent request on a closed connection once per pool slot, plus one
    def scenario(s, ctx):
        obs = ctx.observe(s.request(verb, f"{path}?tag={ctx.tag}"))
        return {"response": obs, "hits": ctx.hits()}

    contract.check(scenario, **({} if concurrency is None else {"concurrency": concurrency}))


# ---- catch_response and ResponseContextManager -------------------------------------------------------------------


class MyResponseError(ResponseError):
    pass


def test_catch_response_success_path(contract):
    def scenario(s, ctx):
        with s.get("/echo", catch_response=True) as response:
            ctx.checkpoint("inside with")
            inside = ctx.observe(response)
        ctx.checkpoint("after with")
        return inside

    contract.check(scenario)


def test_catch_response_without_with(contract):
    # never entered: Locust never fires the event
    def scenario(s, ctx):
        response = s.get("/echo", catch_response=True)
        return ctx.observe(response)

    contract.check(scenario)


@pytest.mark.parametrize("path", ["/echo", "/status/404", "/status/500"])
def test_catch_response_failure(contract, path):
    def scenario(s, ctx):
        with s.get(path, catch_response=True) as response:
            response.failure("custom failure")
            ctx.checkpoint("after failure()")
            inside = ctx.observe(response, content=False)
        return inside

    contract.check(scenario)


def test_catch_response_failure_with_exception_object(contract):
    def scenario(s, ctx):
        with s.get("/echo", catch_response=True) as response:
            response.failure(ValueError("as an exception"))
        with s.get("/echo", catch_response=True) as response:
            response.failure(MyResponseError("a ResponseError"))
        with s.get("/echo", catch_response=True) as response:
            response.failure(12345)  # not an exception: wrapped into CatchResponseError(12345)

    contract.check(scenario)


@pytest.mark.parametrize("path", ["/status/404", "/status/500", "/echo"])
def test_catch_response_success_on_error(contract, path):
    def scenario(s, ctx):
        with s.get(path, catch_response=True) as response:
            response.success()
            inside = ctx.observe(response, content=False)
        return inside

    contract.check(scenario)


def test_catch_response_last_call_wins(contract):
    def scenario(s, ctx):
        with s.get("/echo", catch_response=True) as response:
            response.failure("first")
            response.success()
        with s.get("/status/404", catch_response=True) as response:
            response.success()
            response.failure("second")

    contract.check(scenario)


@pytest.mark.parametrize("path", ["/status/404", "/echo"])
def test_catch_response_untouched_error(contract, path):
    def scenario(s, ctx):
        with s.get(path, catch_response=True) as response:
            pass
        return ctx.observe(response, content=False)

    contract.check(scenario)


@pytest.mark.parametrize(
    "exc",
    [MyResponseError("response error"), CatchResponseError("catch error"), ValueError("plain error")],
    ids=["ResponseError-subclass", "CatchResponseError", "plain"],
)
def test_catch_response_exception_in_block(contract, exc):
    # ResponseError subclasses are swallowed and reported as the failure; anything else propagates, unreported
    def scenario(s, ctx):
        def body():
            with s.get("/echo", catch_response=True):
                raise exc
            return "swallowed"

        return probe(body)

    contract.check(scenario)


def test_catch_response_exception_after_manual_result(contract):
    # a manual result is reported, but the exception still propagates
    def scenario(s, ctx):
        def failing():
            with s.get("/echo", catch_response=True) as response:
                response.failure("marked")
                raise ValueError("after marking")

        def succeeding():
            with s.get("/status/500", catch_response=True) as response:
                response.success()
                raise MyResponseError("after success")

        return [probe(failing), probe(succeeding)]

    contract.check(scenario)


def test_catch_response_on_refused(contract):
    def scenario(s, ctx):
        with s.get("/echo", catch_response=True) as response:
            inside = ctx.observe(response)
        with s.get("/echo", catch_response=True) as response:
            response.success()
        return inside

    contract.check(scenario, base_url=contract.endpoints.refused_url)


def test_result_methods_misused(contract):
    def scenario(s, ctx):
        plain = s.get("/echo")
        caught = s.get("/echo", catch_response=True)
        result = {
            "plain.success": probe(plain.success),
            "plain.failure": probe(lambda: plain.failure("x")),
            "caught.success outside with": probe(caught.success),
            "caught.failure outside with": probe(lambda: caught.failure("x")),
        }

        def with_without_catch():
            with s.get("/echo"):
                pass

        result["with without catch_response"] = probe(with_without_catch)
        return result

    contract.check(scenario)


# ---- naming and context ------------------------------------------------------------------------------------------


def test_name_and_rename_request(contract):
    def scenario(s, ctx):
        s.get("/echo?id=1", name="/echo?id=[id]")
        with s.rename_request("grouped"):
            s.get("/echo?id=2")
            s.post("/echo", json={"a": 1})
            s.get("/echo?id=3", name="explicit wins")
        s.get("/echo?id=4")
        s.get(ctx.url("/echo?absolute=1"))

        def raising():
            with s.rename_request("reset after raise"):
                raise ValueError("boom")

        after = probe(raising)
        s.get("/echo?after=raise")
        return after

    contract.check(scenario)


def test_request_name_attribute(contract):
    def scenario(s, ctx):
        s.request_name = "set directly"
        s.get("/echo")
        s.request_name = None
        s.get("/echo")

    contract.check(scenario)


def test_context(contract):
    def scenario(s, ctx):
        s.get("/echo", context={"extra": 1})
        s.get("/echo", context={"user": "overridden"})
        with s.get("/echo", catch_response=True, context={"in": "with"}):
            pass
        ctx.session(user=None).get("/echo", context={"no": "user"})

    contract.check(scenario)


# ---- the session's constructor and other entry points ------------------------------------------------------------


def test_absolute_url_and_no_base_url(contract):
    # (a relative path without base_url is left out: Locust requests "None/echo", i.e. resolves the host "None")
    def scenario(s, ctx):
        bare = ctx.session(base_url=None)
        return ctx.observe(bare.get(ctx.url("/echo?absolute=1")))

    contract.check(scenario)


def test_base_url_with_path(contract):
    # Locust concatenates base_url and path as strings: no joining rules, no slash handling
    def scenario(s, ctx):
        return [ctx.observe(s.get("/x")), ctx.observe(s.get("?q=1"))]

    contract.check(scenario, base_url=contract.endpoints.base_url + "/echo/prefix")


def test_proxy(contract):
    # the test server doubles as a plain HTTP proxy: /echo shows the absolute-form request target it got
    def scenario(s, ctx):
        return ctx.observe(s.get("/echo?via=proxy"))

    port = int(contract.endpoints.base_url.rsplit(":", 1)[1])
    contract.check(scenario, base_url="http://contract.invalid:8080", proxy_host="127.0.0.1", proxy_port=port)


def test_concurrency(contract):
    # greenlets sharing a session overlap up to `concurrency` requests (so the engine must not block the gevent hub);
    # a bare session's default is 1 (geventhttpclient's), FastHttpUser passes 10
    def scenario(s, ctx):
        def timed(session, n):
            started = time.monotonic()
            jobs = [gevent.spawn(session.get, "/slow?delay=0.4") for _ in range(n)]
            gevent.joinall(jobs, timeout=10, raise_error=True)
            return time.monotonic() - started, [job.value.status_code for job in jobs]

        default, default_codes = timed(s, 3)
        wide, wide_codes = timed(ctx.session(concurrency=10), 5)
        return {
            "default_serialized": default >= 1.1,
            "default_codes": default_codes,
            "wide_parallel": wide < 1.0,
            "wide_codes": wide_codes,
        }

    contract.check(scenario)


# ---- FastHttpUser and RestMixin ----------------------------------------------------------------------------------


def test_user_client(contract):
    def scenario(s, ctx):
        user = ctx.user(default_headers={"X-From-User": "1"})
        return [
            ctx.observe(user.client.get("/echo")),
            # FastHttpUser's max_redirects is 30, unlike the bare session's 3
            ctx.observe(user.client.get("/redirect/5")),
        ]

    contract.check(scenario)


def test_user_without_host(contract):
    def scenario(s, ctx):
        return probe(lambda: ctx.user(host=None))

    contract.check(scenario)


def test_network_timeout_is_per_read(contract):
    """A reply that trickles in for longer than network_timeout, never silent as long: it succeeds, as
    geventhttpclient's socket timeout is per read."""

    def scenario(s, ctx):
        user = ctx.user(network_timeout=0.6)
        return ctx.observe(user.client.get(f"/trickle?gap=0.25&tag={ctx.tag}")), ctx.hits()

    contract.check(scenario)


def test_user_timeouts(contract):
    def scenario(s, ctx):
        user = ctx.user(network_timeout=0.3)
        return ctx.observe(user.client.get(f"/never?tag={ctx.tag}")), ctx.hits()

    contract.check(scenario)


@pytest.mark.parametrize("headers", HEADER_CASES.values(), ids=HEADER_CASES.keys())
def test_headers_sent_or_refused(contract, headers):
    """geventhttpclient sends a str value in latin-1 and raises ValueError, out of the request, for a value latin-1
    cannot encode and for an invalid name or value."""
    contract.check(lambda s, ctx: probe(lambda: ctx.observe(s.get("/echo", headers=headers))))


@pytest.mark.parametrize("attr", ["network_timeout", "connection_timeout"])
@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), 1e20], ids=["-1", "nan", "inf", "1e20"])
def test_user_timeouts_out_of_range(contract, attr, value):
    """Below zero is gevent's ValueError, raised by each request (not by the user's constructor, which would stop
    Locust from spawning). Infinity and 1e20 are a long timeout, not a panic. (Zero is left out: Locust's outcome
    varies from run to run, EINPROGRESS or EAGAIN; tests/test_bridge.py shows that ours raises ValueError.)"""

    def scenario(s, ctx):
        user = ctx.user(**{attr: value})
        return probe(lambda: ctx.observe(user.client.get(f"/echo?tag={ctx.tag}")))

    contract.check(scenario)


@pytest.mark.parametrize(
    "method, path, kwargs",
    [
        ("GET", "/json?x=1", {}),
        ("POST", "/echo", {"json": {"a": 1}}),
        ("POST", "/echo", {"data": "raw", "headers": {"content-type": "text/plain"}}),
        ("GET", "/json-invalid", {}),
        ("GET", "/status/404", {}),
        ("GET", "/status/204", {}),
        ("GET", "/text", {}),
    ],
    ids=["json", "post-json", "own-content-type", "invalid-json", "404", "204", "text"],
)
def test_rest(contract, method, path, kwargs):
    def scenario(s, ctx):
        user = ctx.user()
        with user.rest(method, path, **kwargs) as response:
            ctx.checkpoint("inside rest")
            inside = {"js": response.js, "status": response.status_code}
        return inside

    contract.check(scenario)


def test_rest_on_refused(contract):
    def scenario(s, ctx):
        user = ctx.user(host=ctx.refused_url)
        with user.rest("GET", "/json") as response:
            return {"js": response.js, "status": response.status_code}

    contract.check(scenario)


def test_rest_assertions_and_errors(contract):
    # AssertionErrors are raised by hand: pytest rewrites the asserts of this module, which would change the messages
    def scenario(s, ctx):
        user = ctx.user()
        with user.rest("GET", "/json"):
            raise AssertionError("wrong planet")
        with user.rest("GET", "/json"):
            raise AssertionError("wrong planet,")  # a trailing comma makes RestMixin append the response text
        with user.rest("GET", "/json"):
            raise AssertionError()
        with user.rest("GET", "/json") as response:
            response.js["missing"]  # noqa: B018 - the KeyError is the point
        with user.rest("GET", "/json") as response:
            response.failure("manual")

    contract.check(scenario)


def test_rest_underscore(contract):
    def scenario(s, ctx):
        user = ctx.user()
        with user.rest_("GET", "/json") as response:
            first = response.js
        with user.rest_("GET", "/json?a=1", name="named") as response:
            second = response.js
        return first, second

    contract.check(scenario)


# ---- API surface -------------------------------------------------------------------------------------------------

# What locustfiles touch beyond the request methods; geventhttpclient internals (client, _response...) are left out.
SESSION_ATTRIBUTES = ("base_url", "request_event", "user", "request_name", "cookiejar", "auth_header")
SESSION_METHODS = (
    "request",
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "head",
    "options",
    "iter_lines",
    "rename_request",
)
RESPONSE_ATTRIBUTES = (
    "content",
    "text",
    "json",
    "url",
    "status_code",
    "ok",
    "headers",
    "encoding",
    "raise_for_status",
    "iter_content",
    "request",
    "success",
    "failure",
)
USER_CLASS_ATTRIBUTES = (
    "network_timeout",
    "connection_timeout",
    "max_redirects",
    "max_retries",
    "insecure",
    "default_headers",
    "concurrency",
    "proxy_host",
    "proxy_port",
    "client_pool",
    "ssl_context_factory",
    "abstract",
)


def test_session_constructor_and_attributes(contract):
    # keywords exactly as FastHttpUser passes them, and the attributes Locust keeps from them
    def scenario(s, ctx):
        from locust.event import EventHook

        event = EventHook()
        event.add_listener(ctx.recorder)
        user = object.__new__(type("U", (), {"context": lambda self: {"k": "v"}}))
        session = ctx.factory(
            base_url=ctx.base_url.replace("http://", "http://us%3Aer:pw@"),
            request_event=event,
            user=user,
            insecure=True,
            client_pool=None,
            ssl_context_factory=None,
            network_timeout=5.0,
            connection_timeout=5.0,
            max_redirects=5,
            max_retries=1,
            concurrency=2,
            headers=None,
            proxy_host=None,
            proxy_port=None,
        )
        ctx.sessions.append(session)
        return {
            "missing_methods": [m for m in SESSION_METHODS if not callable(getattr(session, m, None))],
            "missing_attributes": [a for a in SESSION_ATTRIBUTES if not hasattr(session, a)],
            "base_url": session.base_url,  # credentials stripped
            "auth_header": getattr(session, "auth_header", None),
            "request_event_kept": session.request_event is event,
            "user_kept": session.user is user,
            "request_name": session.request_name,
            "response": ctx.observe(session.get("/echo")),
        }

    contract.check(scenario)


def test_response_attributes(contract):
    def scenario(s, ctx):
        responses = {
            "plain": s.get("/echo"),
            "caught": s.get("/echo", catch_response=True),
            "refused": ctx.session(ctx.refused_url).get("/echo"),
        }
        return {
            kind: [a for a in RESPONSE_ATTRIBUTES if not hasattr(response, a)] for kind, response in responses.items()
        }

    contract.check(scenario)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"data": {"a": "1"}}, {"data": "text"}, {"json": {"a": 1}}, {"params": {"p": "1"}}],
    ids=["none", "form", "str", "json", "params"],
)
def test_response_request_attribute(contract, kwargs):
    # response.request is how locustfiles log what was sent when a request fails
    def scenario(s, ctx):
        request = s.post("/echo?q=1", **kwargs).request
        return {
            "url": probe(lambda: request.url),
            "method": probe(lambda: request.method),
            "body": probe(lambda: request.body),
            # the User-Agent value names the client library: only its presence is part of the contract
            "headers": probe(
                lambda: sorted(
                    (k.lower(), "<present>" if k.lower() == "user-agent" else v) for k, v in request.headers.items()
                )
            ),
        }

    contract.check(scenario)


def test_request_meta_in_with_block(contract):
    # Locust's documented way to rename a request after the fact, or to add context, is to edit request_meta
    def scenario(s, ctx):
        with s.get("/echo?id=1", catch_response=True) as response:
            keys = sorted(response.request_meta)
            response.request_meta["name"] = "renamed in block"
            response.request_meta["context"]["added"] = True
        return keys

    contract.check(scenario)


def test_user_class_defaults(contract):
    def scenario(s, ctx):
        cls = ctx.impl.FastHttpUser
        return {name: probe(lambda name=name: getattr(cls, name)) for name in USER_CLASS_ATTRIBUTES}

    contract.check(scenario)
