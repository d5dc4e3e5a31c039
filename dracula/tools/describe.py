"""`dracula describe IDL_PATH[:SERVICE]`: services, method signatures and the types they use,
printed in IDL syntax from what thriftpy2 parsed.

Types are spelled as in the IDL (`list<Point>`, `map<string, list<Point>>`, `binary`, enum
names); a type from an included file is qualified with the include's name (`shared.Base`).
Two things thriftpy2 does not keep are recovered or dropped:
  * `optional`: thriftpy2 records only `required` (True) or not, so the `optional` keyword is
    read back from the field's line of the IDL source (`N: optional ...`);
  * typedefs and `i8` (parsed as `byte`) are shown as what they resolve to.
"""

from __future__ import annotations

import argparse
import json
import linecache
import os
import re
import sys
import types
from collections.abc import Iterable, Sequence
from typing import Any

from thriftpy2.thrift import TType

from dracula.loader import LoadError, load_idl, load_service
from dracula.tools.jsonmap import BASE_NAMES, field_parts, is_enum, split
from dracula.typedefs import FieldSpec, ThriftService, ThriftStruct

EXIT_OK, EXIT_USAGE = 0, 2
KINDS = (
    ("enum", "enums"),
    ("struct", "structs"),
    ("union", "unions"),
    ("exception", "exceptions"),
    ("service", "services"),
)


class Idl:
    """One parsed IDL and its includes: qualified names and kinds of everything declared."""

    def __init__(self, root: types.ModuleType) -> None:
        self.root = root
        self.names: dict[type, str] = {}  # class → name as spelled in the root IDL
        self.kinds: dict[type, str] = {}  # class → "enum" | "struct" | "union" | "exception" | "service"
        self.rank: dict[type, tuple[int, int]] = {}  # class → (module order, line): declaration order
        seen: set[int] = set()
        queue = [(root, "")]
        while queue:
            module, prefix = queue.pop(0)
            if id(module) in seen:
                continue
            seen.add(id(module))
            meta = getattr(module, "__thrift_meta__", {})
            for kind, key in KINDS:
                for cls in meta.get(key, ()):
                    self.names.setdefault(cls, prefix + cls.__name__)
                    self.kinds.setdefault(cls, kind)
                    self.rank.setdefault(cls, (len(seen), getattr(cls, "__thrift_lineno__", 0) or 0))
            queue.extend((included, included.__name__ + ".") for included in meta.get("includes", ()))

    def declared(self, module: types.ModuleType | None = None) -> list[type[ThriftStruct]]:
        """Types (not services) declared in `module` (default: the root IDL), in file order."""
        module = module or self.root
        meta = getattr(module, "__thrift_meta__", {})
        types = [cls for kind, key in KINDS[:-1] for cls in meta.get(key, ())]
        return sorted(types, key=self.rank.__getitem__)

    def name(self, cls: type[ThriftStruct]) -> str:
        return self.names.get(cls, cls.__name__)

    def kind(self, cls: type[ThriftStruct]) -> str:
        if cls in self.kinds:
            return self.kinds[cls]
        if hasattr(cls, "_VALUES_TO_NAMES"):
            return "enum"
        if issubclass(cls, Exception):
            return "exception"
        return "struct"

    # --- types ---------------------------------------------------------------------------

    def type_name(self, ttype: int, sub: Any = None) -> str:
        if is_enum(ttype, sub) or ttype == TType.STRUCT:
            return self.name(sub)
        if ttype in (TType.LIST, TType.SET):
            return "%s<%s>" % ("list" if ttype == TType.LIST else "set", self.type_name(*split(sub)))
        if ttype == TType.MAP:
            return "map<%s, %s>" % (self.type_name(*split(sub[0])), self.type_name(*split(sub[1])))
        return BASE_NAMES.get(ttype, "ttype%s" % ttype)

    def used_by(self, services: Iterable[ThriftService]) -> list[type[ThriftStruct]]:
        """Enum/struct/exception classes the services' methods reach, transitively."""
        found: list[type[ThriftStruct]] = []

        def visit(ttype: int, sub: Any) -> None:
            if is_enum(ttype, sub):
                if sub not in found:
                    found.append(sub)
            elif ttype == TType.STRUCT:
                if sub not in found:
                    found.append(sub)
                    for spec in sub.thrift_spec.values():
                        visit_field(spec)
            elif ttype in (TType.LIST, TType.SET):
                visit(*split(sub))
            elif ttype == TType.MAP:
                visit(*split(sub[0]))
                visit(*split(sub[1]))

        def visit_field(spec: FieldSpec) -> None:
            ttype, _, sub, _ = field_parts(spec)
            visit(ttype, sub)

        for service in services:
            for method in service.thrift_services:
                for suffix in ("_args", "_result"):
                    for spec in getattr(service, method + suffix).thrift_spec.values():
                        visit_field(spec)
        return found

    # --- values (defaults) ---------------------------------------------------------------

    def literal(self, value: Any, ttype: int, sub: Any = None) -> str:
        if ttype == TType.BOOL:
            return "true" if value else "false"
        if is_enum(ttype, sub):
            name = sub._VALUES_TO_NAMES.get(value)
            return "%s.%s" % (self.name(sub), name) if name is not None else str(value)
        if ttype in (TType.STRING, TType.BINARY):
            if isinstance(value, (bytes, bytearray)):
                value = bytes(value).decode("utf-8", "replace")
            return json.dumps(value, ensure_ascii=False)
        if ttype in (TType.LIST, TType.SET):
            etype, esub = split(sub)
            items = value
            if ttype == TType.SET:
                try:
                    items = sorted(value)
                except TypeError:
                    items = list(value)
            return "[%s]" % ", ".join(self.literal(v, etype, esub) for v in items)
        if ttype == TType.MAP:
            ktype, ksub = split(sub[0])
            vtype, vsub = split(sub[1])
            return "{%s}" % ", ".join(
                "%s: %s" % (self.literal(k, ktype, ksub), self.literal(v, vtype, vsub)) for k, v in value.items()
            )
        if ttype == TType.STRUCT:
            parts = []
            for spec in value.thrift_spec.values():
                ftype, fname, fsub, _ = field_parts(spec)
                fvalue = getattr(value, fname, None)
                if fvalue is not None:
                    parts.append("%s: %s" % (json.dumps(fname), self.literal(fvalue, ftype, fsub)))
            return "{%s}" % ", ".join(parts)
        return repr(value)

    # --- rendering -----------------------------------------------------------------------

    def field(self, cls: type[ThriftStruct], fid: int, spec: FieldSpec, default: Any = None) -> str:
        ttype, name, sub, required = field_parts(spec)
        qualifier = "required " if required else ("optional " if _declared_optional(cls, fid, name) else "")
        text = "%s%s %s" % (qualifier, self.type_name(ttype, sub), name)
        if fid >= 0:
            text = "%d: %s" % (fid, text)
        if default is not None:
            text += " = " + self.literal(default, ttype, sub)
        return text

    def fields(self, cls: type[ThriftStruct], skip_success: bool = False) -> list[str]:
        defaults = dict(getattr(cls, "default_spec", ()) or ())
        return [
            self.field(cls, fid, spec, defaults.get(field_parts(spec)[1]))
            for fid, spec in sorted(cls.thrift_spec.items())
            if not (skip_success and fid == 0)
        ]

    def signature(self, service: ThriftService, method: str) -> str:
        args_cls = getattr(service, method + "_args")
        result_cls = getattr(service, method + "_result")
        success = result_cls.thrift_spec.get(0)
        returns = "void"
        if success is not None:
            ttype, _, sub, _ = field_parts(success)
            returns = self.type_name(ttype, sub)
        text = "%s%s %s(%s)" % (
            "oneway " if getattr(result_cls, "oneway", False) else "",
            returns,
            method,
            ", ".join(self.fields(args_cls)),
        )
        throws = self.fields(result_cls, skip_success=True)
        if throws:
            text += " throws (%s)" % ", ".join(throws)
        return text

    def service_block(self, service: ThriftService) -> list[str]:
        bases = [b for b in service.__bases__ if hasattr(b, "thrift_services")]
        head = "service %s" % self.name(service)
        if bases:
            head += " extends %s" % self.name(bases[0])
        lines = [head + " {"]
        owner_shown = service
        for method in service.thrift_services:
            owner = _defining_service(service, method)
            if owner is not owner_shown:
                lines.append("  // inherited from %s" % self.name(owner))
                owner_shown = owner
            lines.append("  " + self.signature(service, method))
        lines.append("}")
        return lines

    def type_block(self, cls: type[ThriftStruct]) -> list[str]:
        kind = self.kind(cls)
        lines = ["%s %s {" % (kind, self.name(cls))]
        if kind == "enum":
            lines += ["  %s = %d" % (name, value) for value, name in sorted(cls._VALUES_TO_NAMES.items())]
        else:
            lines += ["  " + text for text in self.fields(cls)]
        lines.append("}")
        return lines

    def render(self, services: Sequence[ThriftService], extra_types: Iterable[type[ThriftStruct]] = ()) -> str:
        types = list(extra_types)
        for cls in self.used_by(services):
            if cls not in types:
                types.append(cls)
        types.sort(key=lambda cls: self.rank.get(cls, (sys.maxsize, 0)))
        blocks = [self.service_block(s) for s in services] + [self.type_block(t) for t in types]
        return "\n\n".join("\n".join(block) for block in blocks) + "\n"


