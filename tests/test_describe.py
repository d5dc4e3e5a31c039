"""`dracula describe`: signatures and types spelled as in the IDL, through the real CLI."""

import textwrap

import pytest

from dracula.tools.describe import describe

from .cli_server import run_cli

SHOWCASE_SERVICE = """\
service Showcase {
  void ping()
  Scalars echo_scalars(1: Scalars s)
  Shape echo_shape(1: Shape shape)
  list<Shape> shapes(1: i32 n)
  map<string, Point> index(1: list<Point> points)
  set<string> unique(1: list<string> words)
  map<i32, map<string, list<set<i16>>>> nested(1: map<i32, map<string, list<set<i16>>>> value)
  Color next_color(1: Color color)
  binary reverse(1: binary data)
  string lookup(1: string key) throws (1: NotFound not_found, 2: Invalid invalid)
  i32 fail(1: string message)
  oneway void record(1: string event)
  list<string> recorded()
  string sleep_async(1: i32 ms)
  string sleep_blocking(1: i32 ms)
  Scalars wrong_type()
  i64 add(1: i64 a, 2: i64 b)
}
"""

SHOWCASE_TYPES = """\
enum Color {
  RED = 1
  GREEN = 2
  BLUE = 3
}

struct Point {
  1: required i32 x
  2: required i32 y
}

struct Shape {
  1: string name
  2: list<Point> points
  3: Color color = Color.RED
  4: optional map<string, list<Point>> labels
  5: set<i64> tags
  6: binary blob
}

struct Scalars {
  1: bool flag
  2: byte tiny
  3: i16 small
  4: i32 medium
  5: i64 large
  6: double real
  7: string text
  8: binary raw
  9: Color color
}

exception NotFound {
  1: string key
  2: i32 code
}

exception Invalid {
  1: string reason
}
"""


@pytest.mark.parametrize("target", ["idl/showcase.thrift", "idl/showcase.thrift:Showcase"])
def test_showcase_whole_output(target):
    proc = run_cli("describe", target)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == SHOWCASE_SERVICE + "\n" + SHOWCASE_TYPES
    assert proc.stderr == ""


def test_showcase_signature_lines():
    lines = run_cli("describe", "idl/showcase.thrift:Showcase").stdout.splitlines()
    for line in [
        "  string lookup(1: string key) throws (1: NotFound not_found, 2: Invalid invalid)",
        "  oneway void record(1: string event)",
        "  binary reverse(1: binary data)",
        "  map<i32, map<string, list<set<i16>>>> nested(1: map<i32, map<string, list<set<i16>>>> value)",
        "  Color next_color(1: Color color)",
        "  void ping()",
        "  4: optional map<string, list<Point>> labels",
        "  3: Color color = Color.RED",
        "  1: required i32 x",
    ]:
        assert line in lines


def test_only_the_types_a_service_uses(tmp_path):
    (tmp_path / "two.thrift").write_text(
        textwrap.dedent("""\
        struct A { 1: i32 a }
        struct B { 1: list<A> items }
        struct Unused { 1: string s }
        enum E { X, Y = 7 }
        service One { B get(1: E e) }
        service Two { void put(1: Unused u) }
        """)
    )
    assert describe(str(tmp_path / "two.thrift") + ":One") == textwrap.dedent("""\
        service One {
          B get(1: E e)
        }

        struct A {
          1: i32 a
        }

        struct B {
          1: list<A> items
        }

        enum E {
          X = 0
          Y = 7
        }
        """)
    whole = describe(str(tmp_path / "two.thrift"))
    assert "service One {" in whole and "service Two {" in whole and "struct Unused {" in whole


def test_includes_extends_unions_defaults_and_requiredness(tmp_path):
    (tmp_path / "shared.thrift").write_text(
        textwrap.dedent("""\
        enum Level { LOW, HIGH = 5 }
        struct Base {
            1: i32 id = 7,
            2: optional string note = "hi",
            3: list<i8> xs = [1, 2],  // i8 is byte to thriftpy2
        }
        service BaseService { i32 version() }
        """)
    )
    (tmp_path / "main.thrift").write_text(
        textwrap.dedent("""\
        include "shared.thrift"
        typedef shared.Base B
        union U { 1: i32 a, 2: string b }
        exception Err { 1: required string msg }
        struct S {
            1: B b,
            2: shared.Level lv = shared.Level.HIGH,
            3: optional U u,
            4: map<i32, string> m = {1: "a"},
            5: double d = 1.5,
            6: required bool f = true,
            7: map<shared.Level, set<binary>> odd,
        }
        service Child extends shared.BaseService {
            oneway void fire(1: S s, 2: optional i64 at)
            void nothing() throws (1: Err e)
        }
        """)
    )
    text = describe(str(tmp_path / "main.thrift"))
    assert text == textwrap.dedent("""\
        service Child extends shared.BaseService {
          oneway void fire(1: S s, 2: optional i64 at)
          void nothing() throws (1: Err e)
          // inherited from shared.BaseService
          i32 version()
        }

        union U {
          1: i32 a
          2: string b
        }

        exception Err {
          1: required string msg
        }

        struct S {
          1: shared.Base b
          2: shared.Level lv = shared.Level.HIGH
          3: optional U u
          4: map<i32, string> m = {1: "a"}
          5: double d = 1.5
          6: required bool f = true
          7: map<shared.Level, set<binary>> odd
        }

        enum shared.Level {
          LOW = 0
          HIGH = 5
        }

        struct shared.Base {
          1: i32 id = 7
          2: optional string note = "hi"
          3: list<byte> xs = [1, 2]
        }
        """)


@pytest.mark.parametrize(
    "target, message",
    [
        ("idl/nope.thrift", "IDL file not found: idl/nope.thrift"),
        ("idl/showcase.thrift:Nope", "idl/showcase.thrift has no service 'Nope' (services: Showcase)"),
        ("idl/nope.thrift:Showcase", "IDL file not found: idl/nope.thrift"),
    ],
)
def test_errors_exit_2(target, message):
    proc = run_cli("describe", target)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == "dracula: error: " + message


def test_unparsable_idl_exits_2(tmp_path):
    bad = tmp_path / "bad.thrift"
    bad.write_text("struct { oops")
    proc = run_cli("describe", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.startswith("dracula: error: cannot parse %s" % bad)
