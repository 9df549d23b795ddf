"""One checkpoint format: round trip, provenance, and clear errors for foreign files."""
import pickle

import pytest

import demsr  # noqa: E402,F401 - puts the private torch folder on sys.path

import torch  # noqa: E402 - `make test` installs it; a missing torch must fail, not skip

from demsr.core.errors import DemSrError  # noqa: E402
from demsr.core.nets import checkpoint, registry  # noqa: E402

from _model_helpers import tiny_fast  # noqa: E402


@pytest.mark.parametrize("arch", ["fast", "gisr"])
def test_round_trip(tmp_path, arch):
    torch.manual_seed(0)
    model = registry.build(arch, 4, {"blocks": 1, "channels": 8}).eval()
    prov = {"data": ["a.tif"], "epochs": 3, "seed": 7, "validation": {"val_rmse": 1.5}}
    path = tmp_path / "m.pt"
    checkpoint.save(checkpoint.from_model(model, "torch-bicubic", prov), str(path))
    ck = checkpoint.load(str(path))
    assert (ck.architecture, ck.scale, ck.interpolation) == (arch, 4, "torch-bicubic")
    assert ck.hparams["channels"] == 8 and ck.provenance == prov
    assert ck.normalisation == model.norm
    x = torch.rand(1, 1, 14, 14) * 30
    with torch.no_grad():
        assert torch.equal(ck.build()(x), model(x))
    # weights_only=True must be able to read it: no pickled code inside
    torch.load(str(path), weights_only=True)


def test_rejects_foreign_checkpoint(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"model": tiny_fast(2).state_dict()}, str(path))
    with pytest.raises(DemSrError, match="not a DEM SR model"):
        checkpoint.load(str(path))


def test_rejects_corrupt_and_missing_files(tmp_path):
    good = tmp_path / "good.pt"
    checkpoint.save(checkpoint.from_model(tiny_fast(2), "torch-bicubic"), str(good))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(DemSrError, match="not a readable DEM SR model"):
        checkpoint.load(str(bad))
    with pytest.raises(DemSrError, match="does not exist"):
        checkpoint.load(str(tmp_path / "nope.pt"))


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_rejects_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": checkpoint.FORMAT, "x": _Evil()}, f)
    with pytest.raises(DemSrError, match="not a readable"):
        checkpoint.load(str(path))


def test_rejects_unknown_architecture_and_wrong_weights(tmp_path):
    ck = checkpoint.from_model(tiny_fast(2), "torch-bicubic")
    ck.architecture = "nosuchnet"
    path = tmp_path / "x.pt"
    checkpoint.save(ck, str(path))
    with pytest.raises(DemSrError, match="Unknown model architecture"):
        checkpoint.load(str(path))
    ck = checkpoint.from_model(tiny_fast(2), "torch-bicubic")
    ck.hparams = {"channels": 16, "blocks": 2}
    checkpoint.save(ck, str(path))
    with pytest.raises(DemSrError, match="do not fit"):
        checkpoint.load(str(path)).build()
