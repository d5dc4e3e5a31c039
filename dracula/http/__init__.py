"""Thrift over HTTP/1.1 on the serving port (docs/http.md).

A connection whose first bytes are an HTTP request line (wire/detect.py raises HttpDetected) is
handed to these modules by its backend: httptools parses the requests (parser.py), each POST
body is read as one Thrift message by the wire layer like any other (session.py), the call runs
down the same path as every other (calls.Call, through call.py's HttpCall, whose reply is the
HTTP response) and responses.py writes the answer. Backends only move bytes:
server/backends/uv_http.py and server/backends/threaded_http.py.
"""
