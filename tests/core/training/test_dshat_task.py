"""DS-HAT training: HR-only with synthetic voids, LR/HR pairs with spectral bands, loss,
resume after cancel; the trained checkpoints run in the void-repair pipeline."""
import csv
import os

import numpy as np
import pytest
import rasterio

import demsr  # noqa: F401 - puts the private torch folder on sys.path

import torch  # noqa: E402

from demsr.core.errors import DemSrError  # noqa: E402
from demsr.core.raster.grid import Grid  # noqa: E402
from demsr.core.nets import checkpoint  # noqa: E402
from demsr.core.monitor import Monitor  # noqa: E402
from demsr.core.raster.io import read_band  # noqa: E402
from demsr.core.raster.write import write_array  # noqa: E402
from demsr.core.raster.degrade import degrade_array  # noqa: E402
from demsr.core.training.config import DSHATTrainConfig  # noqa: E402
from demsr.core.training.dshat_task import dshat_loss  # noqa: E402
from demsr.core.training.train import run_training  # noqa: E402
from demsr.core.pipelines.voidrepair import VoidRepairRequest, voidrepair  # noqa: E402

from _dshat_helpers import TINY, four_band_raster, holed_dem  # noqa: E402
from _model_helpers import dem_crop  # noqa: E402

FAST = dict(patch_size=16, batch_size=2, steps_per_epoch=2, epochs=1, validation=0.2,
            device="cpu", hparams=TINY, scene_every=1)


def test_loss_is_weighted_l1_plus_gradient_l1_on_known_cells():
    truth = torch.zeros(1, 1, 4, 4)
    truth[0, 0, 0, 0] = float("nan")
    pred = torch.ones(1, 1, 4, 4) * 2
    mask = torch.zeros(1, 1, 4, 4)
    sigma = torch.full((1, 1, 1, 1), 2.0)
    # error 1 σ everywhere known, flat: only the L1 term
    assert float(dshat_loss(pred, truth, mask, sigma, 0.85, 0.10, 3.0)) == pytest.approx(0.85)
    pred2 = pred.clone()
    pred2[..., 1:, :] = 0  # a step in y: gradient term appears
    loss = float(dshat_loss(pred2, truth, mask, sigma, 0.0, 0.10, 1.0))
    assert loss > 0
    mask[..., 3, :] = 1  # void cells weigh 3×: rows with error 0 count more
    assert float(dshat_loss(pred2, truth, mask, sigma, 1.0, 0.0, 3.0)) < \
        float(dshat_loss(pred2, truth, mask * 0, sigma, 1.0, 0.0, 3.0))


def test_train_from_hr_dems_with_synthetic_voids(tmp_path, dems_dir):
    a = tmp_path / "a.tif"
    b = tmp_path / "b.tif"
    dem_crop(dems_dir / "longyearbyen_1995_20m_xdem.tif", a, 200, 300, 120)
    dem_crop(dems_dir / "oso_landslide_lidar_1.83m.tif", b, 100, 100, 110)
    out = tmp_path / "vr.pt"
    res = run_training(DSHATTrainConfig(inputs=[str(a), str(b)], output_model=str(out),
                                       factors=[1, 2], **FAST))
    assert res.best_epoch == 1 and os.path.exists(out) and not os.path.exists(str(out) + ".resume")
    ck = checkpoint.load(str(out))
    assert ck.architecture == "dshat" and ck.hparams["aux_channels"][-1] == "streams"
    p = ck.provenance
    assert p["mode"] == "synthetic voids" and p["factors"] == [1, 2]
    assert (p["l1_weight"], p["gradient_weight"]) == (0.85, 0.10)
    assert p["data"] == ["a.tif", "b.tif"]
    with open(res.metrics_csv) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and float(rows[0]["val_ratio"]) == pytest.approx(1.0)
    # the trained model repairs a DEM through the pipeline
    src = tmp_path / "holed.tif"
    holed_dem(dems_dir / "flopy_sagehen_10m.tif", src, 100, 100, 70, 70)
    voidrepair(VoidRepairRequest(str(src), str(tmp_path / "o.tif"), str(tmp_path / "m.tif"),
                                 model_path=str(out), device="cpu"))
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert np.isfinite(read_band(ds, 1)).all()


def test_train_from_pairs_with_spectral_bands(tmp_path, dems_dir):
    """The user's LR DEM with real-style voids + an HR reference + a 4-band raster."""
    with rasterio.open(dems_dir / "longyearbyen_1995_20m_xdem.tif") as ds:
        hr = read_band(ds, 1)[300:420, 300:420]
        t = ds.transform * ds.transform.translation(300, 300)
        crs = ds.crs
    hgrid = Grid(t, 120, 120, crs)
    ref = tmp_path / "ref.tif"
    write_array(str(ref), hr, hgrid)
    lr = degrade_array(hr, 2)
    lr[20:30, 25:31] = np.nan
    lgrid = Grid(t * t.scale(2), 60, 60, crs)
    lr_path = tmp_path / "lr.tif"
    write_array(str(lr_path), lr, lgrid)
    s2 = four_band_raster(ref, tmp_path / "s2.tif")
    out = tmp_path / "pairs.pt"
    res = run_training(DSHATTrainConfig(inputs=[str(lr_path)], references=[str(ref)],
                                       spectral=[str(s2)], output_model=str(out), **FAST))
    ck = checkpoint.load(res.model_path)
    assert ck.hparams["aux_channels"][-4:] == ["s2_b1", "s2_b2", "s2_b3", "s2_b4"]
    assert ck.provenance["mode"] == "pairs" and ck.provenance["references"] == ["ref.tif"]
    with pytest.raises(DemSrError, match="cannot run without them"):
        voidrepair(VoidRepairRequest(str(lr_path), str(tmp_path / "o.tif"),
                                     str(tmp_path / "m.tif"), model_path=str(out)))
    voidrepair(VoidRepairRequest(str(lr_path), str(tmp_path / "o.tif"), str(tmp_path / "m.tif"),
                                 model_path=str(out), spectral_path=str(s2),
                                 target_grid_path=str(ref), device="cpu"))
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.shape == (120, 120) and np.isfinite(read_band(ds, 1)).all()
    with pytest.raises(DemSrError, match="one HR reference per LR DEM"):
        run_training(DSHATTrainConfig(inputs=[str(lr_path), str(ref)], references=[str(ref)],
                                     output_model=str(out), **FAST))


