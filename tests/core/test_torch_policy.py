"""One PyTorch policy (core/torch_policy.py): the pin `make deps` installs, the minimum every
run checks (import_torch: qgis_process included), the messages that name them."""
from pathlib import Path

import pytest

from demsr.core.devices import import_torch
from demsr.core.errors import TorchMissing, TorchTooOld
from demsr.core.torch_policy import (MIN_TORCH, TORCH_PIN, torch_requirement, torch_state,
                                     too_old)

ROOT = Path(__file__).resolve().parents[2]


def test_make_deps_installs_the_pinned_torch():
    import install_deps

    assert torch_requirement() == f"torch=={TORCH_PIN}"
    assert torch_requirement() in install_deps.requirements()
    lines = (ROOT / "scripts" / "requirements-plugin.txt").read_text().splitlines()
    assert [ln for ln in lines if ln.startswith("torch")] == [torch_requirement()]


def test_a_file_pinning_another_torch_stops_make_deps(tmp_path):
    import install_deps

    other = tmp_path / "requirements-plugin.txt"
    other.write_text("torch==1.13.1\nonnxruntime==1.32.0\n")
    with pytest.raises(SystemExit, match="make them agree"):
        install_deps.requirements(other)


def test_too_old_versions_are_refused_with_the_pin():
    assert too_old("1.13.1") and not too_old(TORCH_PIN) and not too_old("2.0.0+cpu")
    text = str(TorchTooOld("1.13.1"))
    assert "1.13.1 is too old" in text and ".".join(map(str, MIN_TORCH)) in text
    assert torch_requirement() in text and torch_requirement() in str(TorchMissing())


def test_the_installed_torch_passes_the_check_a_run_makes():
    state = torch_state()
    assert state.installed and state.usable, state.problem()
    assert not too_old(import_torch().__version__)

