"""DS-HAT with an auxiliary DEM in its support stream: it starts from the delta surface fill,
tiles agree, it refuses to run without its auxiliary (and a terrain-only model with one), and
Train DEM SR makes such a model from HR DEMs (synthetic auxiliaries) or real second DEMs."""
import numpy as np
import pytest
import rasterio

import demsr  # noqa: F401 - puts the private torch folder on sys.path

from demsr.core.errors import DemSrError  # noqa: E402
from demsr.core.nets import checkpoint, registry  # noqa: E402
from demsr.core.nodata.find import MASK_AUXILIARY, MASK_FILLED, MASK_KEPT  # noqa: E402
from demsr.core.nodata.synthetic import write_synthetic_auxiliary  # noqa: E402
from demsr.core.pipelines.dshat_inputs import AUXILIARY_MODEL_CHANNELS  # noqa: E402
from demsr.core.pipelines.voidrepair import VoidRepairRequest, voidrepair  # noqa: E402
from demsr.core.raster.io import read_band  # noqa: E402
from demsr.core.training.config import DSHATTrainConfig  # noqa: E402
from demsr.core.training.train import run_training  # noqa: E402

from _dshat_helpers import TINY, holed_dem, tiny_dshat  # noqa: E402
from _model_helpers import dem_crop  # noqa: E402

SAGEHEN = "flopy_sagehen_10m.tif"


@pytest.fixture()
def holed(tmp_path, dems_dir):
    """A real DEM crop with synthetic voids and a synthetic second product of it (×4 area
    average, smooth error, bias, quarter-cell shift, voids of its own)."""
    truth, _, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 60, 80, 200,
                                      220, seed=4)
    aux = write_synthetic_auxiliary(truth, grid, np.random.default_rng(5),
                                    str(tmp_path / "aux.tif"), voids=0.1)
    return tmp_path / "holed.tif", aux, truth, voids


def _run(tmp_path, src, name, **kw):
    out, mask = tmp_path / f"{name}.tif", tmp_path / f"{name}_m.tif"
    res = voidrepair(VoidRepairRequest(str(src), str(out), str(mask), device="cpu", **kw))
    with rasterio.open(out) as a, rasterio.open(mask) as b:
        return res, read_band(a, 1), b.read(1)


def _identity_aux_model(path):
    """An untrained auxiliary DS-HAT: its last conv is zero, so it returns its first fill."""
    model = registry.build("dshat", 1, dict(TINY, aux_channels=list(AUXILIARY_MODEL_CHANNELS)))
    checkpoint.save(checkpoint.from_model(model, "gdal-lanczos", {"data": ["test"]}), str(path))


def test_an_auxiliary_model_starts_from_the_delta_surface_fill(tmp_path, holed, monkeypatch):
    src, aux, truth, voids = holed
    _identity_aux_model(tmp_path / "id.pt")
    # the delta fill its models were trained with: the auxiliary onto the grid by Lanczos
    # (METHOD=delta itself super-resolves a coarser auxiliary first, aux_superresolve.py)
    from demsr.core.pipelines import aux_superresolve

    monkeypatch.setattr(aux_superresolve, "MIN_FACTOR", np.inf)
    res_d, delta, mask_d = _run(tmp_path, src, "delta", method="delta", auxiliary_path=aux)
    res_m, model, mask_m = _run(tmp_path, src, "model", method="model", auxiliary_path=aux,
                                model_path=str(tmp_path / "id.pt"))
    assert res_m.method == "model" and res_d.method == "delta"
    np.testing.assert_allclose(model[voids], delta[voids], atol=1e-3)
    np.testing.assert_array_equal(model[~voids], delta[~voids])
    # the same cells come from the auxiliary (2) and from the first fill (1, its own voids)
    np.testing.assert_array_equal(mask_m, mask_d)
    assert (mask_m == MASK_AUXILIARY).sum() > 0 and (mask_m == MASK_FILLED).sum() > 0
    assert (mask_m[~voids] == MASK_KEPT).all()
    assert res_m.from_auxiliary == res_d.from_auxiliary > 0
    # ...and the delta fill is not the first fill (the test can tell them apart)
    _, fill, _ = _run(tmp_path, src, "fill", method="fill")
    assert np.abs(fill[voids] - delta[voids]).max() > 1.0


