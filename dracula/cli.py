"""`dracula serve|call|describe`: argument parsing only."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from typing import Any

from dracula import __version__
from dracula.client import compiled as client_impl
from dracula.config import Config, ConfigError
from dracula.loader import LoadError, load_handler, load_hook, load_service
from dracula.ops.logs import configure
from dracula.ops.supervisor import Supervisor
from dracula.options import OPTIONS, Option
from dracula.server.lifecycle import Server
from dracula.server.listen import BindError
from dracula.server.on_connect import OnConnect, checked_hook
from dracula.thriftpy2_api import processor_services
from dracula.tools.call_command import PROTOCOLS, TRANSPORT_NAMES, Target
from dracula.typedefs import Handler, ThriftService
from dracula.wire import compiled as scanner_impl

EXIT_USAGE = 2

Commands = argparse._SubParsersAction  # what add_subparsers() returns (argparse names no public type)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dracula", description="Thrift RPC server for thriftpy2 services.")
    parser.add_argument(
        "--version",
        action="version",
        version="dracula %s (%s scanner, %s client)"
        % (__version__, scanner_impl.IMPLEMENTATION, client_impl.IMPLEMENTATION),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_parser(commands)
    add_call_parser(commands)
    add_describe_parser(commands)
    return parser


def add_serve_parser(commands: Commands[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="serve a .thrift service with a Python handler")
    serve.add_argument(
        "service",
        metavar="IDL_PATH:SERVICE",
        nargs="?",
        help="e.g. idl/pingpong.thrift:PingService; or, alone, MODULE:ATTR naming a "
        "thriftpy2 TProcessor or TMultiplexedProcessor (a gunicorn_thrift app)",
    )
    serve.add_argument("handler", metavar="HANDLER", nargs="?", help="module:attr: a class, factory or instance")
    serve.add_argument(
        "--service",
        dest="services",
        action="append",
        default=[],
        metavar="[NAME=]IDL_PATH:SERVICE=HANDLER",
        help="serve one more service on the same port (repeatable); multiplexed "
        "clients reach it as NAME:method (NAME defaults to SERVICE); the "
        "first service also answers plain method names",
    )
    serve.add_argument(
        "--middleware",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="a hook around every call (repeatable, applied in order): a class, "
        "factory or instance with before(call) and/or after(call, outcome, seconds)",
    )
    serve.add_argument(
        "--on-connect",
        default=None,
        metavar="MODULE:ATTR",
        help="asked about every new connection before it is read: a function "
        "on_connect(peer, peer_cert) (or a class whose instances are called) that "
        "returns False or raises to refuse it",
    )
    serve.add_argument(
        "--app-dir", default=".", metavar="DIR", help="put this directory first on sys.path (default: .)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run a supervisor with N worker processes sharing the socket "
        "(respawn, SIGHUP reload, SIGTTIN/SIGTTOU); default: serve in-process",
    )
    serve.add_argument("--worker-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for option in OPTIONS:
        if option.group not in groups:
            groups[option.group] = serve.add_argument_group(option.group)
        groups[option.group].add_argument(option.flag, **argument_for(option))


class _AppendTuple(argparse.Action):
    """A repeatable flag: its values, in order, as the tuple the option's field holds."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None) -> None:
        setattr(namespace, self.dest, (*getattr(namespace, self.dest, ()), values))


def argument_for(option: Option) -> dict[str, Any]:
    """add_argument's keywords for a declared option."""
    text = "%s (default: %s)" % (option.help, option.shown_default)
    if option.value_type is bool:
        return {"action": "store_true", "help": text}
    if option.repeat:
        return {
            "action": _AppendTuple,
            "type": option.parse or str,
            "default": option.default,
            "metavar": option.metavar,
            "help": text,
        }
    return {
        "type": option.parse or option.value_type,
        "default": option.default,
        "choices": option.choices,
        "metavar": option.metavar,
        "help": text,
    }


def add_call_parser(commands: Commands[argparse.ArgumentParser]) -> None:
    call = commands.add_parser(
        "call",
        help="call one method of a running server, print the reply as JSON",
        description="Exit status: 0 returned, 1 raised (declared exception or "
        "TApplicationException), 2 bad IDL/method/arguments (nothing "
        "sent), 3 no reply (refused, timed out, closed). "
        "JSON mapping: docs/cli-tools.md.",
    )
    call.add_argument("service", metavar="IDL_PATH:SERVICE", help="e.g. idl/showcase.thrift:Showcase")
    call.add_argument("method", metavar="METHOD")
    call.add_argument(
        "args_json",
        metavar="ARGS_JSON",
        nargs="?",
        default=None,
        help='object keyed by argument name, e.g. \'{"key": "a"}\'; - reads stdin; default {}',
    )
    target = Target()
    call.add_argument("--host", default=target.host)
    call.add_argument("--port", type=int, default=target.port)
    call.add_argument(
        "--transport",
        choices=TRANSPORT_NAMES,
        default=target.transport,
        help="header: THeader, with --protocol inside (default: %(default)s)",
    )
    call.add_argument("--protocol", choices=tuple(PROTOCOLS), default=target.protocol)
    call.add_argument(
        "--header",
        dest="headers",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a THeader request header (repeatable; --transport header only)",
    )
    call.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print the reply's THeader headers on stderr, one '< key: value' line each",
    )
    call.add_argument(
        "--timeout",
        type=float,
        default=target.timeout,
        metavar="SECONDS",
        help="for connecting and for each read; 0 waits for ever (default: %g)" % target.timeout,
    )
    call.add_argument(
        "--service-name", default=None, metavar="NAME", help="multiplexed server: send methods as NAME:method"
    )


