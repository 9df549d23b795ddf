"""The Python interpreter that QGIS runs, for `python -m pip`.

Inside QGIS `sys.executable` is often not a Python: on Windows it is qgis-bin.exe and on
macOS the QGIS app binary; running it opens a second QGIS. The candidates below follow the
layouts of the QGIS distributions (recorded in tests/desktop/test_interpreter.py); every
candidate must report the running Python's version before it is used."""
from __future__ import annotations

import glob
import ntpath
import os
import posixpath
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    """What decides the layout; `Platform.current()` in QGIS, recorded values in tests."""
    system: str            # sys.platform: win32, darwin, linux
    executable: str        # sys.executable
    prefix: str            # sys.prefix
    version: tuple         # sys.version_info[:2]
    flatpak: bool = False  # FLATPAK_ID set, /.flatpak-info present

    @classmethod
    def current(cls) -> "Platform":
        return cls(sys.platform, sys.executable or "", sys.prefix, tuple(sys.version_info[:2]),
                   bool(os.environ.get("FLATPAK_ID")) or os.path.exists("/.flatpak-info"))


def _is_python(exe: str) -> bool:
    return ntpath.basename(exe).lower().startswith("python")


def candidates(p: Platform, glob_fn=glob.glob) -> list:
    """Interpreter paths to try, most likely first (existence is checked by the caller)."""
    major, minor = p.version[:2]
    path = ntpath if p.system == "win32" else posixpath  # recorded layouts of other systems
    out = []
    if p.system == "win32":
        # OSGeo4W and the standalone installer: <root>/bin/qgis-bin.exe, Python in
        # <root>/apps/Python3XX/python.exe, which is also sys.prefix (QPIP uses that).
        out.append(path.join(p.prefix, "python.exe"))
        if _is_python(p.executable):
            out.append(p.executable)
        root = path.dirname(path.dirname(p.executable))
        out.append(path.join(root, "apps", f"Python{major}{minor}", "python.exe"))
        out += sorted(glob_fn(path.join(root, "apps", "Python3*", "python.exe")), reverse=True)
        out.append(path.join(root, "bin", "python.exe"))  # OSGeo4W shell wrapper
    elif p.system == "darwin":
        # QGIS.app/Contents/MacOS/QGIS; the app bundles its Python next to it.
        macos = path.dirname(p.executable)
        out += [path.join(macos, "bin", f"python{major}.{minor}"),
                path.join(macos, "bin", "python3"), path.join(macos, "python3"),
                path.join(macos, "python")]
        out += [path.join(p.prefix, "bin", f"python{major}.{minor}"),
                path.join(p.prefix, "bin", "python3")]
        if _is_python(p.executable):
            out.insert(0, p.executable)
    else:
        # Linux packages (Debian/Ubuntu /usr/bin/qgis), Flatpak (/app/bin/qgis, Python of the
        # runtime in /usr/bin), conda (<env>/bin/qgis): a python beside the prefix.
        out += [path.join(p.prefix, "bin", f"python{major}.{minor}"),
                path.join(p.prefix, "bin", "python3")]
        if _is_python(p.executable):
            out.append(p.executable)
        if p.flatpak:
            out += ["/app/bin/python3", f"/usr/bin/python{major}.{minor}", "/usr/bin/python3"]
        out += [f"/usr/bin/python{major}.{minor}", "/usr/bin/python3"]
    seen, unique = set(), []
    for item in out:
        norm = path.normcase(path.normpath(item))
        if norm not in seen:
            seen.add(norm)
            unique.append(item)
    return unique


def reports_version(path: str, p: Platform, timeout: float = 30) -> bool:
    """Runs the candidate: it must be a Python of the same major.minor as QGIS's and, on
    Linux, with the same sys.prefix (a pyenv/conda `python3` first on PATH is another
    Python, which cannot import qgis; inside QGIS sys.executable may even point to it)."""
    code = "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.prefix)"
    try:
        res = subprocess.run([path, "-c", code],
                             capture_output=True, text=True, timeout=timeout,
                             creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
                             env=child_env())
    except (OSError, subprocess.SubprocessError):
        return False
    lines = res.stdout.split("\n")
    if res.returncode != 0 or lines[0].strip() != "%d.%d" % tuple(p.version[:2]):
        return False
    if p.system.startswith("linux") and len(lines) > 1:
        return os.path.realpath(lines[1].strip()) == os.path.realpath(p.prefix)
    return True


def find_python(p: Platform | None = None, exists=os.path.isfile, check=reports_version):
    """(path, tried): the first candidate that exists and runs as the same Python."""
    p = p or Platform.current()
    tried = []
    for path in candidates(p):
        if exists(path):
            tried.append(path)
            if check(path, p):
                return path, tried
    return None, tried


def child_env(extra: dict | None = None) -> dict:
    """Environment for pip and checks: QGIS's own, without the user site (which could shadow
    what gets installed) and without QGIS's PYTHONPATH hooks into its GUI process."""
    env = dict(os.environ)
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PYTHONSTARTUP", None)
    env.update(extra or {})
    return env
