"""Finding QGIS's Python on each distribution, from recorded layouts (paths as the
installers lay them out), and for real on this machine."""

import sys

import pytest

from demsr.desktop.installer.interpreter import Platform, candidates, find_python

# (layout, platform as QGIS reports it, files that exist, interpreter expected)
LAYOUTS = [
    ("OSGeo4W", Platform("win32", r"C:\OSGeo4W\bin\qgis-bin.exe", r"C:\OSGeo4W\apps\Python39",
                         (3, 9)),
     {r"C:\OSGeo4W\apps\Python39\python.exe", r"C:\OSGeo4W\bin\python.exe",
      r"C:\OSGeo4W\bin\qgis-bin.exe"}, r"C:\OSGeo4W\apps\Python39\python.exe"),
    ("Windows standalone installer, prefix not the Python home",
     Platform("win32", r"C:\Program Files\QGIS 3.22.16\bin\qgis-ltr-bin.exe",
              r"C:\Program Files\QGIS 3.22.16\bin", (3, 9)),
     {r"C:\Program Files\QGIS 3.22.16\apps\Python39\python.exe"},
     r"C:\Program Files\QGIS 3.22.16\apps\Python39\python.exe"),
    ("macOS app bundle", Platform("darwin", "/Applications/QGIS-LTR.app/Contents/MacOS/QGIS",
                                  "/Applications/QGIS-LTR.app/Contents/MacOS", (3, 9)),
     {"/Applications/QGIS-LTR.app/Contents/MacOS/bin/python3.9",
      "/Applications/QGIS-LTR.app/Contents/MacOS/QGIS"},
     "/Applications/QGIS-LTR.app/Contents/MacOS/bin/python3.9"),
    ("macOS, Python framework prefix",
     Platform("darwin", "/Applications/QGIS.app/Contents/MacOS/QGIS",
              "/Applications/QGIS.app/Contents/Frameworks/Python.framework/Versions/3.10",
              (3, 10)),
     {"/Applications/QGIS.app/Contents/Frameworks/Python.framework/Versions/3.10/bin/python3"},
     "/Applications/QGIS.app/Contents/Frameworks/Python.framework/Versions/3.10/bin/python3"),
    ("Flatpak", Platform("linux", "/app/bin/qgis", "/usr", (3, 12), flatpak=True),
     {"/usr/bin/python3.12", "/usr/bin/python3"}, "/usr/bin/python3.12"),
    ("Debian/Ubuntu packages", Platform("linux", "/usr/bin/qgis", "/usr", (3, 11)),
     {"/usr/bin/python3.11", "/usr/bin/python3", "/usr/bin/qgis"}, "/usr/bin/python3.11"),
    ("conda", Platform("linux", "/home/u/miniconda3/envs/q/bin/qgis",
                       "/home/u/miniconda3/envs/q", (3, 11)),
     {"/home/u/miniconda3/envs/q/bin/python3.11", "/usr/bin/python3.11"},
     "/home/u/miniconda3/envs/q/bin/python3.11"),
]


@pytest.mark.parametrize("name,platform,files,expected", LAYOUTS, ids=[x[0] for x in LAYOUTS])
def test_layout(name, platform, files, expected):
    seen = []
    path, tried = find_python(platform, exists=files.__contains__,
                              check=lambda p, v: seen.append(p) or True)
    assert path == expected
    # Never the QGIS binary itself: running it would open a second QGIS.
    assert all("qgis" not in c.lower().rsplit("\\", 1)[-1].rsplit("/", 1)[-1]
               for c in candidates(platform))


def test_a_python_of_another_version_is_skipped():
    """OSGeo4W with two Pythons: the one that reports QGIS's version wins."""
    p = Platform("win32", r"C:\OSGeo4W\bin\qgis-bin.exe", r"C:\OSGeo4W\bin", (3, 12))
    files = {r"C:\OSGeo4W\apps\Python39\python.exe", r"C:\OSGeo4W\apps\Python312\python.exe"}
    path, _ = find_python(p, exists=files.__contains__,
                          check=lambda c, plat: "Python312" in c)
    assert path == r"C:\OSGeo4W\apps\Python312\python.exe"


def test_nothing_found_lists_what_was_tried():
    p = Platform("win32", r"D:\q\bin\qgis-bin.exe", r"D:\q\bin", (3, 9))
    path, tried = find_python(p, exists=lambda c: c.endswith("python.exe"),
                              check=lambda c, v: False)
    assert path is None and len(tried) >= 2


# This machine's QGIS Python (the test venv is made from it): 3.11 on Debian 12, 3.13 on 13.
HERE = sys.version_info[:2]
HERE_PATHS = (f"/usr/bin/python{HERE[0]}.{HERE[1]}", "/usr/bin/python3")


def test_this_machine_runs_the_real_check():
    """Debian: QGIS's Python is /usr/bin/python3.X; the version check really runs it."""
    p = Platform("linux", "/usr/bin/qgis", "/usr", HERE)
    path, _ = find_python(p)
    assert path in HERE_PATHS
    wrong = Platform("linux", "/usr/bin/qgis", "/usr", (3, 7))
    assert find_python(wrong)[0] is None


def test_a_python_of_another_prefix_is_not_qgis_python():
    """Inside QGIS on this machine sys.executable is a pyenv shim (first python3 on PATH):
    same version, other prefix, cannot import qgis — it must be rejected."""
    import shutil
    shim = shutil.which("python3")
    p = Platform("linux", shim or "/usr/bin/python3", "/usr", HERE)
    path, _ = find_python(p)
    assert path in HERE_PATHS
    other = Platform("linux", "/usr/bin/qgis", "/opt/elsewhere", HERE)
    from demsr.desktop.installer.interpreter import reports_version
    assert not reports_version("/usr/bin/python3", other)
