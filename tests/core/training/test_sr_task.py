"""SR training (runner + SR task), tiny, on a real DEM crop: learns, reports, cancels, resumes."""
import csv
import os

import pytest

import demsr  # noqa: F401 - puts the private torch folder on sys.path

import torch  # noqa: E402 - `make test` installs it; a missing torch must fail, not skip

from demsr.core.errors import Cancelled  # noqa: E402
from demsr.core.nets import checkpoint  # noqa: E402
from demsr.core.monitor import Monitor  # noqa: E402
from demsr.core.training.state import resume_path  # noqa: E402
from demsr.core.training.train import run_training  # noqa: E402

from _model_helpers import dem_crop, tiny_sr_config  # noqa: E402


@pytest.fixture(scope="module")
def hr_dem(dems_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "hr.tif"
    dem_crop(dems_dir / "flopy_sagehen_10m.tif", path, 200, 200, 240)
    return str(path)


def best_of(history):
    """The epoch a run must keep: the lowest validation ratio, the starting model (0) included."""
    return min(history, key=lambda h: h["val_ratio"])["epoch"]


def test_short_training_lowers_validation_rmse(hr_dem, tmp_path):
    out = tmp_path / "m.pt"
    res = run_training(tiny_sr_config(hr_dem, out))
    assert not res.cancelled and res.epochs_done == 2
    first, last = res.history[0], res.history[-1]
    assert first["epoch"] == 0  # the untrained model, for reference
    # the untrained model is already Lanczos + back-projection; training must add to it
    assert last["val_rmse"] < first["val_rmse"] < first["val_rmse_baseline"]
    assert res.val_rmse_model == min(h["val_rmse"] for h in res.history
                                     if h["epoch"] == res.best_epoch)
    ck = checkpoint.load(str(out))
    assert ck.scale == 2 and ck.provenance["data"] == ["hr.tif"]
    assert ck.provenance["degradation"] == "blockmean" and ck.provenance["seed"] == 3
    assert ck.provenance["validation"]["val_rmse"] == pytest.approx(res.val_rmse_model, rel=1e-4)
    with open(res.metrics_csv) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert {"val_rmse", "val_rmse_baseline", "val_slope_rmse", "val_ssim",
            "val_psnr"} <= set(rows[0])
    assert os.path.getsize(res.curves_png) > 1000
    with open(res.curves_png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"   # a PNG, though written under a partial name
    assert not os.path.exists(resume_path(str(out)))


def _cancel_after(n_batches):
    state = {"batches": 0}

    def progress(_f):
        state["batches"] += 1

    return state, Monitor(progress=progress, cancelled=lambda: state["batches"] >= n_batches)


def test_cancel_keeps_best_then_resume_continues(hr_dem, tmp_path):
    out = tmp_path / "c.pt"
    cfg = tiny_sr_config(hr_dem, out, epochs=3, steps_per_epoch=5)
    state, mon = _cancel_after(8)  # in the middle of epoch 2
    res = run_training(cfg, mon)
    assert res.cancelled and res.epochs_done == 1 and state["batches"] == 8
    assert res.best_epoch == best_of(res.history)
    assert checkpoint.load(str(out)).provenance["epochs"] == res.best_epoch
    assert os.path.exists(resume_path(str(out)))

    infos = []
    res2 = run_training(cfg, Monitor(info=infos.append))
    assert any("Resuming after epoch 1" in m for m in infos)
    assert [h["epoch"] for h in res2.history] == [0, 1, 2, 3]
    assert res2.history[1] == res.history[1]
    assert not os.path.exists(resume_path(str(out)))


def test_cancel_before_first_epoch_writes_nothing(hr_dem, tmp_path):
    out = tmp_path / "n.pt"
    _, mon = _cancel_after(2)
    with pytest.raises(Cancelled):
        run_training(tiny_sr_config(hr_dem, out), mon)
    assert not out.exists()


def test_a_run_that_only_hurts_outputs_its_starting_model(hr_dem, tmp_path):
    from demsr.core.nets import registry

    init = tmp_path / "init.pt"
    start = registry.build("fast", 2, {"channels": 8, "blocks": 1})
    checkpoint.save(checkpoint.from_model(start, start.interpolation, {"note": "start"}), str(init))
    out, warnings = tmp_path / "ft.pt", []
    res = run_training(tiny_sr_config(hr_dem, out, init_weights=str(init), learning_rate=5.0,
                                      epochs=1, steps_per_epoch=10),
                       Monitor(warning=warnings.append))
    assert res.history[1]["val_rmse"] > res.history[0]["val_rmse"]  # the epoch made it worse
    assert res.best_epoch == 0 and res.val_rmse_model == res.history[0]["val_rmse"]
    assert any("output is the starting model" in w for w in warnings)
    kept, first = checkpoint.load(str(out)), checkpoint.load(str(init))
    assert kept.provenance["epochs"] == 0
    assert kept.provenance["validation"]["val_rmse"] == pytest.approx(res.val_rmse_model, rel=1e-4)
    for k, v in first.state_dict.items():
        assert torch.equal(kept.state_dict[k], v), k


def test_gisr_trains_and_is_usable(hr_dem, tmp_path):
    out = tmp_path / "g.pt"
    res = run_training(tiny_sr_config(hr_dem, out, architecture="gisr", epochs=1, steps_per_epoch=3,
                     hparams={"channels": 8, "blocks": 1}))
    ck = checkpoint.load(str(out))
    assert ck.architecture == "gisr" and res.best_epoch == best_of(res.history)
    assert ck.provenance["epochs"] == res.best_epoch
    model = ck.build()
    with torch.no_grad():
        y = model(torch.full((1, 1, 20, 20), 1234.0))
    assert y.shape == (1, 1, 40, 40) and torch.allclose(y, torch.full_like(y, 1234.0), atol=1e-2)


def test_non_integer_factor_and_factor_range_train_through_the_area_average(hr_dem, tmp_path):
    """×2.5: a ×3 network trained through the engine's area-average finish, and one ×4
    network for every factor in [2, 4]; each checkpoint records the factors it serves."""
    out = tmp_path / "f.pt"
    res = run_training(tiny_sr_config(hr_dem, out, scale=2.5, patch_size=30, epochs=2,
                            steps_per_epoch=15))
    ck = checkpoint.load(str(out))
    assert ck.scale == 3
    assert ck.provenance["factors"] == [2.5, 2.5] and ck.provenance["finish"] == "average"
    # validated against GDAL Lanczos from the same area-averaged LR; training helps
    first, last = res.history[0], res.history[-1]
    assert first["val_rmse_baseline"] > 0 and last["val_rmse"] < first["val_rmse"]

    ranged = tmp_path / "r.pt"
    run_training(tiny_sr_config(hr_dem, ranged, scale=2, max_factor=4, patch_size=32, epochs=1,
                      steps_per_epoch=4))
    ck = checkpoint.load(str(ranged))
    assert ck.scale == 4 and ck.provenance["factors"] == [2.0, 4.0]
    assert ck.provenance["finish"] == "average"
    # the classic training (one integer factor, the network's own) records the rule it serves
    plain = tmp_path / "p.pt"
    run_training(tiny_sr_config(hr_dem, plain, epochs=1, steps_per_epoch=2))
    ck = checkpoint.load(str(plain))
    assert ck.provenance["factors"] == [2.0, 2.0] and ck.provenance["finish"] == "auto"


@pytest.mark.parametrize("kw, match", [
    (dict(scale=2.5, degradation="knn"), "area average"),
    (dict(scale=9), r"within \(1, 8\]"),
    (dict(scale=1), r"Scale 1 is not a factor"),
    (dict(scale=3, max_factor=2.5), "must not be below SCALE"),
    (dict(scale=2.5, model_scale=2), r"×2 network cannot serve ×2\.5"),
])
def test_bad_factor_settings_are_refused(hr_dem, tmp_path, kw, match):
    from demsr.core.errors import DemSrError

    with pytest.raises(DemSrError, match=match):
        run_training(tiny_sr_config(hr_dem, tmp_path / "x.pt", **kw))
    assert not (tmp_path / "x.pt").exists()
