"""The HTTP request parser (dracula/http/parser.py) by itself: header fields are kept as received
and decoded into `headers` only when asked for, yet every field reaches them; the fields the
server reads itself are found whatever their names' case."""

from __future__ import annotations

from dracula.http.parser import MAX_HEADER_BYTES, Refusal, RequestParser
from dracula.http.request import HttpRequest


def parsed(data: bytes, pieces: int = 1) -> list:
    parser = RequestParser(1 << 20)
    step = max(1, len(data) // pieces)
    for at in range(0, len(data), step):
        parser.feed(data[at : at + step])
    return list(parser.done)


def test_headers_are_made_when_asked_with_every_field_lower_cased_and_repeats_joined():
    head = (
        b"POST /svc HTTP/1.1\r\nHost: h\r\nX-Tag: a\r\nx-TAG: b\r\n"
        b"CONTENT-type: application/vnd.apache.thrift.compact\r\nX-THRIFT-CLIENT-TIMEOUT: 1500\r\n"
        b"Content-Length: 3\r\n\r\nabc"
    )
    for pieces in (1, 7, len(head)):
        (request,) = parsed(head, pieces)
        assert isinstance(request, HttpRequest)
        assert request.content_type == b"application/vnd.apache.thrift.compact"
        assert request.timeout == 1.5 and bytes(request.body) == b"abc"
        assert request.headers == {
            "host": "h",
            "x-tag": "a, b",
            "content-type": "application/vnd.apache.thrift.compact",
            "x-thrift-client-timeout": "1500",
            "content-length": "3",
        }
        assert request.headers is request.headers  # made once


def test_pipelined_requests_keep_their_own_headers():
    one = b"POST / HTTP/1.1\r\nX-N: 1\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\na"
    two = b"POST / HTTP/1.1\r\nX-N: 2\r\nOrigin: https://a.example\r\nContent-Length: 1\r\n\r\nb"
    first, second = parsed(one + two)
    assert first.headers["x-n"] == "1" and second.headers["x-n"] == "2"
    assert first.origin is None and second.origin == "https://a.example"
    assert first.content_type == second.content_type == b"application/x-thrift"


def test_a_head_past_the_limit_is_refused_even_while_it_arrives():
    complete = b"POST / HTTP/1.1\r\nX-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n"
    (refusal,) = parsed(complete)
    assert isinstance(refusal, Refusal) and refusal.status == 431
    endless = RequestParser(1 << 20)
    endless.feed(b"POST / HTTP/1.1\r\nX-Big: ")
    for _ in range(40):  # one field that never ends: httptools holds it, the parser bounds it
        endless.feed(b"a" * 8192)
    assert endless.broken and endless.done[-1].status == 431


def test_content_length_and_expect_are_acted_on_before_any_of_the_body():
    parser = RequestParser(100)
    parser.feed(b"POST / HTTP/1.1\r\ncontent-LENGTH: 101\r\nHost: h\r\n\r\n")
    assert parser.broken and parser.done[-1].status == 413
    parser = RequestParser(100)
    parser.feed(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nEXPECT: 100-Continue\r\n\r\n")
    assert list(parser.done) == [b"HTTP/1.1 100 Continue\r\n\r\n"] and parser.in_request
    parser.feed(b"abc")
    assert bytes(parser.done[-1].body) == b"abc"
