"""TJSONProtocol over HTTP and CORS (docs/http.md, "From a web page"), on both backends: Apache
Thrift's Python TJSONProtocol client (the same wire format as its JavaScript library) over
THttpClient, raw requests for preflights and refusals, and hostile JSON bodies (hypothesis)
against the session, which must answer each within a bounded cost."""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from thrift.protocol import TJSONProtocol
from thrift.Thrift import TApplicationException
from thrift.transport import THttpClient

import dracula
from dracula.http import tjson
from dracula.http.session import HttpMessage, HttpSession
from dracula.wire.errors import WireError
from examples.showcase import ShowcaseHandler

from . import apache_client as apache
from .helpers import BACKENDS, running, showcase_thrift
from .test_http import TIMEOUT, post, raw

JSON_TYPE = "application/vnd.apache.thrift.json"
PAGE = "http://page.example:8000"


@pytest.mark.parametrize("backend", BACKENDS)
def test_apache_json_client_over_http(backend):
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend) as server:
        trans = THttpClient.THttpClient("http://127.0.0.1:%d/" % server.port)
        trans.setTimeout(TIMEOUT * 1000)
        # Apache's Python THttpClient says application/x-thrift whatever the protocol: the
        # body's "[" says TJSONProtocol (the JavaScript library's XHR says the JSON type).
        client = apache.ShowcaseClient(TJSONProtocol.TJSONProtocol(trans))
        assert client.add(1, 2) == 3
        assert client.add(-(1 << 60), 1) == -(1 << 60) + 1  # i64 past a double's exact range is kept
        assert client.reverse(b"\x00ab\xff") == b"\xffba\x00"
        shape = apache.Shape(
            name="s \u00e9", points=[apache.Point(x=1, y=-2)], labels={"a": []}, tags={5, 7}, blob=b"\x01"
        )
        echoed = client.echo_shape(shape)
        assert echoed.name == "s \u00e9" and echoed.points == shape.points and set(echoed.tags) == {5, 7}
        assert echoed.blob == b"\x01" and echoed.labels == {"a": []}
        with pytest.raises(apache.NotFound):
            client.lookup("missing")
        with pytest.raises(TApplicationException) as failed:
            client.fail("boom")
        assert failed.value.type == TApplicationException.INTERNAL_ERROR
        assert trans.code == 200 and dict(trans.headers)["Content-Type"] == "application/x-thrift"
        trans.close()


def exchange(server, body: bytes, **headers):
    with raw(server) as (sock, responses):
        sock.sendall(post(body, JSON_TYPE, **headers))
        return responses.next()


@pytest.mark.parametrize("backend", BACKENDS)
def test_json_errors_are_answered(backend):
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend) as server:
        bad = exchange(server, b"[1,")
        assert bad.status == 400 and b"not JSON" in bad.body
        shape = exchange(server, b'{"not": "a message"}')
        assert shape.status == 400
        # A message whose arguments do not fit the IDL: PROTOCOL_ERROR in JSON, as on a socket.
        wrong = exchange(server, b'[1,"add",1,7,{"1":{"str":"x"},"2":{"i64":1}}]')
        assert wrong.status == 200 and wrong.getheader("Content-Type") == JSON_TYPE
        version, name, mtype, seqid, error = json.loads(wrong.body)
        assert (version, name, mtype, seqid) == (1, "add", 3, 7)
        assert error["2"] == {"i32": TApplicationException.PROTOCOL_ERROR}
        unknown = json.loads(exchange(server, b'[1,"nope",1,1,{}]').body)
        assert unknown[4]["2"] == {"i32": TApplicationException.UNKNOWN_METHOD}
        range_ = json.loads(exchange(server, b'[1,"add",1,1,{"1":{"i64":1e300},"2":{"i64":1}}]').body)
        assert range_[4]["2"] == {"i32": TApplicationException.PROTOCOL_ERROR}


# -- CORS --------------------------------------------------------------------------------------


def preflight(server, origin: str, method="POST"):
    with raw(server) as (sock, responses):
        sock.sendall(
            (
                "OPTIONS / HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\nAccess-Control-Request-Method: %s\r\n"
                "Access-Control-Request-Headers: content-type\r\n\r\n" % (origin, method)
            ).encode()
        )
        return responses.next()


@pytest.mark.parametrize("backend", BACKENDS)
def test_cors_preflight_and_responses(backend):
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend, cors_origin=(PAGE,)) as server:
        ok = preflight(server, PAGE)
        assert ok.status == 204
        assert ok.getheader("Access-Control-Allow-Origin") == PAGE
        assert ok.getheader("Access-Control-Allow-Methods") == "POST"
        assert ok.getheader("Access-Control-Allow-Headers") == "content-type"
        assert ok.getheader("Access-Control-Max-Age") == "600"
        refused = preflight(server, "http://evil.example")
        assert refused.status == 403 and refused.getheader("Access-Control-Allow-Origin") is None
        assert preflight(server, PAGE, "PUT").status == 403
        answered = exchange(server, b'[1,"add",1,1,{"1":{"i64":2},"2":{"i64":3}}]', Origin=PAGE)
        assert answered.getheader("Access-Control-Allow-Origin") == PAGE and answered.getheader("Vary") == "Origin"
        assert json.loads(answered.body)[4] == {"0": {"i64": 5}}
        other = exchange(server, b'[1,"add",1,1,{"1":{"i64":2},"2":{"i64":3}}]', Origin="http://evil.example")
        assert other.status == 200 and other.getheader("Access-Control-Allow-Origin") is None


