"""Checkpoints are trusted only after checking: integrity hashes, finite weights, sane
hyper-parameters (a crafted header allocates nothing), and messages that say which file is
damaged and how to get a good one."""
import pickle
import shutil
import time
import zipfile
from pathlib import Path

import pytest

import demsr  # noqa: F401 - puts the private torch folder on sys.path

import torch  # noqa: E402 - `make test` installs it; a missing torch must fail, not skip

from demsr.core.errors import DemSrError  # noqa: E402
from demsr.core.nets import bundled, checkpoint, trust  # noqa: E402
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve  # noqa: E402

from _model_helpers import tiny_fast  # noqa: E402

BUNDLED = sorted(Path(bundled.MODELS_DIR).glob("*.pt"))


def flip_weight_bytes(path: Path, count: int = 2000) -> None:
    """XOR `count` bytes spread over the largest tensor stored in the .pt (zip) file."""
    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    step = max(1, info.file_size // count)
    for k in range(min(count, info.file_size)):
        raw[start + k * step] ^= 0x5A
    path.write_bytes(bytes(raw))


def _old_format(path: Path, **changes) -> None:
    """A checkpoint as written before integrity hashes (or a crafted one)."""
    payload = torch.load(str(BUNDLED_X2), weights_only=True)
    payload.pop("integrity", None)
    for key, value in changes.items():
        payload[key] = value
    torch.save(payload, str(path))


BUNDLED_X2 = Path(bundled.sr_model_path(2))


def test_bundled_models_carry_integrity_hashes_that_match():
    assert BUNDLED, "no bundled models"
    for path in BUNDLED:
        assert "integrity" in torch.load(str(path), weights_only=True), path.name
        assert checkpoint.load(str(path)).verified, path.name


def test_flipped_bytes_in_the_bundled_x2_model_are_detected(tmp_path, crop):
    bad = tmp_path / "x2.pt"
    shutil.copy(BUNDLED_X2, bad)
    flip_weight_bytes(bad)
    with pytest.raises(DemSrError, match=r"x2\.pt' is damaged: its weights do not match"):
        checkpoint.load(str(bad))
    src = crop("flopy_sagehen_10m.tif", 100, 100, 64, 64)
    out = tmp_path / "out.tif"
    with pytest.raises(DemSrError, match="Copy it again"):
        superresolve(SuperResolveRequest(str(src), str(out), scale=2, method="model",
                                         model_path=str(bad), device="cpu"))
    assert not out.exists()


def test_edited_header_is_detected(tmp_path):
    path = tmp_path / "m.pt"
    payload = torch.load(str(BUNDLED_X2), weights_only=True)
    payload["hparams"] = {**payload["hparams"], "back_projection": 0}
    torch.save(payload, str(path))
    with pytest.raises(DemSrError, match="is damaged: its header"):
        checkpoint.load(str(path))


def test_saved_models_carry_hashes(tmp_path):
    path = tmp_path / "m.pt"
    checkpoint.save(checkpoint.from_model(tiny_fast(2), "torch-bicubic", {"epochs": (1, 2)}),
                    str(path))
    assert checkpoint.load(str(path)).verified


def test_old_checkpoint_without_hash_still_loads_with_a_note(tmp_path):
    path = tmp_path / "old.pt"
    _old_format(path)
    ck = checkpoint.load(str(path))
    assert not ck.verified
    assert "integrity hash" in trust.integrity_note(ck, str(path))
    assert trust.integrity_note(checkpoint.load(str(BUNDLED_X2)), str(BUNDLED_X2)) is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 3e38])
def test_old_checkpoint_with_broken_weights_is_refused(tmp_path, value):
    path = tmp_path / "old.pt"
    payload = torch.load(str(BUNDLED_X2), weights_only=True)
    sd = dict(payload["state_dict"])
    key = sorted(sd)[0]
    sd[key] = sd[key].clone()
    sd[key].view(-1)[3] = value
    _old_format(path, state_dict=sd)
    with pytest.raises(DemSrError, match=f"old.pt' is damaged: weights '{key}'"):
        checkpoint.load(str(path))


@pytest.mark.parametrize("hparams,scale,match", [
    ({"channels": 1_000_000, "blocks": 5, "back_projection": 2}, 2, "channels = 1000000"),
    ({"channels": 32, "blocks": 100_000, "back_projection": 2}, 2, "blocks = 100000"),
    ({"channels": "abc", "blocks": 5, "back_projection": 2}, 2, "channels = 'abc'"),
    ({"channels": 32.5, "blocks": 5, "back_projection": 2}, 2, "channels = 32.5"),
    ({"channels": 32, "blocks": -1, "back_projection": 2}, 2, "blocks = -1"),
    ({"channels": 32, "blocks": 5, "back_projection": 2}, 4096, "scale = 4096"),
    ({"channels": 64, "blocks": 5, "back_projection": 2}, 2, "do not fit"),
])
def test_crafted_header_is_refused_before_anything_is_built(tmp_path, hparams, scale, match):
    """Even with hashes recomputed to match (a hostile file), the ranges and the shapes of
    the weights decide, and nothing large is allocated."""
    path = tmp_path / "crafted.pt"
    payload = torch.load(str(BUNDLED_X2), weights_only=True)
    payload.update(hparams=hparams, scale=scale)
    payload["integrity"] = {"algorithm": "sha256", "header": trust.header_digest(payload),
                            "weights": trust.weights_digest(payload["state_dict"])}
    torch.save(payload, str(path))
    started = time.perf_counter()
    with pytest.raises(DemSrError, match=match) as err:
        checkpoint.load(str(path))
    assert "crafted.pt" in str(err.value)
    assert time.perf_counter() - started < 5


def test_dshat_header_ranges(tmp_path):
    path = tmp_path / "d.pt"
    payload = torch.load(str(bundled.DSHAT_MODEL), weights_only=True)
    payload.pop("integrity")
    payload["hparams"] = {**payload["hparams"], "dilations": list(range(1, 200))}
    torch.save(payload, str(path))
    with pytest.raises(DemSrError, match="dilations"):
        checkpoint.load(str(path))
    payload["hparams"] = {**payload["hparams"], "dilations": [], "aux_channels": 7}
    torch.save(payload, str(path))
    with pytest.raises(DemSrError, match="aux_channels"):
        checkpoint.load(str(path))


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_never_runs_and_the_unsafe_hint_is_not_passed_on(tmp_path):
    marker = tmp_path / "ran"
    for name, dump in (("evil.pt", lambda p: torch.save({"format": checkpoint.FORMAT,
                                                          "x": _Evil(str(marker))}, str(p))),
                       ("evil.pkl.pt", lambda p: p.write_bytes(pickle.dumps(_Evil(str(marker)))))):
        path = tmp_path / name
        dump(path)
        with pytest.raises(DemSrError) as err:
            checkpoint.load(str(path))
        assert "weights_only" not in str(err.value) and "code" in str(err.value)
        assert not marker.exists()


def test_dshat_model_in_superresolve_points_to_void_repair(tmp_path, crop):
    src = crop("flopy_sagehen_10m.tif", 100, 100, 64, 64)
    for scale in (2, 1.5):
        with pytest.raises(DemSrError) as err:
            superresolve(SuperResolveRequest(str(src), str(tmp_path / "o.tif"), scale=scale,
                                             method="model", model_path=bundled.DSHAT_MODEL,
                                             device="cpu"))
        assert "Void repair" in str(err.value) and "SCALE 1" not in str(err.value)
