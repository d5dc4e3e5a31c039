"""Thrift over HTTP/1.1 on the serving port (docs/http.md), on both backends: real clients
(thriftpy2's and Apache Thrift's HTTP clients, curl), the same clients through nginx as a
reverse proxy with upstream keep-alive, and raw requests for what clients do not exercise
(pipelining, chunked bodies, every limit and refusal)."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import shutil
import socket
import subprocess
import threading

import pytest
import thriftpy2.http
from thrift.transport import THttpClient
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.thrift import TApplicationException, TMessageType
from thriftpy2.transport import TMemoryBuffer

import dracula
from examples.pingpong import PingHandler
from examples.showcase import ShowcaseHandler

from . import apache_client as apache
from .callinfo_app import CallInfoHandler, context_thrift
from .client_programs import missing_toolchain
from .helpers import BACKENDS, Background, free_port, pingpong_thrift, running, serving, showcase_thrift, wait_until
from .status_client import scrape, value

TIMEOUT = 10  # seconds any one exchange may take before the test fails instead of hanging
CALL_INFO = context_thrift.CallInfo
PROTOCOLS = {"binary": TBinaryProtocolFactory(), "compact": TCompactProtocolFactory()}

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


# -- encoding calls and reading replies by hand ----------------------------------------------------


def encoded_call(service, method, seqid=1, protocol="binary", mtype=TMessageType.CALL, **args) -> bytes:
    buf = TMemoryBuffer()
    proto = PROTOCOLS[protocol].get_protocol(buf)
    proto.write_message_begin(method, mtype, seqid)
    proto.write_struct(getattr(service, method + "_args")(**args))
    proto.write_message_end()
    return buf.getvalue()


def decoded_reply(service, method, body: bytes, protocol="binary"):
    """(seqid, the result's success value) or (seqid, the TApplicationException)."""
    proto = PROTOCOLS[protocol].get_protocol(TMemoryBuffer(body))
    _, mtype, seqid = proto.read_message_begin()
    if mtype == TMessageType.EXCEPTION:
        error = TApplicationException()
        proto.read_struct(error)
        return seqid, error
    result = getattr(service, method + "_result")()
    proto.read_struct(result)
    return seqid, result.success


def post(body: bytes, content_type="application/x-thrift", path="/", **headers) -> bytes:
    head = "POST %s HTTP/1.1\r\nHost: test\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
        path,
        content_type,
        len(body),
    )
    head += "".join("%s: %s\r\n" % (name.replace("_", "-"), v) for name, v in headers.items())
    return head.encode() + b"\r\n" + body


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def getheader(self, name: str) -> str | None:
        return self.headers.get(name)


