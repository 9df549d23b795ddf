"""DS-HAT network: structure, halo (tile safety), checkpoint round trip with its channel set."""
import numpy as np
import pytest

import demsr  # noqa: F401 - puts the private torch folder on sys.path

import torch  # noqa: E402

from demsr.core.nets import checkpoint, registry  # noqa: E402

from _dshat_helpers import SPECTRAL, TERRAIN, TINY, tiny_dshat  # noqa: E402


def _inputs(n_aux, size=72, seed=0):
    g = torch.Generator().manual_seed(seed)
    dem = torch.cumsum(torch.randn(1, 1, size, size, generator=g), -1) * 5 + 1500
    mask = (torch.rand(1, 1, size, size, generator=g) > 0.8).float()
    aux = torch.rand(1, n_aux, size, size, generator=g)
    return dem, mask, aux, torch.full((1, 1, 1, 1), 3.0)


def test_registered_with_builtin_name_and_default_channels():
    assert "dshat" in registry.names()
    model = registry.build("dshat", 1)
    assert model.aux_channels == TERRAIN
    assert sum(p.numel() for p in model.parameters()) < 300_000  # CPU-sized by default
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"_RRDB", "_DenseBlock", "_SEBlock"} <= kinds


def test_untrained_model_returns_its_input():
    """The last conv starts at zero: training starts from the first fill, not from noise."""
    model = registry.build("dshat", 1, TINY).eval()
    dem, mask, aux, sigma = _inputs(6)
    with torch.no_grad():
        assert torch.equal(model(dem, mask, aux, sigma), dem)


@pytest.mark.parametrize("dilations", [[], [2, 4]])
def test_halo_bounds_the_receptive_field(tmp_path, dilations):
    """Changing inputs further than `halo` px from a pixel never changes that pixel."""
    model = tiny_dshat(tmp_path / "m.pt", spectral=True, dilations=dilations)
    dem, mask, aux, sigma = _inputs(10, size=2 * model.halo + 21)
    c = dem.shape[-1] // 2
    with torch.no_grad():
        base = model(dem, mask, aux, sigma)[0, 0, c, c]
        far = [t.clone() for t in (dem, mask, aux)]
        for t in far:
            t[..., :c - model.halo, :] = torch.rand_like(t[..., :c - model.halo, :]) * 7
            t[..., :, c + model.halo + 1:] = 0.5
        moved = model(*far, sigma)[0, 0, c, c]
        assert torch.allclose(base, moved, rtol=0, atol=1e-3)
        # ...while changing a cell inside the halo does
        near = [t.clone() for t in (dem, mask, aux)]
        near[0][..., c - 2, c] += 500
        near[2][..., c, c + 2] = 1 - near[2][..., c, c + 2]
        assert not torch.allclose(base, model(*near, sigma)[0, 0, c, c], rtol=0, atol=1e-2)


def test_checkpoint_round_trip_keeps_channel_set(tmp_path):
    path = tmp_path / "spec.pt"
    model = tiny_dshat(path, spectral=True)
    ck = checkpoint.load(str(path))
    assert ck.architecture == "dshat" and ck.scale == 1
    assert ck.hparams["aux_channels"] == SPECTRAL and ck.hparams["features"] == 8
    assert ck.normalisation["kind"] == "dshat"
    dem, mask, aux, sigma = _inputs(10)
    with torch.no_grad():
        assert torch.equal(ck.build()(dem, mask, aux, sigma), model(dem, mask, aux, sigma))
    torch.load(str(path), weights_only=True)


def test_wrong_channel_count_fails_loudly():
    model = registry.build("dshat", 1, TINY)
    dem, mask, aux, sigma = _inputs(10)
    with pytest.raises(RuntimeError):
        model(dem, mask, aux, sigma)  # 10 channels into a 6-channel support stream


def test_sigma_scales_the_correction_not_the_surface(tmp_path):
    """Elevation enters as (z − local mean) / σ: adding a constant shifts the output by it."""
    model = tiny_dshat(tmp_path / "m.pt")
    dem, mask, aux, sigma = _inputs(6)
    with torch.no_grad():
        a = model(dem, mask, aux, sigma)
        b = model(dem + 4000.0, mask, aux, sigma)
    np.testing.assert_allclose((b - a).numpy(), 4000.0, atol=2e-3)
