"""`dracula call --transport header` as a subprocess against dracula (both backends): THeader
calls in binary and compact, `--header KEY=VALUE` reaching the handler through
`dracula.current_call().headers`, `-v` printing the reply's headers, and usage errors."""

import json

import pytest

import dracula
from examples.showcase import ShowcaseHandler, showcase_thrift as handler_thrift

from .cli_server import assert_one_line_error, run_cli
from .helpers import free_port, running, showcase_thrift

SHOWCASE = "idl/showcase.thrift:Showcase"


class HeaderHandler(ShowcaseHandler):
    """lookup(key) answers with the call's header `key` and sets response header `seen-<key>`;
    every call reports its number of headers in response header `count`."""

    def lookup(self, key):
        call = dracula.current_call()
        value = call.headers.get(key)
        if value is None:
            raise handler_thrift.NotFound(key=key, code=404)
        call.response_headers["seen-" + key] = value
        call.response_headers["count"] = str(len(call.headers))
        return value


@pytest.fixture
def server(backend):
    with running(showcase_thrift.Showcase, HeaderHandler(), backend=backend) as server:
        yield server


def call(port, method, args, *options):
    """Run `dracula call`; → (exit status, parsed stdout or None, stderr)."""
    proc = run_cli("call", SHOWCASE, method, json.dumps(args), "--port", str(port), *options)
    out = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, out, proc.stderr


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_headers_reach_the_handler(server, protocol):
    options = ("--transport", "header", "--protocol", protocol)
    code, out, err = call(
        server.port, "lookup", {"key": "tenant"}, *options, "--header", "tenant=acme=corp", "--header", "x-id=ünï"
    )
    assert (code, out, err) == (0, "acme=corp", "")  # the first '=' splits; no -v: no headers shown
    code, out, err = call(server.port, "lookup", {"key": "empty"}, *options, "--header", "empty=")
    assert (code, out, err) == (0, "", "")
    code, out, err = call(server.port, "add", {"a": 2**62, "b": 2**62 - 1}, *options)
    assert (code, out, err) == (0, 2**63 - 1, "")


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_verbose_prints_the_response_headers(server, protocol):
    code, out, err = call(
        server.port,
        "lookup",
        {"key": "tenant"},
        "-v",
        "--transport",
        "header",
        "--protocol",
        protocol,
        "--header",
        "tenant=acme",
        "--header",
        "x-id=ünï",
    )
    assert (code, out) == (0, "acme")
    assert err.splitlines() == ["< seen-tenant: acme", "< count: 2"]
    # No response headers: -v prints nothing.
    assert call(server.port, "ping", {}, "-v", "--transport", "header") == (0, None, "")


def test_outcomes_over_theader(server):
    options = ("--transport", "header", "--verbose")
    code, out, err = call(server.port, "lookup", {"key": "absent"}, *options)
    assert (code, out, err) == (1, {"exception": "NotFound", "fields": {"key": "absent", "code": 404}}, "")
    code, out, _ = call(server.port, "fail", {"message": "boom"}, *options)
    assert (code, out["application_exception"]) == (1, "INTERNAL_ERROR")
    code, out, _ = call(server.port, "add", {"a": 1, "b": 2}, *options, "--service-name", "Showcase")
    assert (code, out) == (0, 3)
    # fbthrift's client_timeout header: the server gives up on the call at its deadline.
    code, out, _ = call(server.port, "sleep_async", {"ms": 20000}, *options, "--header", "client_timeout=100")
    assert (code, out["application_exception"]) == (1, "TIMEOUT")


@pytest.mark.parametrize(
    "options, message",
    [
        (("--header", "k=v"), "--header needs --transport header (buffered carries no headers)"),
        (("--transport", "framed", "--header", "k=v"), "--header needs --transport header (framed"),
        (("--transport", "header", "--header", "novalue"), "--header expects KEY=VALUE, got 'novalue'"),
        (("--transport", "header", "--header", "=v"), "--header expects KEY=VALUE, got '=v'"),
    ],
)
def test_bad_headers_exit_2_before_connecting(options, message):
    # Nothing listens on the port: exit 2 (not 3) shows nothing was sent.
    proc = run_cli("call", SHOWCASE, "ping", "--port", str(free_port()), *options)
    assert proc.stdout == ""
    assert_one_line_error(proc, message)


def test_connection_refused_over_theader_exits_3():
    port = free_port()
    code, out, err = call(port, "ping", {}, "--transport", "header")
    assert (code, out) == (3, None)
    assert "cannot connect to 127.0.0.1:%d" % port in err