class Responses:
    """Reads HTTP responses off a raw socket one after another (pipelined ones arrive
    together): the status line and headers by http.client's parser, the Content-Length body."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb")

    def next(self) -> Response:
        line = self.file.readline()
        assert line.startswith(b"HTTP/1.1 "), "no response: %r" % line
        headers = http.client.parse_headers(self.file)
        body = self.file.read(int(headers["Content-Length"]))
        return Response(int(line.split()[1]), headers, body)

    def closed(self) -> bool:
        try:
            return self.file.read(1) == b""
        except ConnectionResetError:
            return True


@contextlib.contextmanager
def raw(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        yield sock, Responses(sock)


def refusal_lines(caplog, sock):
    peer = "127.0.0.1:%d" % sock.getsockname()[1]
    return [r.getMessage() for r in caplog.records if r.name == "dracula.refused" and peer in r.getMessage()]


@pytest.fixture
def callinfo_handler():
    handler = CallInfoHandler()
    yield handler
    handler.release.set()


# -- real clients ------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_alive", [False, True])
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_thriftpy2_http_client(backend, keep_alive, protocol):
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend) as server:
        client = thriftpy2.http.make_client(
            showcase_thrift.Showcase,
            "127.0.0.1",
            server.port,
            proto_factory=PROTOCOLS[protocol],
            keep_alive=keep_alive,
            timeout=TIMEOUT * 1000,
        )
        assert client.add(1, 2) == 3
        assert client.reverse(b"abc") == b"cba"
        shape = showcase_thrift.Shape(name="s", points=[showcase_thrift.Point(x=1, y=2)], tags={1, 2})
        echoed = client.echo_shape(shape)
        assert echoed.points == shape.points and set(echoed.tags) == shape.tags  # a set comes back as a list
        with pytest.raises(showcase_thrift.NotFound):
            client.lookup("missing")
        with pytest.raises(TApplicationException):
            client.fail("boom")
        assert client.add(3, 4) == 7  # the connection (kept alive or not) goes on after errors


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_apache_thrift_http_client(backend, protocol):
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend) as server:
        trans = THttpClient.THttpClient("http://127.0.0.1:%d/" % server.port)
        trans.setTimeout(TIMEOUT * 1000)
        client = apache.ShowcaseClient(apache.make_protocol(trans, protocol))
        assert client.add(1, 2) == 3
        assert client.add(5, 6) == 11
        assert trans.code == 200 and dict(trans.headers)["Content-Type"] == "application/x-thrift"
        trans.close()


def curl_post(port, body_file, path="/", *headers) -> subprocess.CompletedProcess:
    if shutil.which("curl") is None:
        missing_toolchain("curl is not installed (Debian: apt-get install curl)")
    command = ["curl", "-sS", "--max-time", str(TIMEOUT), "--data-binary", "@%s" % body_file]
    for header in ("Content-Type: application/vnd.apache.thrift.binary", *headers):
        command += ["-H", header]
    return subprocess.run(
        [*command, "-D", "-", "http://127.0.0.1:%d%s" % (port, path)], capture_output=True, timeout=TIMEOUT * 2
    )


def split_response(output: bytes) -> tuple[bytes, bytes]:
    head, _, body = output.partition(b"\r\n\r\n")
    return head, body


def test_curl_posts_a_binary_body(backend, tmp_path):
    body_file = tmp_path / "call.bin"
    body_file.write_bytes(encoded_call(showcase_thrift.Showcase, "add", seqid=7, a=20, b=22))
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend) as server:
        done = curl_post(server.port, body_file)
    assert done.returncode == 0, done.stderr
    head, body = split_response(done.stdout)
    assert head.startswith(b"HTTP/1.1 200 OK"), head
    assert b"Content-Type: application/vnd.apache.thrift.binary" in head
    assert decoded_reply(showcase_thrift.Showcase, "add", body) == (7, 42)


def test_curl_large_body_with_expect_continue(backend, tmp_path):
    """curl asks `Expect: 100-continue` before a large body: the server says go on."""
    data = os.urandom(300_000)
    body_file = tmp_path / "call.bin"
    body_file.write_bytes(encoded_call(showcase_thrift.Showcase, "reverse", seqid=3, data=data))
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend) as server:
        done = curl_post(server.port, body_file, "/", "Expect: 100-continue")
    assert done.returncode == 0, done.stderr
    head, body = split_response(done.stdout)
    if head.startswith(b"HTTP/1.1 100"):
        head, body = split_response(body)
    assert head.startswith(b"HTTP/1.1 200 OK"), head
    assert decoded_reply(showcase_thrift.Showcase, "reverse", body) == (3, data[::-1])


# -- HTTP itself: keep-alive, pipelining, chunked bodies, paths, methods ------------------------


def test_pipelined_requests_are_answered_in_order(backend, callinfo_handler):
    """Three requests in one write, the first answered off the loop (a @blocking handler) and
    the second by a coroutine: the responses still come back in request order."""
    calls = [("pooled", "a"), ("coro", "b"), ("plain", "c")]
    with running(CALL_INFO, callinfo_handler, backend=backend) as server, raw(server) as (sock, responses):
        sock.sendall(b"".join(post(encoded_call(CALL_INFO, m, seqid=i, tag=t)) for i, (m, t) in enumerate(calls)))
        for i, (method, tag) in enumerate(calls):
            response = responses.next()
            assert response.status == 200
            seqid, report = decoded_reply(CALL_INFO, method, response.body)
            assert seqid == i and json.loads(report)["arg"] == tag


def test_chunked_request_body(backend):
    body = encoded_call(showcase_thrift.Showcase, "add", seqid=5, a=2, b=3)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7]) for i in range(0, len(body), 7))
    request = (
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-thrift\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend) as server, raw(server) as (sock, r):
        for i in range(len(request)):  # a byte per send: the parser resumes anywhere
            sock.send(request[i : i + 1])
        response = r.next()
        assert response.status == 200
        assert decoded_reply(showcase_thrift.Showcase, "add", response.body) == (5, 5)


def test_http_1_0_and_connection_close_end_the_connection(backend):
    body = encoded_call(showcase_thrift.Showcase, "add", a=1, b=1)
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend) as server:
        for request in (post(body, Connection="close"), post(body).replace(b"HTTP/1.1", b"HTTP/1.0", 1)):
            with raw(server) as (sock, responses):
                sock.sendall(request + request)  # the second is never answered
                response = responses.next()
                assert response.status == 200 and response.getheader("Connection") == "close"
                assert responses.closed()


def test_path_selects_a_named_service(backend):
    services = [
        ("PingService", pingpong_thrift.PingService, PingHandler()),
        ("sc", showcase_thrift.Showcase, ShowcaseHandler()),
    ]
    config = dracula.Config(host="127.0.0.1", port=0, backend=backend)
    with serving(dracula.Server(services, config)) as server:
        port = server.port
        sc = thriftpy2.http.make_client(showcase_thrift.Showcase, "127.0.0.1", port, path="/sc", keep_alive=True)
        assert sc.add(2, 2) == 4
        assert sc.ping() is None  # Showcase.ping, not PingService.ping: it returns nothing
        for path in ("/", "/anything/else", "/PingService"):
            default = thriftpy2.http.make_client(pingpong_thrift.PingService, "127.0.0.1", port, path=path)
            assert default.ping() == "pong"
        # A multiplexed name in the body is served on any path.
        with raw(server) as (sock, responses):
            sock.sendall(
                post(
                    encoded_call(showcase_thrift.Showcase, "add", seqid=2, a=1, b=2).replace(
                        b"\x00\x00\x00\x03add", b"\x00\x00\x00\x06sc:add"
                    ),
                    path="/",
                )
            )
            assert decoded_reply(showcase_thrift.Showcase, "add", responses.next().body) == (2, 3)


def test_other_methods_get_405_and_the_connection_goes_on(backend, caplog):
    caplog.set_level(logging.WARNING, logger="dracula.refused")
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend) as server, raw(server) as (sock, r):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        response = r.next()
        assert response.status == 405 and response.getheader("Allow") == "POST"
        sock.sendall(post(encoded_call(showcase_thrift.Showcase, "add", a=1, b=2)))
        assert decoded_reply(showcase_thrift.Showcase, "add", r.next().body) == (1, 3)
        assert len(refusal_lines(caplog, sock)) == 1


def test_a_bad_body_is_answered_in_thrift_or_400_and_the_connection_goes_on(backend):
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend) as server, raw(server) as (sock, r):
        # A string that claims more bytes than the body has: PROTOCOL_ERROR, in Thrift.
        lying = encoded_call(showcase_thrift.Showcase, "reverse", seqid=9, data=b"abc")
        lying = lying.replace(b"\x00\x00\x00\x03abc", b"\x00\x01\x00\x00abc")
        sock.sendall(post(lying))
        response = r.next()
        assert response.status == 200
        seqid, error = decoded_reply(showcase_thrift.Showcase, "reverse", response.body)
        assert seqid == 9 and isinstance(error, TApplicationException) and error.type == 7
        # A message cut short after its header: PROTOCOL_ERROR too (the body is all there is).
        sock.sendall(post(encoded_call(showcase_thrift.Showcase, "add", seqid=10, a=1, b=2)[:-3]))
        seqid, error = decoded_reply(showcase_thrift.Showcase, "add", r.next().body)
        assert seqid == 10 and error.type == 7
        # No message header to answer: 400.
        for body in (b"{}", b"\x80\x01\x00"):
            sock.sendall(post(body))
            assert r.next().status == 400
        sock.sendall(post(encoded_call(showcase_thrift.Showcase, "add", a=1, b=2)))
        assert decoded_reply(showcase_thrift.Showcase, "add", r.next().body) == (1, 3)


# -- every rule holds over HTTP ----------------------------------------------------------------


def test_a_body_past_the_frame_limit_gets_413_before_it_is_sent(backend, caplog):
    caplog.set_level(logging.WARNING, logger="dracula.refused")
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend, max_frame_size=4096) as server:
        with raw(server) as (sock, r):
            # Only the headers: the server must not wait for the 10 MB it announced.
            sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n")
            assert r.next().status == 413
            assert r.closed()
            assert len(refusal_lines(caplog, sock)) == 1
        with raw(server) as (sock, r):  # chunked: refused once past the limit
            sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            sock.sendall(b"1000\r\n" + b"x" * 4096 + b"\r\n1000\r\n" + b"x" * 4096 + b"\r\n")
            assert r.next().status == 413
            assert r.closed()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"POST / HTTP/1.1\r\nHost t\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n",
    ],
    ids=["two-lengths", "bad-header", "bad-chunk", "huge-header"],
)
def test_a_malformed_request_gets_4xx_a_close_and_one_line(backend, caplog, request_bytes):
    caplog.set_level(logging.WARNING, logger="dracula.refused")
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend) as server:
        with raw(server) as (sock, r):
            sock.sendall(request_bytes)
            response = r.next()
            assert response.status in (400, 431) and response.getheader("Connection") == "close"
            assert r.closed()
            assert len(refusal_lines(caplog, sock)) == 1
        client = thriftpy2.http.make_client(showcase_thrift.Showcase, "127.0.0.1", server.port)
        assert client.add(1, 2) == 3  # others are not disturbed


def test_headers_must_complete_within_the_request_timeout(backend, caplog):
    """Slowloris: a request whose headers never end is closed after --request-timeout."""
    caplog.set_level(logging.WARNING, logger="dracula.refused")
    options = {"backend": backend, "request_timeout": 0.3}
    with running(showcase_thrift.Showcase, ShowcaseHandler(), **options) as server, raw(server) as (sock, r):
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\n")
        assert r.closed()  # within TIMEOUT, else the socket's timeout fails the test
        assert wait_until(lambda: refusal_lines(caplog, sock), 5)
        assert "incomplete" in refusal_lines(caplog, sock)[0]


def test_shed_calls_get_503_with_retry_after(backend, callinfo_handler):
    with running(CALL_INFO, callinfo_handler, backend=backend, max_requests=1) as server:
        holder = Background(thriftpy2.http.make_client(CALL_INFO, "127.0.0.1", server.port).hold)
        assert callinfo_handler.entered.wait(TIMEOUT)
        with raw(server) as (sock, r):
            sock.sendall(post(encoded_call(CALL_INFO, "plain", seqid=4, tag="x")))
            response = r.next()
            assert response.status == 503 and response.getheader("Retry-After") == "1"
            seqid, error = decoded_reply(CALL_INFO, "plain", response.body)
            assert seqid == 4 and error.type == 11  # LOADSHEDDING, for clients that read the body
        callinfo_handler.release.set()
        assert holder.result() == "released"


def test_headers_and_deadline_reach_the_handler(backend, callinfo_handler):
    headers = {"X-Tag": "hello", "X-Thrift-Client-Timeout": "5000"}
    with running(CALL_INFO, callinfo_handler, backend=backend) as server:
        client = thriftpy2.http.make_client(
            CALL_INFO, "127.0.0.1", server.port, http_header_factory=thriftpy2.http.THttpHeaderFactory(headers)
        )
        for method in ("plain", "coro", "pooled"):
            report = json.loads(getattr(client, method)("t"))
            assert report["header"] == "hello", report  # current_call().headers: lower-cased names
            assert report["deadline"] is not None, report


def test_a_passed_deadline_is_answered_timeout(backend, callinfo_handler):
    with running(CALL_INFO, callinfo_handler, backend=backend) as server, raw(server) as (sock, r):
        sock.sendall(post(encoded_call(CALL_INFO, "stall", seqid=6), X_Thrift_Client_Timeout="200"))
        response = r.next()
        seqid, error = decoded_reply(CALL_INFO, "stall", response.body)
        assert seqid == 6 and error.type == 12  # TIMEOUT


def test_access_log_and_metrics_say_http(backend, caplog):
    caplog.set_level(logging.INFO, logger="dracula.access")
    metrics_port = free_port()
    options = {"access_log": True, "metrics_port": metrics_port}
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend, **options) as server:
        client = thriftpy2.http.make_client(showcase_thrift.Showcase, "127.0.0.1", server.port, keep_alive=True)
        assert client.add(1, 2) == 3
        with raw(server) as (sock, r):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert r.next().status == 405
        samples = scrape(metrics_port)
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "dracula.access"]
    assert len(lines) == 1 and lines[0].endswith("us http") and " Showcase.add ok " in lines[0], lines
    assert value(samples, "dracula_http_responses_total", status="200") == 1
    assert value(samples, "dracula_http_responses_total", status="405") == 1
    assert value(samples, "dracula_calls_total", method="Showcase.add", outcome="ok") == 1


# -- behind nginx ------------------------------------------------------------------------------


NGINX_CONFIG = """
{user}
worker_processes 1;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream dracula {{
        server 127.0.0.1:{upstream};
        keepalive 4;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 16m;
        location / {{
            proxy_pass http://dracula;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found is None:
        missing_toolchain("nginx is not installed (Debian: apt-get install nginx-light)")
    return found


@contextlib.contextmanager
def nginx_in_front(upstream_port, tmp_path):
    binary = nginx_binary()
    port = free_port()
    prefix = str(tmp_path)
    config = tmp_path / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""  # workers may then read the temp folders
    config.write_text(NGINX_CONFIG.format(user=user, prefix=prefix, upstream=upstream_port, port=port))
    process = subprocess.Popen(
        [binary, "-c", str(config), "-p", prefix, "-g", "daemon off;"], stderr=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:

        def accepting():
            if process.poll() is not None:
                pytest.fail("nginx exited: %s" % process.stderr.read().decode(errors="replace"))
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
            return False

        assert wait_until(accepting, TIMEOUT), "nginx did not listen within %ds" % TIMEOUT
        yield port
    finally:
        process.terminate()
        process.wait(TIMEOUT)


def test_clients_through_nginx_with_upstream_keep_alive(backend, tmp_path, callinfo_handler):
    with running(CALL_INFO, callinfo_handler, backend=backend) as server, nginx_in_front(server.port, tmp_path) as port:
        ports = set()
        for keep_alive in (False, True):
            client = thriftpy2.http.make_client(CALL_INFO, "127.0.0.1", port, keep_alive=keep_alive)
            for method in ("plain", "coro", "pooled", "plain"):
                report = json.loads(getattr(client, method)("n"))
                assert report["arg"] == "n" and report["method"] == method
                ports.add(report["peer_port"])
        # Eight calls from two client connections (the first a new one per call) reached the
        # server on nginx's kept-alive upstream connections.
        assert len(ports) <= 2, ports

        trans = THttpClient.THttpClient("http://127.0.0.1:%d/" % port)
        apache_client = apache.ShowcaseClient(apache.make_protocol(trans, "binary"))
        body_file = tmp_path / "call.bin"
        body_file.write_bytes(encoded_call(CALL_INFO, "plain", seqid=8, tag="curl"))
        done = curl_post(port, body_file)
        assert done.returncode == 0, done.stderr
        head, body = split_response(done.stdout)
        assert head.startswith(b"HTTP/1.1 200"), head
        seqid, report = decoded_reply(CALL_INFO, "plain", body)
        assert seqid == 8 and json.loads(report)["arg"] == "curl"
        # Apache's client speaks to the CallInfo server's unknown method: a Thrift error, through nginx.
        with pytest.raises(Exception, match="unknown method"):
            apache_client.add(1, 2)


def test_apache_client_through_nginx(backend, tmp_path):
    with (
        running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend) as server,
        nginx_in_front(server.port, tmp_path) as port,
    ):
        trans = THttpClient.THttpClient("http://127.0.0.1:%d/" % port)
        for protocol in ("binary", "compact"):
            client = apache.ShowcaseClient(apache.make_protocol(trans, protocol))
            assert client.add(1, 2) == 3
            assert client.add(7, 8) == 15


def test_many_clients_at_once_through_nginx(backend, tmp_path):
    with (
        running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend) as server,
        nginx_in_front(server.port, tmp_path) as port,
    ):
        errors = []

        def calls(n):
            try:
                client = thriftpy2.http.make_client(showcase_thrift.Showcase, "127.0.0.1", port, keep_alive=True)
                for i in range(20):
                    assert client.add(n, i) == n + i
            except Exception as e:  # handed to the test
                errors.append(e)

        threads = [threading.Thread(target=calls, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT * 3)
        assert not errors, errors


def test_a_body_past_the_memory_budget_gets_503_and_a_close(backend, caplog):
    caplog.set_level(logging.WARNING, logger="dracula.refused")
    options = {"backend": backend, "max_buffer_memory": 64 * 1024}
    with running(showcase_thrift.Showcase, ShowcaseHandler(), **options) as server, raw(server) as (sock, r):
        body = encoded_call(showcase_thrift.Showcase, "reverse", data=b"x" * 200_000)
        with contextlib.suppress(ConnectionError):  # the server may close before all is sent
            sock.sendall(post(body))
        response = r.next()
        assert response.status == 503 and response.getheader("Retry-After") == "1"
        assert r.closed()
        assert len(refusal_lines(caplog, sock)) == 1