def test_a_pairs_model_records_its_grid_change_and_runs_on_the_target_grid(tmp_path, dems_dir):
    """Trained LR (12.5 m) → reference (8 m): the checkpoint says so, and on a target grid it
    runs there itself (not repair-then-Super-resolve), giving exactly the target's grid; a
    synthetic-voids model on the same request takes the Super-resolve route."""
    truth, _, _, hgrid = holed_dem(dems_dir / "longyearbyen_1995_20m_xdem.tif",
                                   tmp_path / "unused.tif", 300, 300, 125, 125, pixel_size=8.0)
    ref = tmp_path / "ref.tif"
    write_array(str(ref), truth, hgrid)
    lgrid = Grid(hgrid.transform * hgrid.transform.scale(1.5625), 80, 80, hgrid.crs)
    from demsr.core.raster.warp import warp

    lr = warp(truth, hgrid, lgrid, "average")
    lr[30:38, 40:47] = np.nan
    lr_path = tmp_path / "lr.tif"
    write_array(str(lr_path), lr, lgrid)
    out = tmp_path / "pairs.pt"
    run_training(DSHATTrainConfig(inputs=[str(lr_path)], references=[str(ref)],
                                  output_model=str(out), **FAST))
    p = checkpoint.load(str(out)).provenance
    assert p["task"] == "grid change" and p["grid_factors"] == [1.5625]
    assert p["auxiliary_dem"] is False
    log, warnings = [], []
    voidrepair(VoidRepairRequest(str(lr_path), str(tmp_path / "o.tif"), str(tmp_path / "m.tif"),
                                 model_path=str(out), target_grid_path=str(ref), device="cpu"),
               Monitor(info=log.append, warning=warnings.append))
    assert any("runs on the target grid (×1.562" in m for m in log), log
    assert not any("repaired on the input grid" in m for m in log) and not warnings
    with rasterio.open(tmp_path / "o.tif") as o, rasterio.open(ref) as r:
        assert (o.transform, o.shape, o.crs) == (r.transform, r.shape, r.crs)
        assert np.isfinite(read_band(o, 1)).all()
    # ×3 is outside what it saw: it still runs there, with a warning
    voidrepair(VoidRepairRequest(str(lr_path), str(tmp_path / "o3.tif"), str(tmp_path / "m3.tif"),
                                 model_path=str(out), target_resolution=12.5 / 3,
                                 device="cpu"), Monitor(warning=warnings.append))
    assert any("outside that" in w for w in warnings), warnings
    # a synthetic-voids model: repaired on the input grid, then Super-resolve DEM's route
    syn = tmp_path / "syn.pt"
    run_training(DSHATTrainConfig(inputs=[str(ref)], output_model=str(syn), **FAST))
    assert checkpoint.load(str(syn)).provenance["task"] == "repair"
    log.clear()
    voidrepair(VoidRepairRequest(str(lr_path), str(tmp_path / "s.tif"), str(tmp_path / "sm.tif"),
                                 model_path=str(syn), target_grid_path=str(ref), device="cpu"),
               Monitor(info=log.append))
    assert any("repaired on the input grid" in m for m in log), log


def test_cancel_keeps_best_and_resumes(tmp_path, dems_dir):
    a = tmp_path / "a.tif"
    dem_crop(dems_dir / "flopy_sagehen_10m.tif", a, 200, 200, 110)
    out = tmp_path / "r.pt"
    cfg = dict(FAST, epochs=2)
    calls = []

    def cancel_in_epoch_two():
        calls.append(1)
        return os.path.exists(str(out) + ".resume")
    res = run_training(DSHATTrainConfig(inputs=[str(a)], output_model=str(out), **cfg),
                      Monitor(cancelled=cancel_in_epoch_two))
    assert res.cancelled and os.path.exists(str(out) + ".resume")
    assert res.best_epoch == min(res.history, key=lambda h: h["val_ratio"])["epoch"]
    assert checkpoint.load(str(out)).provenance["epochs"] == res.best_epoch
    info = []
    res = run_training(DSHATTrainConfig(inputs=[str(a)], output_model=str(out), **cfg),
                      Monitor(info=info.append))
    assert any("Resuming after epoch 1" in m for m in info)
    assert res.epochs_done == 2 and [h["epoch"] for h in res.history] == [0, 1, 2]
    assert not os.path.exists(str(out) + ".resume")
