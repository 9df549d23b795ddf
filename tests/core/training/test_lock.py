"""core.training.lock: one training per OUTPUT_MODEL, stale locks taken over."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from demsr.core.errors import DemSrError
from demsr.core.training.lock import lock_path, model_lock

import _system_helpers


def test_second_run_on_the_same_model_is_refused(tmp_path):
    model = tmp_path / "m.pt"
    with _system_helpers.lock_held_elsewhere(model) as holder:
        with pytest.raises(DemSrError, match=f"Another training \\(process {holder.pid}\\)"):
            with model_lock(str(model)):
                pass
    # the holder was killed: its lock is stale and the next run takes it, saying so
    notes = []
    with model_lock(str(model), notes.append) as path:
        assert Path(path).read_text().strip() == str(os.getpid())
    assert any("interrupted training" in n for n in notes)
    assert not Path(lock_path(str(model))).exists()


def test_lock_is_released_on_error_and_dead_temporaries_go(tmp_path):
    model = tmp_path / "m.pt"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    # partial files (core/atomic.py's names) of the model, its resume file and ONNX copy
    dead_ones = [tmp_path / f".{name}.{dead.pid}-0123abcd.partial"
                 for name in ("m.pt", "m.pt.resume", "m.onnx")]
    live = tmp_path / f".m.pt.{os.getpid()}-0123abcd.partial"  # a save still going
    for tmp in (*dead_ones, live):
        tmp.write_bytes(b"x")
    with pytest.raises(RuntimeError):
        with model_lock(str(model)):
            raise RuntimeError("boom")
    assert not Path(lock_path(str(model))).exists()
    assert not any(tmp.exists() for tmp in dead_ones) and live.exists()
    with model_lock(str(model)):
        with pytest.raises(DemSrError, match="Another training"):
            with model_lock(str(tmp_path / "." / "m.pt")):
                pass