def _defining_service(service: ThriftService, method: str) -> ThriftService:
    for cls in service.__mro__:
        if method + "_args" in vars(cls):
            return cls
    return service


_COMMENT = re.compile(r"//.*|#.*|/\*.*?\*/")


def _declared_optional(cls: type[ThriftStruct], fid: int, name: str) -> bool:
    """Whether the IDL declares the field `optional` (thriftpy2 keeps only `required`)."""
    path = getattr(cls, "__thrift_file__", None)
    lineno = (getattr(cls, "__thrift_field_linenos__", None) or {}).get(name)
    if not path or not lineno:
        return False
    line = _COMMENT.sub(" ", linecache.getline(path, lineno))
    if fid >= 0:
        pattern = r"(?<![\w.])%d\s*:\s*optional\b" % fid
    else:  # no explicit id: `optional TYPE NAME`
        pattern = r"(?<![\w.])optional\s.*?(?<![\w.])%s(?![\w.])" % re.escape(name)
    return re.search(pattern, line) is not None


def describe(target: str) -> str:
    """The text for `IDL_PATH` (every service and type in the file) or `IDL_PATH:SERVICE`.
    Raises LoadError."""
    if os.path.isfile(target) or ":" not in target:
        idl = Idl(load_idl(target))
        services = list(idl.root.__thrift_meta__.get("services", ()))
        return idl.render(services, idl.declared())
    _, service = load_service(target)
    idl = Idl(load_idl(target.rpartition(":")[0]))
    return idl.render([service])


def command(args: argparse.Namespace) -> int:
    """`dracula describe`: print the description, or one error line and exit 2."""
    try:
        text = describe(args.target)
    except LoadError as e:
        print("dracula: error: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(text)
    return EXIT_OK
