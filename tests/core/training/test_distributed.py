"""Distributed training (torchrun + DDP, gloo on CPUs): two processes train as one process
would on the same seed, each on a disjoint share of every batch, and only one writes."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import demsr  # noqa: F401 - puts the private torch folder on sys.path

import torch  # noqa: E402 - `make test` installs it; a missing torch must fail, not skip

from demsr import dependency_dir  # noqa: E402
from demsr.core.errors import DemSrError  # noqa: E402
from demsr.core.monitor import Monitor  # noqa: E402
from demsr.core.nets import checkpoint  # noqa: E402
from demsr.core.training.config import DSHATTrainConfig, SRTrainConfig  # noqa: E402
from demsr.core.training.config_file import (config_from_dict, config_to_dict,  # noqa: E402
                                           load_config, save_config)
from demsr.core.training.sr_task import SRTask  # noqa: E402
from demsr.core.training.state import resume_path  # noqa: E402
from demsr.core.training.train import run_training  # noqa: E402

from _model_helpers import dem_crop, tiny_sr_config  # noqa: E402


@pytest.fixture(scope="module")
def hr_dem(dems_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("ddp") / "hr.tif"
    dem_crop(dems_dir / "flopy_sagehen_10m.tif", path, 200, 200, 240)
    return str(path)


def _cfg(hr_dem, out, **kw):
    return tiny_sr_config(hr_dem, out, **{"steps_per_epoch": 8, **kw})


def torchrun(nproc: int, *args) -> subprocess.CompletedProcess:
    """`python -m demsr train` under torchrun (python -m torch.distributed.run), which
    imports torch itself: the dependency folder on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=dependency_dir(), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={nproc}", "-m", "demsr", "train", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_config_json_round_trip(tmp_path):
    sr = SRTrainConfig(inputs=["a.tif"], output_model="m.pt", architecture="gisr",
                       coarser_copies=(2, 3), hparams={"channels": 8})
    ds = DSHATTrainConfig(inputs=["a.tif"], output_model="d.pt", factors=[1, 4],
                          references=["r.tif"])
    for cfg in (sr, ds):
        save_config(cfg, str(tmp_path / "c.json"))
        assert load_config(str(tmp_path / "c.json")) == cfg
    assert config_to_dict(ds)["architecture"] == "dshat"
    with pytest.raises(DemSrError, match="Unknown training setting.*colour"):
        config_from_dict(dict(config_to_dict(sr), colour="red"))
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(DemSrError, match="not a training configuration"):
        load_config(str(tmp_path / "bad.json"))


def test_ranks_compute_disjoint_shares_of_the_same_batches(hr_dem, tmp_path):
    """Rank r of N draws the batch every rank draws and computes crops r, r+N, … of it:
    together exactly the single-process batch, no crop on two ranks."""
    from contextlib import nullcontext

    from demsr.core.raster.degrade import degrade

    task = SRTask(_cfg(hr_dem, tmp_path / "s.pt", batch_size=6))
    task.torch = torch
    task.check()  # as the runner does first
    model = task.build(Monitor())
    task.prepare(model, Monitor())
    seen = []

    def recording(lr):
        seen.append(lr.clone())
        return model(lr)

    full, _ = task.patches.sample(6, np.random.default_rng([3, 0]))
    full_lr = degrade(torch.from_numpy(full)[:, None], 2, "blockmean")
    for rank in range(3):
        task.share = slice(rank, None, 3)
        task.loss(recording, np.random.default_rng([3, 0]), nullcontext)
    assert [len(x) for x in seen] == [2, 2, 2]
    for rank, lr in enumerate(seen):
        torch.testing.assert_close(lr, full_lr[rank::3])
    flat = [x.numpy().tobytes() for lr in seen for x in lr]
    assert len(set(flat)) == 6


def test_two_gloo_processes_train_as_one(hr_dem, tmp_path):
    one = run_training(_cfg(hr_dem, tmp_path / "one.pt"))
    out = tmp_path / "two" / "two.pt"
    out.parent.mkdir()
    save_config(_cfg(hr_dem, out), str(tmp_path / "run.json"))
    proc = torchrun(2, "--config", str(tmp_path / "run.json"), "--summary",
                    str(tmp_path / "two.json"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 process(es), 8 crops per batch in all (4 or fewer each)" in proc.stdout
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["best_epoch"] == one.best_epoch and two["epochs_done"] == 2
    for h1, h2 in zip(one.history, two["history"]):
        for key in ("val_rmse", "val_ratio", "val_slope_rmse"):
            assert h2[key] == pytest.approx(h1[key], rel=1e-5, abs=1e-6), (h1["epoch"], key)
        if h1["epoch"]:  # the loss over the whole batch, not process 0's share
            assert h2["train_loss"] == pytest.approx(h1["train_loss"], rel=1e-4)
    a, b = checkpoint.load(one.model_path), checkpoint.load(str(out))
    for k, v in a.state_dict.items():
        assert torch.allclose(v.float(), b.state_dict[k].float(), atol=1e-5), k
    # one writer: the model, its ONNX copy and its report, no resume file left, nothing else
    assert sorted(os.listdir(out.parent)) == ["two.onnx", "two.pt", "two_curves.png",
                                              "two_metrics.csv"]
    assert not os.path.exists(resume_path(str(out)))


def test_more_processes_than_crops_is_refused(hr_dem, tmp_path):
    save_config(_cfg(hr_dem, tmp_path / "m.pt", batch_size=1), str(tmp_path / "run.json"))
    proc = torchrun(2, "--config", str(tmp_path / "run.json"))
    assert proc.returncode != 0
    assert "BATCH_SIZE 1 is smaller than the number of processes (2)" in proc.stderr
    assert not (tmp_path / "m.pt").exists()
