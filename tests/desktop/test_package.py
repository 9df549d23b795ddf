"""The plugin ZIP: plugins.qgis.org's rules, and an install through QGIS's installer code."""
import configparser
import json
import re
import zipfile
from pathlib import Path

from _checkout import PACKAGE, ROOT, run_qgis_script

MAX_BYTES = 25 * 1024 * 1024
REQUIRED = ["name", "description", "about", "version", "qgisMinimumVersion", "author", "email",
            "repository", "tracker", "homepage"]
BINARY_SUFFIXES = (".so", ".dll", ".pyd", ".dylib", ".exe", ".bin", ".o", ".a", ".lib")
BINARY_MAGIC = (b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")


def zip_problems(path: Path) -> list:
    """The checks of QGIS-Django's plugins/validator.py that a file can fail, as messages."""
    problems = []
    if path.stat().st_size > MAX_BYTES:
        problems.append(f"ZIP is {path.stat().st_size} bytes (limit 25 MB)")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        if zf.testzip() is not None:
            problems.append("corrupt member")
        tops = {n.split("/", 1)[0] for n in names}
        if len(tops) != 1:
            return problems + [f"more than one top-level entry: {sorted(tops)}"]
        top = tops.pop()
        if not re.match(r"^[A-Za-z][A-Za-z0-9\-_]+$", top) or not top.isidentifier():
            problems.append(f"top folder {top!r} is not an importable name")
        for need in ("__init__.py", "metadata.txt"):
            if f"{top}/{need}" not in names:
                problems.append(f"{top}/{need} missing")
        if not any(re.match(rf"{top}/LICEN[CS]E(\.\w+)?$", n) for n in names):
            problems.append("no LICENSE file")
        for n in names:
            parts = n.split("/")
            if "__pycache__" in parts or "__MACOSX" in parts or any(
                    p.startswith(".git") for p in parts) or n.endswith((".pyc", ".pyo")):
                problems.append(f"forbidden member {n}")
            if n.lower().endswith(BINARY_SUFFIXES):
                problems.append(f"compiled binary {n}")
            elif not n.endswith("/") and zf.read(n)[:4].startswith(BINARY_MAGIC):
                problems.append(f"executable header in {n}")
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read_string(zf.read(f"{top}/metadata.txt").decode("utf-8"))
        meta = cfg["general"]
        for key in REQUIRED:
            if not meta.get(key, "").strip():
                problems.append(f"metadata.txt lacks {key}")
        for key in ("repository", "tracker", "homepage"):
            if not re.match(r"^https?://[\w.-]+\.\w+/\S+", meta.get(key, "")):
                problems.append(f"metadata {key} is not a real URL")
        if meta.get("hasProcessingProvider", "").lower() != "yes":
            problems.append("hasProcessingProvider is not yes")
        icon = meta.get("icon")
        if icon and f"{top}/{icon}" not in names:
            problems.append(f"icon {icon} not in the ZIP")
    return problems


def test_zip_follows_the_plugin_repository_rules(plugin_zip):
    assert zip_problems(plugin_zip) == []
    assert plugin_zip.name == f"demsr-{_meta()['version']}.zip"


def test_the_rule_check_catches_a_bad_zip(tmp_path):
    """A ZIP with a versioned top folder, caches and no LICENSE must fail the check."""
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("demsr-0.3.0/__init__.py", "")
        zf.writestr("demsr-0.3.0/metadata.txt", "[general]\nname=x\n")
        zf.writestr("demsr-0.3.0/__pycache__/a.cpython-311.pyc", "x")
    problems = zip_problems(bad)
    assert any("importable" in p for p in problems)
    assert any("LICENSE" in p for p in problems)
    assert any("__pycache__" in p for p in problems)
    assert any("tracker" in p for p in problems)


def test_versions_agree_and_about_survives_html():
    """The Plugin Manager renders `about` as HTML: nothing in it may look like a tag."""
    meta = _meta()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{meta["version"]}"' in pyproject
    assert not re.search(r"<[^>]*>", meta["about"]), meta["about"]
    assert "PyTorch" in meta["about"] and "Install / repair dependencies" in meta["about"]


def test_zip_installs_through_qgis_installer_code(plugin_zip, tmp_path):
    """Unzipped by pyplugin_installer into a fresh profile and loaded by qgis.utils as
    qgis_process loads it: the provider and its algorithms come up, the desktop package does
    not load (it is for initGui only)."""
    res = run_qgis_script(Path(__file__).parent / "_headless_install.py", plugin_zip,
                          tmp_path / "profile")
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["available"] and out["loaded"] and out["started"], out
    assert out["module_file"].startswith(str(tmp_path / "profile")), out
    assert {"demsr:superresolve", "demsr:derivatives", "demsr:train",
            "demsr:voidrepair"} <= set(out["algorithms"])
    assert not out["desktop_imported"]
    assert out["metadata_version"] == _meta()["version"]


def test_unzipped_plugin_runs_python_m_demsr(plugin_zip, tmp_path):
    """The ZIP carries the command line: with the folder holding `demsr` on PYTHONPATH, as
    the README says, `python -m demsr` lists its subcommands and their options."""
    import os
    import subprocess
    import sys

    with zipfile.ZipFile(plugin_zip) as zf:
        zf.extractall(tmp_path / "plugins")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "plugins"))
    for args, words in ((["--help"], ["mosaic", "train"]),
                        (["mosaic", "--help"], ["--scheduler", "--workers", "--scale"])):
        res = subprocess.run([sys.executable, "-m", "demsr", *args], capture_output=True,
                             text=True, env=env, cwd=tmp_path, timeout=120)
        assert res.returncode == 0, res.stderr
        assert all(w in res.stdout for w in words), res.stdout


def _meta():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(PACKAGE / "metadata.txt", encoding="utf-8")
    return cfg["general"]


def test_icon_reads_at_16_px(qgis_app):
    """The toolbar/menu icon at 16 px: strong light/dark contrast, not a grey blob."""
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtGui import QColor, QImage

    img = QImage(str(PACKAGE / "resources" / "icon.png")).scaled(
        16, 16, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    light = [QColor(img.pixel(x, y)).lightness() for x in range(16) for y in range(16)
             if QColor.fromRgba(img.pixel(x, y)).alpha() > 200]
    saturation = [QColor(img.pixel(x, y)).hsvSaturation() for x in range(16) for y in range(16)]
    assert max(light) - min(light) > 120 and max(saturation) > 150
