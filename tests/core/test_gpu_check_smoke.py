"""scripts/gpu_check.py (`make gpu-check`) cannot rot: its --cpu-smoke mode runs every check
(super-resolve GPU vs CPU, void repair, training steps of each architecture, out-of-memory
halving) on the CPU with tiny sizes; without CUDA the real check fails loudly."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import demsr  # noqa: F401 - puts the private torch folder on sys.path

import torch  # noqa: E402

from demsr.core.nets import registry  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"


def test_cpu_smoke_runs_every_check(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["failed"] == [] and res["smoke"] is True
    sr = res["superresolve"]
    assert sr["gpu"]["mpx_s"] > 0 and sr["cpu"]["output_mpx"] == sr["gpu"]["output_mpx"]
    assert sr["max_abs_diff_m"] <= 1e-3 and sr["same_nodata"]
    assert res["voidrepair"]["void_pixels"] > 0
    assert sorted(res["training"]) == sorted(registry.names())
    oom = res["out_of_memory"]
    assert oom["simulated"] and oom["batch_after_halving"] < oom["batch_asked"]
    assert oom["max_abs_diff_m"] <= 1e-3


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_without_cuda_the_real_check_fails_loudly(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "no CUDA device" in proc.stderr
