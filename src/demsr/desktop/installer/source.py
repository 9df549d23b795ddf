"""Where PyTorch comes from, decided before pip downloads anything.

On Linux the package index's torch is the CUDA build (several GB of NVIDIA libraries); the CPU
build lives on PyTorch's own index. When that index cannot be reached, pip would retry it for
minutes and then silently take the CUDA build: instead, ask it once, say so at once, and
offer what pip's configured sources do have, with the real size of those wheels.
Plain Python (no QGIS), so it is tested for real."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .interpreter import child_env

PROBE_TIMEOUT_S = 6.0


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    url: str
    size: int = -1  # bytes; -1 when the server did not say


@dataclass(frozen=True)
class Choice:
    ok: bool        # go ahead with pip
    index: str      # the extra index pip gets ("" for pip's configured sources only)
    message: str    # what was decided and why, with sizes


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> str:
    """'' when the index answers, else why not: one request, no retries."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/", timeout=timeout) as resp:
            resp.read(1)
        return ""
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def url_size(url: str, timeout: float = 20.0) -> int:
    """Size of the file at url, from the file itself or the server's Content-Length."""
    if url.startswith("file://"):
        path = urllib.request.url2pathname(url[len("file://"):])
        return os.path.getsize(path) if os.path.isfile(path) else -1
    try:
        req = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.headers.get("Content-Length", -1))
    except (OSError, ValueError):
        return -1


def parse_report(report: dict, size=url_size) -> list:
    """Wheels of a `pip install --dry-run --report` answer, each with its real size."""
    items = [(i["metadata"]["name"], i["metadata"]["version"], i["download_info"]["url"])
             for i in report.get("install", [])]
    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(size, [url for _, _, url in items]))
    return [Wheel(n, v, u, s) for (n, v, u), s in zip(items, sizes)]


def resolve(python: str, packages: list, constraints: str, index: str = "") -> tuple:
    """(wheels, error): what pip would download for packages from its configured sources
    (plus index), without downloading them (pip reads the wheels' metadata only)."""
    with tempfile.TemporaryDirectory(prefix="demsr-resolve-") as tmp:
        report = os.path.join(tmp, "report.json")
        cmd = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--target", os.path.join(tmp, "t"), "--report", report, "-c", constraints,
               "--retries", "1", "--timeout", "20",  # a question, not an install: no long waits
               *(["--extra-index-url", index] if index else []), *packages]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, env=child_env(),
                                 timeout=600,
                                 creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        except (OSError, subprocess.SubprocessError) as exc:
            return [], str(exc)
        if res.returncode != 0 or not os.path.isfile(report):
            errors = [ln for ln in res.stderr.splitlines() if ln.startswith("ERROR")]
            return [], (errors or res.stderr.strip().splitlines() or ["pip failed"])[-1]
        with open(report, encoding="utf-8") as fh:
            return parse_report(json.load(fh)), ""


def is_cuda(wheels: list) -> bool:
    return any(w.name.lower().startswith("nvidia-") or "+cu" in w.version for w in wheels)


def human(size: int) -> str:
    if size >= 1e9:
        return f"{size / 1e9:.1f} GB"
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def describe(wheels: list) -> str:
    """'torch 2.10.0 (CUDA build) and 25 more packages, 16 of them NVIDIA libraries: 3.9 GB
    to download' — from the wheels' real sizes."""
    if not wheels:
        return "nothing to download"
    main, rest = wheels[0], wheels[1:]
    nvidia = sum(w.name.lower().startswith("nvidia-") for w in rest)
    known = [w.size for w in wheels if w.size >= 0]
    text = f"{main.name} {main.version} ({'CUDA' if is_cuda(wheels) else 'CPU'} build)"
    if rest:
        text += f" and {len(rest)} more packages" + (f", {nvidia} of them NVIDIA libraries"
                                                     if nvidia else "")
    text += f": {human(sum(known))} to download"
    if len(known) < len(wheels):
        text += f" (size unknown for {len(wheels) - len(known)} of them)"
    return text


def choose(python: str, packages: list, build: str, index: str, constraints: str,
           probe=probe, resolve=resolve, log=lambda line: None) -> Choice:
    """Use PyTorch's index for the build when it answers; otherwise say so (at once, through
    log) and take pip's configured sources only if they hold a CPU build where a CPU build was
    asked for."""
    if not index:  # the package index's default build, asked for explicitly
        wheels, error = resolve(python, packages, constraints, "")
        if error:
            return Choice(False, "", f"pip's configured sources cannot provide it: {error}")
        return Choice(True, "", "Installing the package index's default build: "
                      + describe(wheels) + ".")
    why = probe(index)
    if not why:
        return Choice(True, index, f"PyTorch's index {index} answers: using it.")
    head = f"PyTorch's index {index} cannot be reached ({why})."
    log(head + " Asking pip's configured sources what they have instead…")
    wheels, error = resolve(python, packages, constraints, "")
    if error:
        return Choice(False, "", f"{head} pip's configured sources cannot provide "
                      f"{' '.join(packages)} either: {error}. Download the wheels on another "
                      "machine (pip download torch --only-binary=:all: --index-url "
                      f"{index}) and install from that folder.")
    if build == "cpu" and not is_cuda(wheels):
        return Choice(True, "", f"{head} pip's configured sources have a CPU build: "
                      + describe(wheels) + ".")
    return Choice(False, "", f"{head} Nothing was installed. What pip's configured sources "
                  f"offer instead is {describe(wheels)}. To install that anyway, choose the "
                  "package index's default build (make deps TORCH_BUILD=default); or download "
                  f"the {build} wheels on another machine (pip download torch "
                  f"--only-binary=:all: --index-url {index}) and install from that folder.")