def add_describe_parser(commands: Commands[argparse.ArgumentParser]) -> None:
    describe = commands.add_parser("describe", help="list services, method signatures and their types")
    describe.add_argument(
        "target", metavar="IDL_PATH[:SERVICE]", help="e.g. idl/showcase.thrift or idl/showcase.thrift:Showcase"
    )


def serve(args: argparse.Namespace, argv: list[str]) -> int:
    configure(args.log_level)
    try:
        config = Config(
            **{name: value for name, value in vars(args).items() if name in Config.__dataclass_fields__}
        ).validate()
        services = load_services(args)  # in a supervisor too: bad code fails before any fork
        middleware = [load_handler(spec, args.app_dir) for spec in args.middleware]
        on_connect = load_on_connect(args.on_connect, args.app_dir) if args.on_connect else None
        if args.workers is not None:
            if args.workers < 1:
                raise ConfigError("--workers must be at least 1")
            supervisor = Supervisor(config, worker_argv(argv), args.workers)
        else:
            server = Server(services, config, middleware, on_connect=on_connect)
    except (LoadError, ConfigError, BindError) as e:
        print("dracula: error: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    if args.workers is not None:
        return supervisor.run()
    # Everything loaded so far (the IDL's classes, the handler's modules) lives as long as the
    # process: out of the collector's sight, a full collection walks only what calls allocate.
    gc.freeze()
    server.serve()
    if server.drain_timed_out:
        # Handlers still running in pool threads would hold the interpreter's exit.
        logging.shutdown()
        os._exit(0)
    return 0


def load_on_connect(spec: str, app_dir: str) -> OnConnect | None:
    """--on-connect's hook, checked here too: a supervisor's workers would each fail alike."""
    try:
        return checked_hook(load_hook(spec, app_dir, "on_connect"))
    except TypeError as e:
        raise LoadError("--on-connect %s: %s" % (spec, e)) from None


def worker_argv(argv: list[str]) -> list[str]:
    """The supervisor's own `serve` arguments, less --workers, for its workers."""
    out: list[str] = []
    skip = False
    for arg in argv[argv.index("serve") + 1 :]:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def load_services(args: argparse.Namespace) -> list[tuple[str, ThriftService, Handler]]:
    """(name, service, handler) for the positional pair and every --service."""
    specs: list[tuple[str | None, str, str]] = []  # (NAME or None, IDL_PATH:SERVICE, HANDLER)
    services: list[tuple[str, ThriftService, Handler]] = []
    if args.service and not args.handler and not _names_idl(args.service):
        services.extend(load_processor(args.service, args.app_dir))  # a gunicorn_thrift app
    elif args.service or args.handler:
        if not (args.service and args.handler):
            raise LoadError("give both IDL_PATH:SERVICE and HANDLER (or one MODULE:ATTR naming a thriftpy2 TProcessor)")
        specs.append((None, args.service, args.handler))
    for item in args.services:
        parts = item.split("=")
        if len(parts) == 2:
            specs.append((None, parts[0], parts[1]))
        elif len(parts) == 3:
            specs.append((parts[0], parts[1], parts[2]))
        else:
            raise LoadError("expected --service [NAME=]IDL_PATH:SERVICE=HANDLER, got %r" % item)
    if not specs and not services:
        raise LoadError("nothing to serve: give IDL_PATH:SERVICE HANDLER or --service")
    for name, service_spec, handler_spec in specs:
        service_name, service = load_service(service_spec)
        name = name or service_name
        if any(name == known for known, _, _ in services):
            raise LoadError("two services named %r: name one NAME=IDL_PATH:SERVICE=HANDLER" % name)
        services.append((name, service, load_handler(handler_spec, args.app_dir)))
    return services


def _names_idl(spec: str) -> bool:
    path = spec.rpartition(":")[0]
    return path.endswith(".thrift") or os.path.isfile(path)


def load_processor(spec: str, app_dir: str) -> list[tuple[str, ThriftService, Handler]]:
    """`module:attr` naming a thriftpy2 TProcessor or TMultiplexedProcessor (or a factory of
    one), as gunicorn_thrift's app: its (name, service, handler) triples."""
    processor = load_handler(spec, app_dir)
    try:
        return processor_services(processor)
    except TypeError as e:
        raise LoadError(
            "%s: %s (give IDL_PATH:SERVICE HANDLER, or MODULE:ATTR naming a thriftpy2 TProcessor)" % (spec, e)
        ) from None


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args, argv)
    if args.command == "call":
        from dracula.tools.call_command import command as call_command

        return call_command(args)
    if args.command == "describe":
        from dracula.tools.describe import command as describe_command

        return describe_command(args)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
