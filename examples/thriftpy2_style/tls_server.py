"""TLS, the server: thriftpy2's certfile, one PEM file holding the certificate chain and its
private key (dracula's --ssl-certfile).

A certificate for trying it: openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
-nodes -keyout key.pem -out ca.pem -days 7 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1
&& cat ca.pem key.pem > server.pem (the client trusts ca.pem).

Run: python -m examples.thriftpy2_style.tls_server (then tls_client)
"""

import os

import thriftpy2

from dracula import make_server  # thriftpy2: from thriftpy2.rpc import make_server

pingpong_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(__file__), "pingpong.thrift"), module_name="pingpong_thrift"
)
HOST, PORT = "127.0.0.1", 6000
CERTFILE = "server.pem"


class Dispatcher:
    def ping(self):
        return "pong"


def main():
    server = make_server(pingpong_thrift.PingService, Dispatcher(), HOST, PORT, certfile=CERTFILE)
    print("serving TLS on %s:%d..." % (HOST, server.port))
    server.serve()


if __name__ == "__main__":
    main()
