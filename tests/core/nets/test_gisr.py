"""GISR as published: size, shapes, BatchNorm/PReLU, global information constraint."""
import pytest

import demsr  # noqa: E402,F401 - puts the private torch folder on sys.path

import torch  # noqa: E402 - `make test` installs it; a missing torch must fail, not skip

from demsr.core.nets import registry  # noqa: E402
from demsr.core.nets.local_norm import local_stats  # noqa: E402


@pytest.fixture(scope="module")
def gisr():
    torch.manual_seed(0)
    return registry.build("gisr", 2).eval()


def test_parameter_count_matches_paper(gisr):
    n = sum(p.numel() for p in gisr.parameters())
    assert abs(n - 1.38e6) / 1.38e6 < 0.01  # "about 1.38 M parameters"


def test_structure(gisr):
    bns = [m for m in gisr.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 2 * 16 + 2 and all(b.eps == 1e-5 for b in bns)  # not the fork's 0.8
    assert len(gisr.blocks) == 16 and gisr.head[0].kernel_size == (9, 9)
    assert gisr.tail.kernel_size == (9, 9) and gisr.tail.stride == (2, 2)
    assert any(isinstance(m, torch.nn.PReLU) for m in gisr.modules())
    assert any(isinstance(m, torch.nn.PixelShuffle) for m in gisr.modules())


@pytest.mark.parametrize("scale", [2, 4])
def test_output_is_hr_grid(scale):
    model = registry.build("gisr", scale, {"blocks": 2}).eval()
    with torch.no_grad():
        y = model(torch.rand(3, 1, 12, 10) * 100)
    assert y.shape == (3, 1, 12 * scale, 10 * scale)


def test_global_information_constraint(gisr):
    """With G ≡ 0 the output is the mean of G and the interpolated DEM (normalised space)."""
    x = torch.rand(1, 1, 16, 16) * 50 + 300
    with torch.no_grad():
        gisr.tail.weight.zero_()
        gisr.tail.bias.zero_()
        y = gisr(x)
    hr = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    mean, _ = local_stats(hr, gisr.norm["radius"], gisr.norm["eps"])
    assert torch.allclose(y, mean + (hr - mean) / 2, atol=1e-3)


@pytest.mark.parametrize("arch", ["gisr", "fast"])
def test_any_elevation_range(arch):
    """Shifting elevations by 8 km or scaling relief ×50 gives the same shape of answer."""
    torch.manual_seed(1)
    model = registry.build(arch, 2, {"blocks": 2}).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        x = torch.rand(1, 1, 20, 20) * 10
        y = model(x)
        assert torch.allclose(model(x - 8000) + 8000, y, atol=2e-2)
        assert torch.allclose(model(x * 50) / 50, y, atol=1e-2)
        assert not torch.allclose(y, torch.nn.functional.interpolate(
            x, scale_factor=2, mode="bicubic", align_corners=False), atol=1e-3)