class CountingHandler(ShowcaseHandler):
    def __init__(self) -> None:
        super().__init__()
        self.adds = 0

    def add(self, a, b):
        self.adds += 1
        return super().add(a, b)


ADD = b'[1,"add",1,1,{"1":{"i64":2},"2":{"i64":3}}]'


def simple_post(server, origin: str | None, content_type: str | None):
    """What a page's fetch() may send to any origin without a preflight."""
    head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % len(ADD)
    if content_type is not None:
        head += "Content-Type: %s\r\n" % content_type
    if origin is not None:
        head += "Origin: %s\r\n" % origin
    with raw(server) as (sock, responses):
        sock.sendall(head.encode() + b"\r\n" + ADD)
        return responses.next()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cors_origin", [(), (PAGE,)])
def test_a_simple_cross_origin_post_never_runs_the_handler(backend, cors_origin):
    """CORS hides a response from a page, but a "simple" POST (no preflight) would still run the
    handler: from an origin not allowed it is refused with 403 and the handler never runs."""
    handler = CountingHandler()
    with running(showcase_thrift.Showcase, handler, backend=backend, cors_origin=cors_origin) as server:
        for content_type in ("text/plain;charset=UTF-8", None, "application/x-www-form-urlencoded"):
            refused = simple_post(server, "http://evil.example", content_type)
            assert refused.status == 403 and b"evil.example" in refused.body
            assert refused.getheader("Access-Control-Allow-Origin") is None
        assert simple_post(server, "null", "text/plain").status == 403  # a sandboxed frame's origin
        assert handler.adds == 0
        # Not a browser's cross-origin request: served as before.
        assert simple_post(server, None, "text/plain").status == 200
        assert handler.adds == 1
        if cors_origin:  # an allowed page's simple POST runs, and the page may read the answer
            allowed = simple_post(server, PAGE, "text/plain")
            assert allowed.status == 200 and allowed.getheader("Access-Control-Allow-Origin") == PAGE
            assert json.loads(allowed.body)[4] == {"0": {"i64": 5}}
            assert handler.adds == 2


def test_cors_any_origin():
    with running(showcase_thrift.Showcase, ShowcaseHandler(), cors_origin=("*",)) as server:
        ok = preflight(server, "http://anywhere.example")
        assert ok.status == 204 and ok.getheader("Access-Control-Allow-Origin") == "*"


def test_without_cors_a_preflight_gets_405():
    with running(showcase_thrift.Showcase, ShowcaseHandler()) as server:
        assert preflight(server, PAGE).status == 405


def test_cors_origin_option_is_checked():
    with pytest.raises(dracula.ConfigError):
        dracula.Config(cors_origin=("page.example",)).validate()
    dracula.Config(cors_origin=(PAGE, "*")).validate()


# -- hostile bodies ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def session_state():
    server = dracula.make_server(showcase_thrift.Showcase, ShowcaseHandler(), port=0)
    return server.state


def answer(state, body: bytes):
    """The session's answer to one JSON POST: an HttpMessage whose arguments it then decodes
    as Call.admit would, or response bytes."""
    session = HttpSession(state, ("127.0.0.1", 1))
    session.feed(post(body, JSON_TYPE))
    taken = session.take()
    if isinstance(taken, HttpMessage):
        method = state.methods.get(taken.name)
        if method is not None:
            try:
                taken.codec.decode(taken.body, method.args_cls())
            except WireError:
                pass
    return taken


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner, max_size=5),
    max_leaves=30,
)
tags = st.sampled_from(["tf", "i8", "i16", "i32", "i64", "dbl", "str", "rec", "lst", "set", "map", "x"])
fields = st.dictionaries(
    st.sampled_from(["1", "2", "3", "-1", "99", "x"]), st.dictionaries(tags, json_values, max_size=2)
)
messages = st.tuples(
    st.sampled_from(["add", "echo_shape", "reverse", "lookup", "nope"]), st.integers(-3, 5), fields
).map(lambda m: json.dumps([1, m[0], m[1], 1, m[2]]).encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=messages | st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()))
def test_hostile_json_bodies_are_answered(session_state, body):
    taken = answer(session_state, body)
    assert taken is not None  # a call to run, or a response: never an exception


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the parser's recursion limit
        b'[1,"echo_shape",1,1,{"1":{"rec":' * 2000 + b"{}" + b"}}" * 2000 + b"]",  # past --max-depth
        b"[" + b"{}," * 300_000 + b"{}]",  # many small objects
        b'[1,"add",1,1,{"1":{"i64":' + b"9" * 100_000 + b"}}]",  # a huge number
        b'[1,"echo_shape",1,1,{"1":{"rec":{"2":{"lst":["rec",1000000]}}}}]',  # a count with nothing behind it
    ],
)
def test_hostile_json_costs_at_most_its_bounded_size(session_state, body):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        answer(session_state, body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= tjson.cost(body) + 1_000_000
    assert time.perf_counter() - started < 5
