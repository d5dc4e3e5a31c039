"""`dracula call` as a subprocess against real servers on real sockets: dracula's (both
backends) and thriftpy2's own `make_server`, every IDL type and every outcome/exit status."""

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time

import pytest
import thriftpy2.rpc
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.server import TThreadedServer
from thriftpy2.thrift import TMultiplexedProcessor, TProcessor
from thriftpy2.transport import TBufferedTransportFactory, TFramedTransportFactory, TServerSocket

from examples.showcase import ShowcaseHandler, showcase_thrift as handler_thrift

from .cli_server import run_cli
from .helpers import ROOT, free_port, running, showcase_thrift

SHOWCASE = "idl/showcase.thrift:Showcase"
I64_MAX, I64_MIN = 2**63 - 1, -(2**63)
WIRES = [("buffered", "binary"), ("framed", "binary"), ("buffered", "compact"), ("framed", "compact")]
WIRE_IDS = ["-".join(w) for w in WIRES]

SCALARS_MAX = {
    "flag": True,
    "tiny": 127,
    "small": 32767,
    "medium": 2147483647,
    "large": I64_MAX,
    "real": 1.7976931348623157e308,
    "text": "héllo ☃ \u0000 end",
    "raw": "AAEC/w==",
    "color": "BLUE",
}
SCALARS_MIN = {
    "flag": False,
    "tiny": -128,
    "small": -32768,
    "medium": -2147483648,
    "large": I64_MIN,
    "real": -5e-324,
    "text": "",
    "raw": "",
    "color": "RED",
}
SHAPE = {
    "name": "tri",
    "points": [{"x": 1, "y": -2}, {"x": 3, "y": 4}],
    "color": "GREEN",
    "labels": {"a": [{"x": 5, "y": 6}], "b c": []},
    "tags": [I64_MAX, 3, I64_MIN],
    "blob": "AP8Q",
}
SHAPE_BACK = dict(SHAPE, tags=[I64_MIN, 3, I64_MAX])  # sets print sorted
NESTED = [[1, {"k": [[3, 1], []], "": [[-32768, 32767]]}], [-7, {}]]
NESTED_BACK = [[1, {"k": [[1, 3], []], "": [[-32768, 32767]]}], [-7, {}]]


def call(port, method, args=None, *options, stdin=None):
    """Run `dracula call`; → (exit status, parsed stdout or None, stderr)."""
    argv = ["call", SHOWCASE, method]
    if stdin is not None:
        argv.append("-")
    elif args is not None:
        argv.append(args if isinstance(args, str) else json.dumps(args))
    argv += ["--port", str(port), *options]
    if stdin is None:
        proc = run_cli(*argv)
    else:
        proc = subprocess.run(
            [sys.executable, "-m", "dracula", *argv], cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=30
        )
    out = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, out, proc.stderr


def ok(port, method, args=None, *options):
    code, out, err = call(port, method, args, *options)
    assert code == 0, err
    assert err == ""
    return out


def dracula_speaks_compact() -> bool:
    from dracula.wire import codec

    try:
        return codec.make_codec("compact", 64) is not None
    except Exception:
        return False


def skip_compact_unless_dracula_has_it(protocol):
    if protocol == "compact" and not dracula_speaks_compact():
        pytest.skip("dracula's server has no compact codec yet (dracula.wire.codec.make_codec('compact') fails)")


# --- thriftpy2's own server ----------------------------------------------------------------------


