"""`dracula serve|call|describe`: argument parsing only."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from . import __version__
from .config import Config, ConfigError
from .loader import LoadError, load_handler, load_service
from .logs import configure
from .listen import BindError
from .server import Server
from .supervisor import Supervisor
from .wire import impl as scanner_impl

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dracula", description="Thrift RPC server for thriftpy2 services.")
    parser.add_argument("--version", action="version",
                        version="dracula %s (%s scanner)" % (__version__, scanner_impl.IMPLEMENTATION))
    commands = parser.add_subparsers(dest="command", required=True)

    defaults = Config()
    serve = commands.add_parser("serve", help="serve a .thrift service with a Python handler")
    serve.add_argument("service", metavar="IDL_PATH:SERVICE", nargs="?",
                       help="e.g. idl/pingpong.thrift:PingService")
    serve.add_argument("handler", metavar="HANDLER", nargs="?",
                       help="module:attr: a class, factory or instance")
    serve.add_argument("--service", dest="services", action="append", default=[],
                       metavar="[NAME=]IDL_PATH:SERVICE=HANDLER",
                       help="serve one more service on the same port (repeatable); multiplexed "
                            "clients reach it as NAME:method (NAME defaults to SERVICE); the "
                            "first service also answers plain method names")
    serve.add_argument("--host", default=defaults.host)
    serve.add_argument("--port", type=int, default=defaults.port)
    serve.add_argument("--backend", choices=("uv", "thread"), default=defaults.backend)
    serve.add_argument("--backlog", type=int, default=defaults.backlog)
    serve.add_argument("--log-level", default=defaults.log_level,
                       choices=("critical", "error", "warning", "info", "debug"))
    serve.add_argument("--app-dir", default=".", help="put this directory first on sys.path (default: .)")
    serve.add_argument("--max-frame-size", type=int, default=defaults.max_frame_size,
                       help="largest frame or unframed message, bytes (default: 16 MiB)")
    serve.add_argument("--max-depth", type=int, default=defaults.max_depth,
                       help="deepest nesting of structs/containers (default: 64)")
    serve.add_argument("--max-container-size", type=int, default=defaults.max_container_size,
                       help="most elements one container may declare (default: 10,000,000)")
    serve.add_argument("--graceful-timeout", type=float, default=defaults.graceful_timeout,
                       help="seconds to finish in-flight requests on SIGTERM/SIGINT (default: 30)")
    serve.add_argument("--blocking-threads", type=int, default=None,
                       help="threads for @dracula.blocking handlers (default: min(32, cpus + 4))")
    serve.add_argument("--workers", type=int, default=None,
                       help="run a supervisor with N worker processes sharing the socket "
                            "(respawn, SIGHUP reload, SIGTTIN/SIGTTOU); default: serve in-process")
    serve.add_argument("--uds", default=None, metavar="PATH",
                       help="listen on a Unix domain socket instead of host:port")
    serve.add_argument("--uds-mode", type=lambda v: int(v, 8), default=defaults.uds_mode, metavar="OCTAL",
                       help="file mode of the --uds socket (default: 660)")
    serve.add_argument("--ssl-certfile", default=None, help="serve TLS with this certificate chain (PEM)")
    serve.add_argument("--ssl-keyfile", default=None, help="its private key (PEM), if not in the certfile")
    serve.add_argument("--ssl-ca-certs", default=None,
                       help="require client certificates signed by these CAs (PEM)")
    serve.add_argument("--access-log", action="store_true",
                       help="log one line per call: peer, service.method, outcome, latency (us)")
    serve.add_argument("--metrics-port", type=int, default=None,
                       help="serve Prometheus /metrics and /healthz on this port")
    serve.add_argument("--metrics-host", default=None, help="address for --metrics-port (default: --host)")
    serve.add_argument("--worker-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--max-string-size", type=int, default=None,
                       help="largest string/binary value, bytes (default: the frame size)")
    serve.add_argument("--max-connections", type=int, default=None,
                       help="open connections; past it new ones are accepted and closed at once "
                            "(default: the fd limit less 64)")
    serve.add_argument("--idle-timeout", type=float, default=defaults.idle_timeout,
                       help="close a connection idle this many seconds; 0: never (default: 0)")
    serve.add_argument("--request-timeout", type=float, default=defaults.request_timeout,
                       help="close a connection whose request is still incomplete after this many "
                            "seconds (slowloris); 0: never (default: 30)")
    serve.add_argument("--handler-timeout", type=float, default=defaults.handler_timeout,
                       help="seconds before a coroutine or @blocking handler's caller gets an "
                            "error; 0: no limit (default: 0)")
    serve.add_argument("--write-high-water", type=int, default=defaults.write_high_water,
                       help="per-connection unsent reply bytes past which reading pauses (uv)")
    serve.add_argument("--write-low-water", type=int, default=defaults.write_low_water,
                       help="unsent reply bytes below which reading resumes (uv)")
    add_call_parser(commands)
    add_describe_parser(commands)
    return parser


def add_call_parser(commands) -> None:
    call = commands.add_parser("call", help="call one method of a running server, print the reply as JSON",
                               description="Exit status: 0 returned, 1 raised (declared exception or "
                                           "TApplicationException), 2 bad IDL/method/arguments (nothing "
                                           "sent), 3 no reply (refused, timed out, closed). "
                                           "JSON mapping: README.md, dracula call.")
    call.add_argument("service", metavar="IDL_PATH:SERVICE", help="e.g. idl/showcase.thrift:Showcase")
    call.add_argument("method", metavar="METHOD")
    call.add_argument("args_json", metavar="ARGS_JSON", nargs="?", default=None,
                      help='object keyed by argument name, e.g. \'{"key": "a"}\'; - reads stdin; default {}')
    call.add_argument("--host", default="127.0.0.1")
    call.add_argument("--port", type=int, default=9090)
    call.add_argument("--transport", choices=("framed", "buffered"), default="buffered")
    call.add_argument("--protocol", choices=("binary", "compact"), default="binary")
    call.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                      help="for connecting and for each read; 0 waits for ever (default: 10)")
    call.add_argument("--service-name", default=None, metavar="NAME",
                      help="multiplexed server: send methods as NAME:method")


def add_describe_parser(commands) -> None:
    describe = commands.add_parser("describe", help="list services, method signatures and their types")
    describe.add_argument("target", metavar="IDL_PATH[:SERVICE]",
                          help="e.g. idl/showcase.thrift or idl/showcase.thrift:Showcase")


def serve(args, argv) -> int:
    configure(args.log_level)
    try:
        config = Config(**{name: value for name, value in vars(args).items()
                           if name in Config.__dataclass_fields__}).validate()
        services = load_services(args)  # in a supervisor too: bad code fails before any fork
        if args.workers is not None:
            if args.workers < 1:
                raise ConfigError("--workers must be at least 1")
            supervisor = Supervisor(config, worker_argv(argv), args.workers)
        else:
            server = Server(services, config)
    except (LoadError, ConfigError, BindError) as e:
        print("dracula: error: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    if args.workers is not None:
        return supervisor.run()
    server.serve()
    if server.drain_timed_out:
        # Handlers still running in pool threads would hold the interpreter's exit.
        logging.shutdown()
        os._exit(0)
    return 0


def worker_argv(argv) -> list:
    """The supervisor's own `serve` arguments, less --workers, for its workers."""
    out = []
    skip = False
    for arg in argv[argv.index("serve") + 1:]:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def load_services(args):
    """(name, service, handler) for the positional pair and every --service."""
    specs = []
    if args.service or args.handler:
        if not (args.service and args.handler):
            raise LoadError("give both IDL_PATH:SERVICE and HANDLER")
        specs.append((None, args.service, args.handler))
    for item in args.services:
        parts = item.split("=")
        if len(parts) == 2:
            specs.append((None, parts[0], parts[1]))
        elif len(parts) == 3:
            specs.append(tuple(parts))
        else:
            raise LoadError("expected --service [NAME=]IDL_PATH:SERVICE=HANDLER, got %r" % item)
    if not specs:
        raise LoadError("nothing to serve: give IDL_PATH:SERVICE HANDLER or --service")
    services = []
    for name, service_spec, handler_spec in specs:
        service_name, service = load_service(service_spec)
        name = name or service_name
        if any(name == known for known, _, _ in services):
            raise LoadError("two services named %r: name one NAME=IDL_PATH:SERVICE=HANDLER" % name)
        services.append((name, service, load_handler(handler_spec, args.app_dir)))
    return services


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args, argv)
    if args.command == "call":
        from .call import command as call_command
        return call_command(args)
    if args.command == "describe":
        from .describe import command as describe_command
        return describe_command(args)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
