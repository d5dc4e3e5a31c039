"""A gunicorn_thrift app: a module-level TProcessor, as `gunicorn_thrift ping_app:app` serves it.

dracula serves the same object from the command line, without a config file:

    dracula serve examples.thriftpy2_style.ping_app:app --port 6000 --workers 4

(gunicorn_thrift's settings beside dracula's options: docs/migrating-from-thriftpy2.md).
"""

import os

import thriftpy2
from thriftpy2.thrift import TProcessor

pingpong_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(__file__), "pingpong.thrift"), module_name="pingpong_thrift"
)


class Dispatcher:
    def ping(self):
        return "pong"


app = TProcessor(pingpong_thrift.PingService, Dispatcher())
