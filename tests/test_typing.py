"""dracula ships types (py.typed): config.pyi must declare Config exactly as OPTIONS builds it,
since type checkers cannot see the fields config.py adds at import time."""
import ast
import dataclasses
import os

import dracula
from dracula.options import OPTIONS

PACKAGE = os.path.dirname(os.path.abspath(dracula.__file__))


def _stub_fields():
    with open(os.path.join(PACKAGE, "config.pyi")) as f:
        tree = ast.parse(f.read())
    config = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Config")
    return {node.target.id: ast.unparse(node.annotation)
            for node in config.body if isinstance(node, ast.AnnAssign)}


def _annotation_text(option):
    annotation = option.annotation
    return annotation if isinstance(annotation, str) else annotation.__name__


def test_config_stub_declares_every_field_with_its_type():
    expected = {option.name: _annotation_text(option) for option in OPTIONS}
    expected.update(worker_fd="int | None", ready_fd="int | None")
    assert _stub_fields() == expected
    assert list(_stub_fields()) == [field.name for field in dataclasses.fields(dracula.Config)]


def test_package_is_marked_typed():
    assert os.path.isfile(os.path.join(PACKAGE, "py.typed"))
