"""QGIS 4 (Qt6) readiness: our code uses no Qt5-only idiom. PyQt6 has only fully scoped enums
(QDialogButtonBox.StandardButton.Close, not QDialogButtonBox.Close), no exec_(), and QGIS 4
plugins import Qt through qgis.PyQt. The enum check asks the running QGIS what each
`Class.Name` is, so it finds every unscoped member, not only a list of known ones."""
import ast
import enum
import importlib
import re
from pathlib import Path

import pytest

from _checkout import PACKAGE, ROOT
SOURCES = ["src", "scripts", "tests", "benchmarks"]
MODULES = ["qgis.core", "qgis.gui", "qgis.analysis", "qgis.PyQt.QtCore", "qgis.PyQt.QtGui",
           "qgis.PyQt.QtWidgets"]
TEXT_RULES = [
    (re.compile(r"\.exec_\(|\bprint_\("), "exec_()/print_() are gone in PyQt6: use exec()"),
    (re.compile(r"^\s*(from|import)\s+(PyQt[56]|sip|PySide\d?)\b", re.M),
     "import Qt through qgis.PyQt (QGIS picks PyQt5 or PyQt6)"),
    (re.compile(r"\b(QRegExp|QDesktopWidget|QMatrix|QGLWidget|QSound)\b|"
                r"\bQApplication\.desktop\(\)|\bQt\.MidButton\b"),
     "a Qt5-only API (removed in Qt6)"),
]


def python_files():
    for entry in SOURCES:
        path = ROOT / entry
        yield from ([path] if path.is_file() else sorted(path.rglob("*.py")))


def qt_classes() -> dict:
    found = {}
    for name in MODULES:
        module = importlib.import_module(name)
        found.update({k: v for k, v in vars(module).items()
                      if k.startswith("Q") and isinstance(v, type)})
    return found


def is_enum_member(value) -> bool:
    """A member of a Python enum (PyQt6, QGIS ≥ 3.36's enums) or of a sip enum (PyQt5: an int
    whose type is the enum)."""
    if isinstance(value, enum.Enum):
        return True
    return isinstance(value, int) and type(value) not in (int, bool)


def unscoped_enums(source: str, classes: dict) -> list:
    """(line, 'Class.Member', enum type) for each enum member reached through its class."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id in classes:
            value = getattr(classes[node.value.id], node.attr, None)
            if not isinstance(value, type) and is_enum_member(value):
                found.append((node.lineno, f"{node.value.id}.{node.attr}",
                              type(value).__name__))
    return found


def text_problems(source: str) -> list:
    return [(source.count("\n", 0, m.start()) + 1, m.group(0).strip(), why)
            for rule, why in TEXT_RULES for m in rule.finditer(source)]


@pytest.fixture(scope="module")
def classes():
    return qt_classes()


def test_the_scan_finds_qt5_idioms(classes):
    """The scan itself, on code written the Qt5 way."""
    bad = ("from PyQt5.QtWidgets import QDialogButtonBox\n"
           "box = QDialogButtonBox(QDialogButtonBox.Close)\n"
           "box.addButton('x', QDialogButtonBox.ActionRole)\n"
           "flags = QgsProcessingAlgorithm.FlagNoThreading | Qt.AlignLeft\n"
           "box.exec_()\n")
    names = [name for _, name, _ in unscoped_enums(bad, classes)]
    assert names == ["QDialogButtonBox.Close", "QDialogButtonBox.ActionRole",
                     "QgsProcessingAlgorithm.FlagNoThreading", "Qt.AlignLeft"]
    good = ("box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)\n"
            "flags = QgsProcessingAlgorithm.Flag.FlagNoThreading\n"
            "details = QgsProcessingContext.LayerDetails('a', None)\nbox.exec()\n")
    assert unscoped_enums(good, classes) == [] and text_problems(good) == []
    assert sorted(line for line, _, _ in text_problems(bad)) == [1, 5]


def test_our_code_has_no_qt5_only_idioms(classes):
    problems = []
    for path in python_files():
        if path == Path(__file__):
            continue
        source = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        problems += [f"{rel}:{line}: {name} is a member of the enum {kind}: scope it fully "
                     "(Class.Enum.Member)" for line, name, kind in unscoped_enums(source, classes)]
        problems += [f"{rel}:{line}: {text}: {why}" for line, text, why in text_problems(source)]
    assert not problems, "\n".join(problems)


def test_metadata_declares_qgis_4():
    meta = dict(line.split("=", 1) for line in (PACKAGE / "metadata.txt").read_text().splitlines()
                if "=" in line and not line.startswith((" ", "\t")))
    low, high = (tuple(int(x) for x in meta[k].split(".")) for k in ("qgisMinimumVersion",
                                                                        "qgisMaximumVersion"))
    assert low <= (3, 22) and high >= (4, 0)
