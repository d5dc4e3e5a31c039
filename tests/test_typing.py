"""dracula ships types (py.typed), and a type checker sees Config's fields, their types and
defaults from options.py's declarations alone: Config is a plain dataclass, with no stub."""

import os
import textwrap

import pytest

import dracula

PACKAGE = os.path.dirname(os.path.abspath(dracula.__file__))
# This checkout (not where dracula is imported from: CI imports the installed copy, and mypy
# refuses site-packages on MYPYPATH).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_package_is_marked_typed():
    assert os.path.isfile(os.path.join(PACKAGE, "py.typed"))


def test_a_type_checker_reads_configs_fields_from_the_declarations(tmp_path, monkeypatch):
    api = pytest.importorskip("mypy.api")
    user = tmp_path / "user.py"
    user.write_text(
        textwrap.dedent("""\
        from dracula import Config
        reveal_type(Config().max_requests)
        reveal_type(Config().idle_timeout)
        reveal_type(Config.host)
        Config(port="9090")
        Config(no_such_option=1)
        """)
    )
    monkeypatch.setenv("MYPYPATH", ROOT)  # this checkout's dracula, whichever one is installed
    stdout, stderr, status = api.run(
        [
            str(user),
            "--python-version",
            "3.10",
            "--follow-imports",
            "silent",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--config-file",
            "",
        ]
    )
    lines = stdout.replace("builtins.", "").splitlines()  # older mypy versions qualify builtins
    assert 'Revealed type is "int | None"' in lines[0], stdout
    assert 'Revealed type is "float"' in lines[1], stdout
    assert 'Revealed type is "str"' in lines[2], stdout
    assert 'Argument "port" to "Config" has incompatible type "str"; expected "int"' in lines[3], stdout
    assert 'Unexpected keyword argument "no_such_option" for "Config"' in lines[4], stdout
    assert status == 1, stdout + stderr
