"""thriftpy2's kinds of example server, each written as thriftpy2's documentation writes it, with
one change: the server imports `make_server` (or `make_aio_server`) from dracula instead of from
`thriftpy2.rpc`. The clients are plain thriftpy2 clients, unchanged.

| example | what it shows |
|---|---|
| ping_server / ping_client | the smallest server: service, handler, host, port |
| calc_server / calc_client | `proto_factory` / `trans_factory` (thriftpy2's Cython ones), a declared exception |
| sleep_server / sleep_client | a oneway call: the client does not wait for the handler |
| echo_server / echo_client | `make_aio_server(..., loop=loop)` and `server.serve()`, a coroutine handler |
| mux_server / mux_client | `TProcessor`s in a `TMultiplexedProcessor`, served by `make_server(processor)` |
| ping_app | a gunicorn_thrift app (a `TProcessor`): `dracula serve examples.thriftpy2_style.ping_app:app` |
| compact_server / compact_client | compact protocol, framed transport |
| uds_server / uds_client | `unix_socket` |
| tls_server / tls_client | `certfile` (certificate and key in one PEM file) |
| ipv6_server / ipv6_client | `socket_family=socket.AF_INET6` |
| idle_server | every argument of thriftpy2's make_server, positionally; `client_timeout` closes idle connections |

Run a pair from the repository root, in two shells: `python -m examples.thriftpy2_style.calc_server`
then `python -m examples.thriftpy2_style.calc_client`. tests/test_dropin.py runs every pair, on
both backends where the server is not an asyncio one.
"""