def test_tiled_equals_untiled_with_an_auxiliary(tmp_path, holed):
    src, aux, truth, voids = holed
    tiny_dshat(tmp_path / "aux.pt", channels=list(AUXILIARY_MODEL_CHANNELS), seed=3)
    outs = [_run(tmp_path, src, f"t{t}", method="model", auxiliary_path=aux, tile_size=t,
                 model_path=str(tmp_path / "aux.pt"))[1] for t in (64, 512)]
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-4)
    _, delta, _ = _run(tmp_path, src, "delta", method="delta", auxiliary_path=aux)
    assert np.abs(outs[0][voids] - delta[voids]).max() > 1e-2   # the random net did something


def test_a_model_trained_with_an_auxiliary_refuses_to_run_without_it_and_the_reverse(
        tmp_path, holed):
    src, aux, _, _ = holed
    tiny_dshat(tmp_path / "aux.pt", channels=list(AUXILIARY_MODEL_CHANNELS))
    with pytest.raises(DemSrError, match="trained with an auxiliary DEM .* Give AUXILIARY"):
        _run(tmp_path, src, "o", method="model", model_path=str(tmp_path / "aux.pt"))
    tiny_dshat(tmp_path / "terrain.pt")
    with pytest.raises(DemSrError, match="trained without an auxiliary DEM and cannot use"):
        _run(tmp_path, src, "o", method="model", model_path=str(tmp_path / "terrain.pt"),
             auxiliary_path=aux)
    # no bundled model reads an auxiliary DEM: METHOD=model without MODEL says why, and what
    with pytest.raises(DemSrError, match="No bundled DS-HAT model reads an auxiliary DEM.*"
                                         "METHOD=delta"):
        _run(tmp_path, src, "o", method="model", auxiliary_path=aux)
    assert not (tmp_path / "o.tif").exists() and not (tmp_path / "o_m.tif").exists()


@pytest.mark.parametrize("real", [False, True])
def test_train_with_synthetic_or_real_auxiliary_dems(tmp_path, dems_dir, real):
    a = tmp_path / "a.tif"
    dem_crop(dems_dir / "longyearbyen_1995_20m_xdem.tif", a, 200, 300, 120)
    kw = dict(synthetic_auxiliary=True)
    if real:
        with rasterio.open(a) as ds:
            from demsr.core.raster.grid import Grid

            grid = Grid(ds.transform, ds.width, ds.height, ds.crs)
            kw = dict(auxiliary=[write_synthetic_auxiliary(
                read_band(ds, 1), grid, np.random.default_rng(1), str(tmp_path / "second.tif"))])
    out = tmp_path / "aux.pt"
    res = run_training(DSHATTrainConfig(
        inputs=[str(a)], output_model=str(out), factors=[1], patch_size=16, batch_size=2,
        steps_per_epoch=2, epochs=1, validation=0.2, device="cpu", hparams=TINY,
        scene_every=1, **kw))
    assert res.val_rmse_baseline > 0
    ck = checkpoint.load(str(out))
    assert ck.hparams["aux_channels"] == list(AUXILIARY_MODEL_CHANNELS)
    p = ck.provenance
    assert p["auxiliary_dem"] is True and p["first_fill"] == "delta surface fill"
    assert p["auxiliary"] == (["second.tif"] if real else "synthetic")


def test_bad_auxiliary_training_settings_are_refused(tmp_path, dems_dir):
    a = tmp_path / "a.tif"
    dem_crop(dems_dir / "longyearbyen_1995_20m_xdem.tif", a, 200, 300, 60)
    base = dict(inputs=[str(a)], output_model=str(tmp_path / "m.pt"), device="cpu")
    with pytest.raises(DemSrError, match="one auxiliary DEM per input"):
        run_training(DSHATTrainConfig(**base, auxiliary=[str(a), str(a)]))
    with pytest.raises(DemSrError, match="not both"):
        run_training(DSHATTrainConfig(**base, auxiliary=[str(a)], synthetic_auxiliary=True))
    assert not (tmp_path / "m.pt").exists()
