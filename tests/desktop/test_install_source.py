"""Where torch comes from: PyTorch's index when it answers, otherwise a prompt, plain answer
with the real size of what pip's configured sources offer, and never a silent CUDA build.
Recorded answers (pip reports and a probe from this project's machine, where PyTorch's CPU
index cannot be reached) and a real local index served over HTTP."""
import functools
import http.server
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from demsr.desktop.installer import constraints, source
from demsr.desktop.installer.pipinstall import InstallPlan, run_plan

PY = "/usr/bin/python3"  # the Python QGIS runs here
CPU = "https://download.pytorch.org/whl/cpu"
RECORDED = json.loads((Path(__file__).parent / "data" / "torch_sources_recorded.json")
                      .read_text())


def wheels(key):
    return [source.Wheel(*item) for item in RECORDED[key]]


CUDA_WHEELS = wheels("default_index_torch_2_10_0_cp313_linux")
CPU_WHEELS = wheels("configured_sources_torch_2_13_0_cp311_linux")


def unreachable(url):
    return RECORDED["probe_unreachable"]


def test_recorded_answers_are_classified_with_their_real_sizes():
    assert source.is_cuda(CUDA_WHEELS) and not source.is_cuda(CPU_WHEELS)
    total = sum(w.size for w in CUDA_WHEELS)
    assert all(w.size > 0 for w in CUDA_WHEELS + CPU_WHEELS)  # every size came back
    text = source.describe(CUDA_WHEELS)
    nvidia = sum(w.name.startswith("nvidia-") for w in CUDA_WHEELS)
    assert f"torch {CUDA_WHEELS[0].version} (CUDA build)" in text
    assert f"{nvidia} of them NVIDIA libraries" in text and source.human(total) in text
    assert total > 1e9 and text.endswith("GB to download")
    assert source.human(sum(w.size for w in CPU_WHEELS)) in source.describe(CPU_WHEELS)


def test_unreachable_cpu_index_never_takes_the_cuda_build():
    said = []
    choice = source.choose(PY, ["torch==2.10.0"], "cpu", CPU, "c.txt", probe=unreachable,
                           resolve=lambda *a: (CUDA_WHEELS, ""), log=said.append)
    assert not choice.ok
    assert said and "cannot be reached" in said[0] and RECORDED["probe_unreachable"] in said[0]
    assert source.describe(CUDA_WHEELS) in choice.message
    assert "TORCH_BUILD=default" in choice.message and "--index-url " + CPU in choice.message


def test_unreachable_cpu_index_takes_a_cpu_build_the_configured_sources_have():
    choice = source.choose(PY, ["torch==2.13.0"], "cpu", CPU, "c.txt", probe=unreachable,
                           resolve=lambda *a: (CPU_WHEELS, ""))
    assert choice.ok and choice.index == ""
    assert "cannot be reached" in choice.message
    assert source.describe(CPU_WHEELS) in choice.message


def test_unreachable_cuda_index_is_not_replaced_by_another_cuda_build():
    choice = source.choose(PY, ["torch==2.10.0"], "cu126", CPU.replace("cpu", "cu126"), "c",
                           probe=unreachable, resolve=lambda *a: (CUDA_WHEELS, ""))
    assert not choice.ok and "cu126 wheels" in choice.message


def test_nothing_resolvable_says_why():
    err = "ERROR: No matching distribution found for nvidia-nccl-cu13==2.29.7"
    choice = source.choose(PY, ["torch==2.13.0"], "cpu", CPU, "c", probe=unreachable,
                           resolve=lambda *a: ([], err))
    assert not choice.ok and err in choice.message and "that folder" in choice.message


def test_reachable_index_is_used_without_resolving():
    def no_resolve(*a):
        raise AssertionError("resolved although the index answers")
    choice = source.choose(PY, ["torch==2.13.0"], "cpu", CPU, "c", probe=lambda url: "",
                           resolve=no_resolve)
    assert choice.ok and choice.index == CPU


def test_default_build_is_taken_only_when_asked_and_says_its_size():
    plan = InstallPlan(PY, "/t", ["torch==2.10.0"], build="default", kept={})
    assert plan.extra_index() == "" and "--extra-index-url" not in plan.pip_args("c")
    choice = source.choose(PY, plan.packages, "default", "", "c", probe=unreachable,
                           resolve=lambda *a: (CUDA_WHEELS, ""))
    assert choice.ok and source.describe(CUDA_WHEELS) in choice.message


@pytest.fixture(scope="module")
def local_index(tmp_path_factory):
    """A PEP 503 index over HTTP on 127.0.0.1 holding one real wheel (six)."""
    root = tmp_path_factory.mktemp("index")
    (root / "simple" / "six").mkdir(parents=True)
    subprocess.run([PY, "-m", "pip", "download", "six", "--no-deps", "--only-binary=:all:",
                    "-q", "-d", str(root / "simple" / "six")], check=True,
                   capture_output=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    wheel = next((root / "simple" / "six").glob("*.whl"))
    yield f"http://127.0.0.1:{server.server_port}/simple", wheel
    server.shutdown()


@pytest.fixture
def only_local(monkeypatch):
    """pip sees no configured index, mirror or wheel folder."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_RETRIES", "0")


def test_local_index_that_answers_is_used(local_index, only_local, tmp_path):
    url, wheel = local_index
    assert source.probe(url) == ""
    assert source.url_size(f"{url}/six/{wheel.name}") == wheel.stat().st_size
    lines = []
    res = run_plan(InstallPlan(PY, str(tmp_path / "d"), ["six"], verify_module="six",
                               kept=constraints.running_versions(), index=url),
                   log=lines.append)
    assert res.ok, (res.message, lines[-10:])
    assert any(f"index {url} answers" in ln for ln in lines)
    assert (tmp_path / "d" / "six.py").is_file()


def test_unreachable_index_says_so_at_once_and_offers_the_real_size(local_index, only_local,
                                                                     monkeypatch, tmp_path):
    """PyTorch-like index down, the configured source (the local index) up: one quick probe,
    no retry loop, then the configured source's CPU package with its real size."""
    url, wheel = local_index
    monkeypatch.setenv("PIP_INDEX_URL", url)
    lines, t0 = [], time.monotonic()
    res = run_plan(InstallPlan(PY, str(tmp_path / "d"), ["six"], verify_module="six",
                               kept=constraints.running_versions(),
                               index="http://127.0.0.1:9/whl/cpu"), log=lines.append)
    assert res.ok, (res.message, lines[-10:])
    said = next(i for i, ln in enumerate(lines) if "cannot be reached" in ln)
    assert said <= 1  # before pip ran at all
    assert any(source.human(wheel.stat().st_size) + " to download" in ln for ln in lines)
    assert time.monotonic() - t0 < 60
    assert not any("Retrying" in ln for ln in lines)