def wait_accepting(port, seconds=10.0):
    """Retry connecting until the server accepts (bounded)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise AssertionError("thriftpy2 server did not start listening on %d" % port) from None
            time.sleep(0.01)


@contextlib.contextmanager
def thriftpy2_running(handler=None, transport="buffered", protocol="binary", multiplexed=None):
    """thriftpy2's TThreadedServer for the showcase in a daemon thread; yields its port.

    It uses the handler's own copy of the IDL, because thriftpy2 matches declared exceptions by
    class identity."""
    handler = handler or ShowcaseHandler()
    proto = TCompactProtocolFactory() if protocol == "compact" else TBinaryProtocolFactory()
    trans = TFramedTransportFactory() if transport == "framed" else TBufferedTransportFactory()
    port = free_port()
    if multiplexed:
        processor = TMultiplexedProcessor()
        processor.register_processor(multiplexed, TProcessor(handler_thrift.Showcase, handler))
        server = TThreadedServer(
            processor, TServerSocket(host="127.0.0.1", port=port), iprot_factory=proto, itrans_factory=trans
        )
    else:
        server = thriftpy2.rpc.make_server(
            handler_thrift.Showcase, handler, host="127.0.0.1", port=port, proto_factory=proto, trans_factory=trans
        )
    server.daemon = True  # connection threads
    thread = threading.Thread(target=server.serve, name="thriftpy2-server", daemon=True)
    thread.start()
    wait_accepting(port)
    try:
        yield port
    finally:
        server.close()  # only sets a flag: wake the blocked accept() so the loop sees it
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        thread.join(10)
        server.trans.close()
        assert not thread.is_alive(), "thriftpy2 server did not stop"


@pytest.fixture
def thriftpy2_server():
    with thriftpy2_running() as port:
        yield port


# --- every type, against dracula (both backends) -------------------------------------------------


def test_echo_scalars_extremes(showcase_server):
    assert ok(showcase_server.port, "echo_scalars", {"s": SCALARS_MAX}) == SCALARS_MAX
    assert ok(showcase_server.port, "echo_scalars", {"s": SCALARS_MIN}) == SCALARS_MIN


def test_echo_scalars_nonfinite_doubles_and_unset_fields(showcase_server):
    for real in ("NaN", "Infinity", "-Infinity"):
        assert ok(showcase_server.port, "echo_scalars", {"s": {"real": real}}) == {"real": real}
    assert ok(showcase_server.port, "echo_scalars", {"s": {}}) == {}


def test_i64_add_is_exact(showcase_server):
    assert ok(showcase_server.port, "add", {"a": 2**62, "b": 2**62 - 1}) == I64_MAX
    code, out, err = call(showcase_server.port, "add", '{"a": -9223372036854775807, "b": -1}')
    assert (code, out, err) == (0, I64_MIN, "")


def test_echo_shape_binary_sets_maps(showcase_server):
    assert ok(showcase_server.port, "echo_shape", {"shape": SHAPE}) == SHAPE_BACK
    # an omitted field with an IDL default is sent with it; optional/unset ones are absent
    assert ok(showcase_server.port, "echo_shape", {"shape": {"name": "x"}}) == {"name": "x", "color": "RED"}


def test_shapes_list_of_structs(showcase_server):
    assert ok(showcase_server.port, "shapes", {"n": 3}) == [
        {
            "name": "shape-%d" % i,
            "points": [{"x": i, "y": -i}],
            "color": "GREEN",
            "tags": sorted({i, -i}),
            "blob": ["", "AQ==", "AgI="][i],
        }
        for i in range(3)
    ]


def test_index_and_unique(showcase_server):
    points = [{"x": 1, "y": 2}, {"x": -3, "y": 4}]
    assert ok(showcase_server.port, "index", {"points": points}) == {"1,2": points[0], "-3,4": points[1]}
    assert ok(showcase_server.port, "unique", {"words": ["b", "a", "b", "c"]}) == ["a", "b", "c"]


def test_nested_maps_as_pairs(showcase_server):
    assert ok(showcase_server.port, "nested", {"value": NESTED}) == NESTED_BACK


def test_next_color_by_name_and_number(showcase_server):
    assert ok(showcase_server.port, "next_color", {"color": "BLUE"}) == "RED"
    assert ok(showcase_server.port, "next_color", {"color": 1}) == "GREEN"


def test_reverse_base64_from_stdin(showcase_server):
    code, out, err = call(showcase_server.port, "reverse", stdin='{"data": "AQID/w=="}\n')
    assert (code, out, err) == (0, "/wMCAQ==", "")
    assert ok(showcase_server.port, "reverse", {"data": ""}) == ""


def test_void_and_oneway_print_null(showcase_server):
    code, out, err = call(showcase_server.port, "ping")  # ARGS_JSON omitted: {}
    assert (code, out, err) == (0, None, "")
    proc = run_cli("call", SHOWCASE, "record", '{"event": "e1"}', "--port", str(showcase_server.port))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "null\n", "")
    # The oneway call's connection is closed; a later call sees its effect once the server ran it.
    deadline = time.monotonic() + 10
    while ok(showcase_server.port, "recorded") != ["e1"]:
        assert time.monotonic() < deadline, "oneway record() never ran"


# --- outcomes and exit statuses ------------------------------------------------------------------


def test_declared_exception_exits_1(showcase_server):
    code, out, err = call(showcase_server.port, "lookup", {"key": "missing"})
    assert (code, out, err) == (1, {"exception": "NotFound", "fields": {"key": "missing", "code": 404}}, "")
    code, out, _ = call(showcase_server.port, "lookup", {"key": ""})
    assert (code, out) == (1, {"exception": "Invalid", "fields": {"reason": "empty key"}})
    assert ok(showcase_server.port, "lookup", {"key": "dracula"}) == "DRACULA"


def test_application_exception_exits_1(showcase_server):
    code, out, err = call(showcase_server.port, "fail", {"message": "boom"})
    assert code == 1 and err == ""
    assert out["application_exception"] == "INTERNAL_ERROR"
    assert "boom" in out["message"]
    code, out, _ = call(showcase_server.port, "wrong_type")
    assert code == 1 and out["application_exception"] == "INTERNAL_ERROR"


@pytest.mark.parametrize(
    "method, args, path",
    [
        (
            "echo_shape",
            {"shape": {"points": [{"x": 1, "y": 2}, {"x": 1, "y": 2}, {"x": "3", "y": 2}]}},
            "shape.points[2].x",
        ),
        ("echo_shape", {"shape": {"points": [{"x": 1}]}}, "shape.points[0].y"),
        ("echo_shape", {"shape": {"colour": "RED"}}, "shape.colour"),
        ("echo_shape", {"shape": {"labels": {"a": [{"x": 1, "y": 2**31}]}}}, 'shape.labels["a"][0].y'),
        ("echo_shape", {"shape": {"blob": "%%%"}}, "shape.blob"),
        ("echo_scalars", {"s": {"tiny": 200}}, "s.tiny"),
        ("next_color", {"color": "PURPLE"}, "color"),
        ("add", {"a": 1, "c": 2}, "c"),
        ("add", {"a": 2**63}, "a"),
        ("nested", {"value": [[1, {"k": [[1, 99999]]}]]}, 'value[0][1]["k"][0][1]'),
    ],
)
def test_bad_arguments_exit_2_before_connecting(method, args, path):
    # Nothing listens on the port: exit 2 (not 3) shows the arguments were refused before
    # any connection was tried.
    code, out, err = call(free_port(), method, args)
    assert code == 2 and out is None
    assert err.startswith("dracula: error: bad argument %s: " % path), err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["call", SHOWCASE, "add", '{"a": 1'], "ARGS_JSON is not valid JSON"),
        (["call", SHOWCASE, "add", "[1, 2]"], "bad arguments: expected a JSON object keyed by argument name"),
        (["call", SHOWCASE, "nope"], "Showcase has no method 'nope' (methods: ping, echo_scalars,"),
        (["call", "idl/showcase.thrift:Nope", "ping"], "has no service 'Nope'"),
        (["call", "idl/missing.thrift:Showcase", "ping"], "IDL file not found"),
        (["call", "idl/showcase.thrift", "ping"], "expected IDL_PATH:SERVICE"),
        (["call", SHOWCASE, "ping", "--timeout", "-1"], "--timeout must be >= 0"),
    ],
)
def test_usage_errors_exit_2(argv, message):
    proc = run_cli(*argv, "--port", str(free_port()))
    assert proc.returncode == 2 and proc.stdout == ""
    assert message in proc.stderr


def test_port_out_of_range_exits_2():
    proc = run_cli("call", SHOWCASE, "ping", "--port", "70000")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "dracula: error: --port must be 1..65535, got 70000"


def test_connection_refused_exits_3():
    port = free_port()
    code, out, err = call(port, "ping")
    assert (code, out) == (3, None)
    assert err.strip() == "dracula: error: cannot connect to 127.0.0.1:%d: Connection refused" % port


def test_timeout_exits_3():
    # A listening socket that never accepts: the connection completes in the kernel's backlog
    # and the request is sent, but no reply ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        code, out, err = call(silent.getsockname()[1], "ping", None, "--timeout", "0.5")
        elapsed = time.monotonic() - started
    assert (code, out) == (3, None)
    assert "no reply to ping: timed out" in err
    assert elapsed < 9  # well under the 10 s default


@pytest.mark.parametrize("transport, protocol", WIRES, ids=WIRE_IDS)
def test_transports_and_protocols_against_dracula(showcase_server, transport, protocol):
    skip_compact_unless_dracula_has_it(protocol)
    options = ("--transport", transport, "--protocol", protocol)
    assert ok(showcase_server.port, "echo_shape", {"shape": SHAPE}, *options) == SHAPE_BACK
    assert ok(showcase_server.port, "echo_scalars", {"s": SCALARS_MIN}, *options) == SCALARS_MIN
    code, out, _ = call(showcase_server.port, "lookup", {"key": "missing"}, *options)
    assert (code, out["exception"]) == (1, "NotFound")


def test_multiplexed_dracula():
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend="uv") as server:
        assert ok(server.port, "add", {"a": 1, "b": 2}, "--service-name", "Showcase") == 3
        assert (
            ok(server.port, "nested", {"value": NESTED}, "--service-name", "Showcase", "--transport", "framed")
            == NESTED_BACK
        )
        code, out, _ = call(server.port, "add", {"a": 1, "b": 2}, "--service-name", "Other")
        assert (code, out["application_exception"]) == (1, "UNKNOWN_METHOD")


# --- against thriftpy2's own server ----------------------------------------------------------------


@pytest.mark.parametrize("transport, protocol", WIRES, ids=WIRE_IDS)
def test_thriftpy2_server_every_type(transport, protocol):
    options = ("--transport", transport, "--protocol", protocol)
    with thriftpy2_running(transport=transport, protocol=protocol) as port:
        assert ok(port, "echo_scalars", {"s": SCALARS_MAX}, *options) == SCALARS_MAX
        assert ok(port, "echo_shape", {"shape": SHAPE}, *options) == SHAPE_BACK
        assert ok(port, "nested", {"value": NESTED}, *options) == NESTED_BACK
        assert ok(port, "next_color", {"color": "GREEN"}, *options) == "BLUE"
        assert ok(port, "reverse", {"data": "AAEC"}, *options) == "AgEA"
        assert ok(port, "add", {"a": I64_MIN, "b": 0}, *options) == I64_MIN
        assert ok(port, "ping", None, *options) is None
        code, out, err = call(port, "lookup", {"key": "missing"}, *options)
        assert (code, out, err) == (1, {"exception": "NotFound", "fields": {"key": "missing", "code": 404}}, "")


def test_thriftpy2_server_drops_the_connection_on_undeclared_errors(thriftpy2_server):
    # thriftpy2's TProcessor re-raises an undeclared exception and closes the connection
    # instead of answering INTERNAL_ERROR: no reply, exit 3.
    code, out, err = call(thriftpy2_server, "fail", {"message": "boom"})
    assert (code, out) == (3, None)
    assert "no reply to fail: connection closed by the server" in err


def test_thriftpy2_server_missing_result():
    class NoAnswer(ShowcaseHandler):
        def add(self, a, b):
            return None

    with thriftpy2_running(NoAnswer()) as port:
        code, out, _ = call(port, "add", {"a": 1, "b": 2})
    assert (code, out) == (1, {"application_exception": "MISSING_RESULT", "message": "add returned no result"})


def test_thriftpy2_multiplexed_and_unknown_service():
    # A service name the multiplexed server does not serve: it answers UNKNOWN_METHOD.
    with thriftpy2_running(multiplexed="Showcase") as port:
        assert ok(port, "add", {"a": 40, "b": 2}, "--service-name", "Showcase") == 42
        code, out, _ = call(port, "add", {"a": 1, "b": 2}, "--service-name", "Other")
    assert (code, out["application_exception"]) == (1, "UNKNOWN_METHOD")


def test_wrong_transport_gets_no_reply(thriftpy2_server):
    # A framed request to a buffered thriftpy2 server: it cannot decode it and closes.
    code, out, err = call(thriftpy2_server, "ping", None, "--transport", "framed", "--timeout", "5")
    assert (code, out) == (3, None)
    assert "no reply to ping" in err
