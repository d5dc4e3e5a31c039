"""Resolve the CLI's `IDL_PATH:SERVICE` and `module:attr` strings into objects.

Every failure is a LoadError whose message names the problem; the CLI prints it as one line.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import types
from typing import Any

import thriftpy2

from dracula.typedefs import Handler, ThriftService


class LoadError(Exception):
    pass


def load_service(spec: str) -> tuple[str, ThriftService]:
    """`idl/x.thrift:Service` → (service name, thriftpy2 service class)."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise LoadError("expected IDL_PATH:SERVICE, got %r" % spec)
    if not os.path.isfile(path):
        raise LoadError("IDL file not found: %s" % path)
    try:
        module = thriftpy2.load(path)
    except Exception as e:
        raise LoadError("cannot parse %s: %s" % (path, e)) from None
    service = getattr(module, name, None)
    if service is None or not hasattr(service, "thrift_services"):
        services = sorted(k for k, v in vars(module).items() if hasattr(v, "thrift_services"))
        raise LoadError("%s has no service %r (services: %s)" % (path, name, ", ".join(services) or "none"))
    return name, service


def load_idl(path: str) -> types.ModuleType:
    """`idl/x.thrift` → the thriftpy2 module parsed from it."""
    if not os.path.isfile(path):
        raise LoadError("IDL file not found: %s" % path)
    try:
        return thriftpy2.load(path)
    except Exception as e:
        raise LoadError("cannot parse %s: %s" % (path, e)) from None


def load_handler(spec: str, app_dir: str = ".") -> Handler:
    """`pkg.module:attr` → handler object. `attr` may be a class (instantiated with no
    arguments), a zero-argument factory function, or an instance."""
    target = load_attribute(spec, app_dir, "HANDLER", "handler")
    if inspect.isclass(target) or inspect.isfunction(target):
        target = _created(target, spec, "handler")
    return target


def load_hook(spec: str, app_dir: str = ".", what: str = "hook") -> Any:
    """`pkg.module:attr` → a callable hook (`--on-connect`): a function is the hook itself, a
    class is instantiated with no arguments (its instances are called)."""
    target = load_attribute(spec, app_dir, "MODULE:ATTR", what)
    if inspect.isclass(target):
        target = _created(target, spec, what)
    if not callable(target):
        raise LoadError("%s %s is not callable (a function, or a class whose instances are)" % (what, spec))
    return target


def load_attribute(spec: str, app_dir: str, shape: str, what: str) -> Any:
    """`pkg.module:attr.sub` → that object, imported with `app_dir` first on sys.path."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise LoadError("expected %s as module:attribute, got %r" % (shape, spec))
    app_dir = os.path.abspath(app_dir)
    if app_dir not in sys.path[:1]:
        sys.path.insert(0, app_dir)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        if e.name and module_name.startswith(e.name):
            raise LoadError("cannot import %s module %r: %s" % (what, module_name, e)) from None
        raise LoadError("%s module %r failed to import: %s" % (what, module_name, e)) from None
    except Exception as e:
        raise LoadError("%s module %r failed to import: %s: %s" % (what, module_name, type(e).__name__, e)) from None
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise LoadError("module %r has no attribute %r" % (module_name, attr)) from None
    return target


def _created(factory: Any, spec: str, what: str) -> Any:
    try:
        return factory()
    except Exception as e:
        raise LoadError("cannot create %s %s: %s: %s" % (what, spec, type(e).__name__, e)) from None
