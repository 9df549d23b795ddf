"""One dependency installation: pip into the plugin's folder, then an import check.

Plain Python (no QGIS) so it can be tested for real; task.py runs it as a QgsTask."""
from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field, replace

from .constraints import remove_shadowing, running_versions, write_constraints
from .cuda import INDEX
from .interpreter import child_env
from .source import choose


@dataclass
class InstallPlan:
    python: str                    # QGIS's interpreter (interpreter.find_python)
    target: str                    # the plugin's dependency folder (demsr.dependency_dir())
    packages: list                 # e.g. ["torch==2.13.0"]
    verify_module: str = "torch"   # imported in a fresh interpreter before declaring success
    # torch only: "cpu", a CUDA build name ("cu126"), or "default" (the package index's own
    # build: the CUDA one on Linux, several GB)
    build: str = "cpu"
    wheels_dir: str = ""           # offline: only wheels from this folder, no index
    kept: dict = field(default_factory=running_versions)  # QGIS's numpy etc. (constraints)
    index: str | None = None       # an extra index; None: PyTorch's for the build (torch)

    def wants_torch(self) -> bool:
        return any(re.split(r"[=<>!~ \[;]", p, maxsplit=1)[0].strip() == "torch"
                   for p in self.packages)

    def extra_index(self) -> str:
        """The user's own index/proxy (pip.conf, PIP_* variables) stays; the PyTorch index
        adds the build asked for (a +cpu or +cuXXX local version wins over PyPI's)."""
        if self.wheels_dir:
            return ""
        if self.index is not None:
            return self.index
        if self.wants_torch() and sys.platform != "darwin" and self.build != "default":
            return INDEX.format(build=self.build)
        return ""

    def pip_args(self, constraints: str) -> list:
        args = ["install", "--target", self.target, "--upgrade", "--prefer-binary",
                "--no-warn-script-location", "--progress-bar", "off", "-c", constraints]
        if self.wheels_dir:
            args += ["--no-index", "--find-links", self.wheels_dir]
        elif self.extra_index():
            args += ["--extra-index-url", self.extra_index()]
        return args + list(self.packages)


@dataclass
class InstallResult:
    ok: bool
    message: str
    version: str = ""
    restart_needed: bool = False
    log: list = field(default_factory=list)


def _stream(cmd, env, log, cancelled, timeout_s=3600) -> tuple:
    """Runs cmd, passing each output line to log; kills it when cancelled() turns true."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, bufsize=1,
                            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    lines: queue.Queue = queue.Queue()

    def read():
        with proc.stdout:  # closed at pip's end (no ResourceWarning for an open pipe)
            for line in proc.stdout:
                lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    out = []
    while True:
        if cancelled():
            proc.kill()
            proc.wait()
            reader.join(timeout=10)
            return None, out
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        out.append(line)
        log(line)
    return proc.wait(timeout=timeout_s), out


def has_pip(python: str) -> bool:
    try:
        res = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True,
                             env=child_env(), timeout=60,
                             creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except (OSError, subprocess.SubprocessError):
        return False
    return res.returncode == 0


def explain_pip_failure(output: list, plan: InstallPlan) -> str:
    """A message that says what to do, from pip's output."""
    text = "\n".join(output)
    numpy = plan.kept.get("numpy", "")
    if re.search(r"conflicting dependencies|ResolutionImpossible", text):
        if "numpy" in text.lower():
            return (f"A package needs a NumPy version that QGIS does not have (QGIS runs NumPy "
                    f"{numpy}, which must stay: QGIS's GDAL bindings are built for it). Install "
                    "an older release of that package (e.g. torch==2.13.0), or upgrade QGIS.")
        return ("pip found no combination of versions that keeps QGIS's own packages; the log "
                "names the packages in conflict. Pick versions compatible with them.")
    if re.search(r"NewConnectionError|Failed to establish|Max retries exceeded|Name or service "
                 r"not known|Temporary failure in name resolution|getaddrinfo|timed out|"
                 r"ProxyError|SSLError|CERTIFICATE_VERIFY_FAILED", text):
        return ("The package index cannot be reached (network, proxy or SSL inspection). Check "
                "the connection, or set the proxy/index in your pip configuration (pip.conf / "
                "pip.ini, or PIP_PROXY, PIP_INDEX_URL), or download the wheels on another "
                "machine (pip download torch --only-binary=:all:) and choose that folder here.")
    if re.search(r"No matching distribution|Could not find a version", text):
        where = f"the folder {plan.wheels_dir}" if plan.wheels_dir else "the package index"
        if not plan.wheels_dir and "(from versions: none)" in text:
            return (f"Nothing found in {where}: it may be unreachable (network, proxy: set them "
                    "in your pip configuration) or have no wheel for this Python "
                    f"({sys.version_info[0]}.{sys.version_info[1]}, {sys.platform}). Offline, "
                    "choose a folder of wheels (pip download torch --only-binary=:all:).")
        return (f"No suitable wheel in {where} for this Python "
                f"({sys.version_info[0]}.{sys.version_info[1]}, {sys.platform}). Check the "
                "folder/index, or choose the CPU build.")
    if re.search(r"No space left|Errno 28", text):
        return "The disk is full: free some space (PyTorch needs about 1 GB, CUDA builds 5 GB)."
    if re.search(r"Permission denied|Errno 13|WinError 5", text):
        return (f"No permission to write {plan.target}: close other QGIS windows that use "
                "PyTorch, or check the folder's permissions.")
    return "pip failed; the last lines of the log say why."


