"""Options are declared once (dracula/options.py): Config's fields, `dracula serve`'s flags and
--help, and the manual's tables of options (docs/options.md) and limits (docs/limits.md) must all
agree with those declarations."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import pytest

from dracula.config import Config, ConfigError
from dracula.options import OPTIONS, declared_options

from .helpers import ROOT

DOC_TABLES = (("docs/options.md", "## `dracula serve`"), ("docs/limits.md", "## The limits"))
INTERNAL_FIELDS = {"worker_fd", "ready_fd"}  # set by the supervisor for its workers, not options


def doc_table(page: str, heading: str) -> list[dict]:
    """The rows of the (one) table under `heading` in the manual's `page`, as {column header: cell}."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as doc:
        text = doc.read()
    section = text.split("\n" + heading + "\n", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    header, rows = cells[0], cells[2:]  # cells[1] is the |---| line
    return [dict(zip(header, row, strict=False)) for row in rows]  # a markdown row may be short


def documented_defaults() -> dict:
    """flag → its default cell, over both tables. A row may name several flags ("`--host`,
    `--port`" or "`--a` / `--b`"), its default cell then one value each in the same way, or one
    value for all."""
    documented = {}
    for page, heading in DOC_TABLES:
        for row in doc_table(page, heading):
            flags_cell = row.get("option", row.get("flag"))
            flags = re.findall(r"`(--[a-z][a-z0-9-]*)", flags_cell)
            default = row["default"].replace("`", "")
            values = default.split(" / " if " / " in flags_cell else ", ") if len(flags) > 1 else [default]
            if len(values) == 1:
                values *= len(flags)
            assert len(values) == len(flags), "docs row %r: defaults %r" % (flags_cell, default)
            documented.update(zip(flags, values, strict=True))
    return documented


@pytest.fixture(scope="module")
def serve_help() -> str:
    env = dict(os.environ, COLUMNS="100")
    result = subprocess.run(
        [sys.executable, "-m", "dracula", "serve", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def usage_flags(help_text: str) -> set:
    usage = help_text.split("\n\n", 1)[0]
    return set(re.findall(r"\[(--[a-z][a-z0-9-]*)", usage))


def help_entries(help_text: str) -> dict:
    """flag → its --help entry (flag, metavar, text), whitespace collapsed."""
    entries = re.split(r"\n  (?=--)", help_text)[1:]
    return {entry.split()[0]: " ".join(entry.split()) for entry in entries}


def test_every_declared_option_is_in_the_docs_with_its_default():
    documented = documented_defaults()
    wrong = {
        option.flag: (documented.get(option.flag, "missing"), option.shown_default)
        for option in OPTIONS
        if documented.get(option.flag) != option.shown_default
    }
    assert not wrong, "docs default vs declared default: %r" % wrong


def test_every_flag_in_the_docs_exists(serve_help):
    unknown = set(documented_defaults()) - usage_flags(serve_help)
    assert not unknown, "the docs list flags `dracula serve` does not have: %s" % sorted(unknown)


def test_serve_help_lists_every_declared_flag_with_its_default(serve_help):
    assert {option.flag for option in OPTIONS} <= usage_flags(serve_help)
    entries = help_entries(serve_help)
    for option in OPTIONS:
        assert "(default: %s)" % option.shown_default in entries[option.flag], entries[option.flag]


def test_every_config_field_is_declared_or_internal():
    fields = {field.name for field in dataclasses.fields(Config)}
    declared = {option.name for option in OPTIONS}
    assert fields == declared | INTERNAL_FIELDS
    assert len(declared) == len(OPTIONS), "an option is declared twice"


def test_the_declared_defaults_are_valid():
    Config().validate()
    for option in OPTIONS:
        assert option.problem(option.default) is None, option.name


BAD_VALUES = {
    "port": 70000,
    "backend": "reactor",
    "backlog": 0,
    "max_frame_size": 15,
    "max_string_size": -1,
    "max_container_size": -1,
    "max_depth": 65,
    "max_connections": 0,
    "idle_timeout": -1.0,
    "request_timeout": -1.0,
    "handler_timeout": -0.5,
    "graceful_timeout": -1.0,
    "blocking_threads": 0,
    "log_level": "loud",
}


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_validate_runs_the_declared_check(name):
    with pytest.raises(ConfigError) as error:
        Config(**{name: BAD_VALUES[name]}).validate()
    assert str(error.value).startswith(name + " "), str(error.value)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"write_low_water": 2 * 1024 * 1024}, "write marks need 0 <= low <= high"),
        ({"ssl_keyfile": "key.pem"}, "--ssl-keyfile and --ssl-ca-certs need --ssl-certfile"),
        ({"ssl_ca_certs": "ca.pem"}, "--ssl-keyfile and --ssl-ca-certs need --ssl-certfile"),
    ],
)
def test_validate_checks_options_that_relate(options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Config(**options).validate()


def test_a_field_without_its_option_is_refused_at_import():
    @dataclasses.dataclass
    class Undocumented:
        port: int = 9090

    with pytest.raises(TypeError, match="option port: annotate it"):
        declared_options(Undocumented)


def test_the_option_takes_its_type_from_the_annotation():
    types = {option.name: option.value_type for option in OPTIONS}
    assert (types["port"], types["uds"], types["idle_timeout"], types["access_log"]) == (int, str, float, bool)
