"""Patches never touch nodata or validation blocks; degradations do what they say."""
import numpy as np
import pytest

import demsr  # noqa: F401

import torch  # noqa: E402 - `make test` installs it; a missing torch must fail, not skip

from demsr.core.raster.degrade import DEGRADATIONS, degrade, degrade_array  # noqa: E402
from demsr.core.training.patches import Raster, make_patch_set  # noqa: E402


def test_training_crops_avoid_validation_blocks_and_nodata():
    data = np.arange(200 * 160, dtype=np.float32).reshape(200, 160)  # every value unique
    data[150:170, 20:60] = np.nan
    ps = make_patch_set([Raster("r", data, (1.0, 1.0), False, 0.0)], crop=40, val_share=0.2,
                        seed=1)
    val, _ = ps.validation()
    assert len(val) >= 2
    val_values = set(val[np.isfinite(val)].ravel().tolist())
    crops, _ = ps.sample(300, np.random.default_rng(0))
    assert np.isfinite(crops).all()
    assert not val_values & set(crops.ravel().tolist())
    assert not np.isnan(val).any()  # a validation block with nodata is dropped, not used


def test_coarser_copies_train_on_unseen_cells_only():
    h, w = 240, 200
    rows, cols = np.mgrid[0:h, 0:w]
    data = (rows * 1000 + cols).astype(np.float32)  # a cell's value says where it is
    data[150:170, 20:60] = np.nan
    ps = make_patch_set([Raster("r", data, (5.0, 5.0), False, 0.0)], crop=40, val_share=0.25,
                        seed=3, coarser=(2,))
    assert ps.copies == 1 and len(ps.rasters) == 2
    copy = ps.rasters[1]
    assert copy.res == (10.0, 10.0) and copy.data.shape == (h // 2, w // 2)
    np.testing.assert_allclose(copy.data[10, 7], data[20:22, 14:16].mean())
    unseen = np.zeros((h, w), bool)  # validation blocks and nodata of the original
    for _, r0, c0 in ps.val_crops:
        unseen[r0:r0 + 40, c0:c0 + 40] = True
    unseen |= np.isnan(data)
    crops, idx = ps.sample(400, np.random.default_rng(0))
    from_copy = crops[np.array(idx) == 1]
    assert len(from_copy) > 20 and np.isfinite(from_copy).all()
    # every copy cell is the mean of a 2×2 block: recover the block and check it was seen
    r0 = np.floor(from_copy / 1000).astype(int)
    c0 = np.round(from_copy - 1000 * (r0 + 0.5) - 0.5).astype(int)
    assert ((r0 % 2 == 0) & (c0 % 2 == 0)).all()
    touched = unseen[r0, c0] | unseen[r0 + 1, c0] | unseen[r0, c0 + 1] | unseen[r0 + 1, c0 + 1]
    assert not touched.any()
    val, _ = ps.validation()
    assert len(val) == len(ps.val_crops) and all(i == 0 for i, _, _ in ps.val_crops)


def test_block_mean_is_the_footprint_mean():
    hr = np.random.default_rng(0).normal(size=(8, 12)).astype(np.float32) * 100 + 2000
    lr = degrade_array(hr, 2, "blockmean")
    np.testing.assert_allclose(lr, hr.reshape(4, 2, 6, 2).mean(axis=(1, 3)), rtol=1e-6)
    hr[0, 0] = np.nan
    assert np.isnan(degrade_array(hr, 2, "blockmean")[0, 0])


@pytest.mark.parametrize("method", DEGRADATIONS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_degradations_keep_planes(method, scale):
    yy, xx = np.mgrid[0:12 * scale, 0:12 * scale].astype(np.float32)
    hr = torch.from_numpy(3 * xx - 2 * yy + 500)[None, None]
    lr = degrade(hr, scale, method)[0, 0].numpy()
    assert lr.shape == (12, 12)
    # an LR cell of a plane is the plane at the cell's centre (interior cells)
    c = (np.arange(12) + 0.5) * scale - 0.5
    if method != "nearest":
        want = 3 * c[None, 2:-2] - 2 * c[2:-2, None] + 500
        np.testing.assert_allclose(lr[2:-2, 2:-2], want, atol=1e-2)
