"""A web page calls dracula (docs/http.md, "From a web page"): headless Chromium (Debian's
`chromium`) loads tests/browser/showcase.html from an origin of its own (a second HTTP server,
another port), and the page calls the Showcase service on dracula's port with Apache Thrift's
browser library (tests/browser/thrift.js: Thrift.TXHRTransport, Thrift.TJSONProtocol) and the
client `thrift --gen js` makes. Those are cross-origin POSTs of application/vnd.apache.thrift.json,
so the browser sends a CORS preflight before each one.

The page writes each call's result into its DOM, which Chromium dumps (`--dump-dom`) once the
page is loaded and its network is idle (`--virtual-time-budget`: virtual time stands still while
a request is pending). With `--cors-origin <the page's origin>` every call is answered as the IDL
says; with another origin allowed, or none, the browser refuses each call and the handler never
runs. On both backends.

The test skips, saying why, where chromium or the thrift compiler is missing (Debian: `apt-get
install chromium thrift-compiler`); with CI=true it fails instead.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import threading
from html.parser import HTMLParser

import pytest

import dracula
from examples.showcase import ShowcaseHandler

from .client_programs import RUN_TIMEOUT, missing_toolchain
from .helpers import BACKENDS, IDL, ROOT, running, showcase_thrift

PAGE_DIR = os.path.join(ROOT, "tests", "browser")
INSTALL_HINT = "apt-get install chromium thrift-compiler"
THRIFT_JS_BLOB = "17eb302ac7dce8ca59b909447718a96d9724a3e4"  # git rev-parse v0.17.0:lib/js/src/thrift.js
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Dump the DOM once virtual time has run this far; it stands still while a request is
    # pending, so every call the page made has been answered (or refused) by then.
    "--virtual-time-budget=10000",
]

# What the page records for each call when dracula answers it (tests/browser/showcase_page.js).
EXPECTED = {
    "ping": 'ok "pong"',
    "add": "ok 42",
    "echo_shape": "ok "
    + json.dumps(
        {
            "name": "s \u00e9",
            "points": [{"x": 1, "y": -2}, {"x": 3, "y": 4}],
            "color": 3,
            "labels": {"a": [{"x": 5, "y": 6}], "b": []},
            "tags": [5, 7],
            "blob": [0, 97, 98, 255],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ),
    "index": 'ok {"1,2":{"x":1,"y":2},"-3,4":{"x":-3,"y":4}}',
    "lookup": 'ok "DRACULA"',
    "lookup_missing": 'raised NotFound {"key":"missing","code":404}',
    "lookup_empty": 'raised Invalid {"reason":"empty key"}',
    "fail": 'raised TApplicationException {"code":6,"message":"RuntimeError: boom"}',
    "next_color": "ok 2",
}
# The handler methods those calls run, in the page's order.
CALLED = ["ping", "add", "echo_shape", "index", "lookup", "lookup", "lookup", "fail", "next_color"]


def _tool(name):
    path = shutil.which(name)
    if path is None:
        missing_toolchain("%s is not installed (%s)" % (name, INSTALL_HINT))
    return path


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the access log would go to stderr
        pass


@pytest.fixture(scope="module")
def page_origin(tmp_path_factory):
    """The origin (http://127.0.0.1:PORT) that serves the page, thrift.js and the generated
    client, from a directory made for this module."""
    thrift = _tool("thrift")
    site = tmp_path_factory.mktemp("site")
    for name in ("showcase.html", "showcase_page.js", "thrift.js", "forge.html"):
        shutil.copy(os.path.join(PAGE_DIR, name), site)
    (site / "gen").mkdir()
    done = subprocess.run(
        [thrift, "--gen", "js", "-out", str(site / "gen"), os.path.join(IDL, "showcase.thrift")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, "thrift --gen js failed:\n" + done.stderr
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def chromium():
    return _tool("chromium")


class SeenHandler(ShowcaseHandler):
    """The Showcase handler, noting each call the page makes: (method, Origin header, transport)."""

    def __init__(self):
        super().__init__()
        self.seen = []
        self._lock = threading.Lock()

    def _saw(self, name):
        call = dracula.current_call()
        with self._lock:
            self.seen.append((name, call.headers.get("origin"), call.transport))

    def ping(self):
        self._saw("ping")
        return super().ping()

    def add(self, a, b):
        self._saw("add")
        return a + b

    def echo_shape(self, shape):
        self._saw("echo_shape")
        return super().echo_shape(shape)

    def index(self, points):
        self._saw("index")
        return super().index(points)

    def lookup(self, key):
        self._saw("lookup")
        return super().lookup(key)

    def fail(self, message):
        self._saw("fail")
        return super().fail(message)

    def next_color(self, color):
        self._saw("next_color")
        return super().next_color(color)


class Results(HTMLParser):
    """From the dumped DOM: {call: text} of each <li data-call>, and whether <p id="done"> is there."""

    def __init__(self, html):
        super().__init__()
        self.calls = {}
        self.done = False
        self._call = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "li" and "data-call" in attributes:
            self._call = attributes["data-call"]
            self.calls[self._call] = ""
        elif tag == "p" and attributes.get("id") == "done":
            self.done = True

    def handle_endtag(self, tag):
        if tag == "li":
            self._call = None

    def handle_data(self, data):
        if self._call is not None:
            self.calls[self._call] += data


def load_page(chromium, page_origin, server, profile, page="showcase.html") -> Results:
    """Chromium loads the page against `server`; what the page recorded."""
    url = "%s/%s?server=127.0.0.1:%d" % (page_origin, page, server.port)
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, "--user-data-dir=%s" % profile, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, "chromium failed:\n" + done.stderr
    results = Results(done.stdout)
    assert results.done, "the page did not finish its calls:\n%s\n%s" % (done.stdout, done.stderr)
    return results


@pytest.mark.parametrize("backend", BACKENDS)
def test_page_of_an_allowed_origin_calls_dracula(chromium, page_origin, backend, tmp_path):
    handler = SeenHandler()
    with running(showcase_thrift.Showcase, handler, backend=backend, cors_origin=(page_origin,)) as server:
        results = load_page(chromium, page_origin, server, tmp_path / "profile")
    assert results.calls == EXPECTED
    # Each call came over HTTP from the page's origin, not dracula's: the browser's CORS path.
    assert handler.seen == [(name, page_origin, "http") for name in CALLED]
    assert page_origin != "http://127.0.0.1:%d" % server.port


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("allowed", ["another origin", "none"])
def test_page_of_another_origin_is_refused(chromium, page_origin, backend, allowed, tmp_path, refused_log):
    handler = SeenHandler()
    cors = ("http://127.0.0.1:1",) if allowed == "another origin" else ()
    with running(showcase_thrift.Showcase, handler, backend=backend, cors_origin=cors) as server:
        results = load_page(chromium, page_origin, server, tmp_path / "profile")
    assert set(results.calls) == set(EXPECTED)
    # The preflight is refused (403, or 405 without --cors-origin): the browser never sends the
    # call, and a synchronous XHR throws. The asynchronous call's callback gets an empty answer.
    for name in EXPECTED:
        if name != "next_color":
            assert results.calls[name] == "raised NetworkError", name
    assert results.calls["next_color"].startswith("raised "), results.calls["next_color"]
    assert handler.seen == []
    if allowed == "another origin":
        refusals = [r.getMessage() for r in refused_log.records if "CORS preflight refused" in r.getMessage()]
        assert refusals and all("origin %s is not allowed" % page_origin in line for line in refusals)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("allowed", ["another origin", "none"])
def test_a_forged_simple_post_never_runs_the_handler(chromium, page_origin, backend, allowed, tmp_path, refused_log):
    # fetch() with mode "no-cors" and a text/plain body needs no preflight: the browser sends
    # it and only hides the answer. dracula refuses it (403) before the handler could run.
    handler = SeenHandler()
    cors = ("http://127.0.0.1:1",) if allowed == "another origin" else ()
    with running(showcase_thrift.Showcase, handler, backend=backend, cors_origin=cors) as server:
        results = load_page(chromium, page_origin, server, tmp_path / "profile", page="forge.html")
    assert results.done
    assert handler.seen == []
    refusals = [r.getMessage() for r in refused_log.records if "may not call this server" in r.getMessage()]
    assert len(refusals) == 1 and page_origin in refusals[0]


def test_thrift_js_is_apache_thrift_0_17_0():
    # tests/browser/thrift.js is Apache Thrift 0.17.0's lib/js/src/thrift.js, unmodified
    # (tests/browser/README.md): its git blob id there.
    with open(os.path.join(PAGE_DIR, "thrift.js"), "rb") as f:
        data = f.read()
    assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == THRIFT_JS_BLOB