def verify(python: str, target: str, module: str) -> tuple:
    """(ok, version or error): imports the module from the target folder in a fresh process,
    so a broken install (missing DLL, wrong build) is caught before QGIS imports it."""
    code = (f"import sys; sys.path.insert(0, {target!r}); import {module} as m; "
            "print(getattr(m, '__version__', 'ok'))")
    if module == "torch":
        code += "; import torch; torch.zeros(2).sum()"
    try:
        res = subprocess.run([python, "-c", code], capture_output=True, text=True,
                             env=child_env(), timeout=300,
                             creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except (OSError, subprocess.SubprocessError) as exc:
        return False, str(exc)
    if res.returncode != 0:
        err = (res.stderr.strip().splitlines() or ["unknown error"])[-1]
        if "WinError 1114" in res.stderr or "WinError 127" in res.stderr or "DLL" in err:
            err += (" — on Windows this usually means the Microsoft Visual C++ "
                    "Redistributable (x64) is missing: install it from Microsoft and retry")
        return False, err
    return True, res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "ok"


def run_plan(plan: InstallPlan, log=print, cancelled=lambda: False) -> InstallResult:
    lines: list = []

    def say(line):
        lines.append(line)
        log(line)

    if not plan.python:
        return InstallResult(False, "QGIS's Python interpreter was not found; see the status "
                             "dialog for the paths tried.", log=lines)
    if not has_pip(plan.python):
        return InstallResult(False, (
            f"pip is not available for {plan.python}. On Debian/Ubuntu install the package "
            "python3-pip (sudo apt install python3-pip); in the Flatpak build run "
            "`flatpak run --command=python3 org.qgis.qgis -m ensurepip --user`; on Windows and "
            "macOS reinstall QGIS (its installer ships pip)."), log=lines)
    os.makedirs(plan.target, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="demsr-pip-") as tmp:
        constraints = write_constraints(os.path.join(tmp, "constraints.txt"), plan.kept)
        if not plan.wheels_dir and (plan.extra_index() or
                                    (plan.build == "default" and plan.wants_torch())):
            choice = choose(plan.python, plan.packages, plan.build, plan.extra_index(),
                            constraints, log=say)
            say(choice.message)
            if not choice.ok:
                return InstallResult(False, choice.message, log=lines)
            plan = replace(plan, index=choice.index)
        cmd = [plan.python, "-m", "pip", *plan.pip_args(constraints)]
        say("$ " + " ".join(cmd))
        rc, out = _stream(cmd, child_env(), say, cancelled)
    if rc is None:
        return InstallResult(False, "Cancelled; nothing was verified. Run the installer again "
                             "to finish (pip resumes from what is already there).", log=lines)
    if rc != 0:
        return InstallResult(False, explain_pip_failure(out, plan), log=lines)
    removed = remove_shadowing(plan.target, plan.kept)
    if removed:
        say("Removed copies of QGIS's own packages: " + ", ".join(removed))
    ok, detail = verify(plan.python, plan.target, plan.verify_module)
    if not ok:
        return InstallResult(False, f"Installed, but '{plan.verify_module}' does not import: "
                             f"{detail}", log=lines)
    restart = plan.verify_module in sys.modules
    return InstallResult(True, f"{plan.verify_module} {detail} installed in {plan.target}" +
                         (" — restart QGIS to use the new version (the old one is loaded)."
                          if restart else "; ready to use, no restart needed."),
                         version=detail, restart_needed=restart, log=lines)


def activate(target: str) -> None:
    """Makes a fresh install importable in the running QGIS (no restart) when it was not
    imported before: the folder goes first on sys.path and import caches are refreshed."""
    import importlib

    if target not in sys.path:
        sys.path.insert(0, target)
    importlib.invalidate_caches()
