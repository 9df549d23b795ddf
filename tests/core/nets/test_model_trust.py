"""Models whose numbers are absurd are refused, their outputs are checked tile by tile, their
cost is bounded, and only the bundled models (by a hash kept in code) are vouched for."""
import hashlib
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import demsr  # noqa: F401 - puts the private torch folder on sys.path

import torch  # noqa: E402

from demsr.core.errors import DemSrError  # noqa: E402
from demsr.core.nets import bundled, checkpoint, registry, trust  # noqa: E402
from demsr.core.nets.output_check import check_output_tile, output_bounds  # noqa: E402
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve  # noqa: E402

from _model_helpers import tiny_fast  # noqa: E402

SAGEHEN = "flopy_sagehen_10m.tif"


def _hostile(path: Path, payload: dict) -> Path:
    """A file whose integrity hashes were recomputed after editing (anyone can)."""
    payload["integrity"] = {"algorithm": "sha256", "header": trust.header_digest(payload),
                            "weights": trust.weights_digest(payload["state_dict"])}
    torch.save(payload, str(path))
    return path


def _tiny_payload(tmp_path, arch="fast", **hparams) -> dict:
    if arch == "fast":
        model = tiny_fast(2)
    else:
        torch.manual_seed(0)
        model = registry.build(arch, 2, hparams)
    path = tmp_path / "base.pt"
    checkpoint.save(checkpoint.from_model(model, "torch-bicubic", {}), str(path))
    return torch.load(str(path), weights_only=True)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.complex64, torch.bool])
def test_non_floating_weights_are_refused(tmp_path, dtype):
    payload = _tiny_payload(tmp_path)
    key = "head.weight"
    payload["state_dict"][key] = payload["state_dict"][key].to(dtype)
    path = _hostile(tmp_path / "m.pt", payload)
    with pytest.raises(DemSrError, match=rf"'{key}' are .*not floating-point"):
        checkpoint.load(str(path))


def test_negative_batchnorm_variance_is_refused_and_counters_pass(tmp_path):
    payload = _tiny_payload(tmp_path, "gisr", channels=8, blocks=1)
    counters = [k for k in payload["state_dict"] if k.endswith("num_batches_tracked")]
    assert counters and not payload["state_dict"][counters[0]].is_floating_point()
    assert checkpoint.load(str(_hostile(tmp_path / "ok.pt", payload))).architecture == "gisr"
    key = next(k for k in payload["state_dict"] if k.endswith("running_var"))
    payload["state_dict"][key] = payload["state_dict"][key].clone()
    payload["state_dict"][key][0] = -4.0
    with pytest.raises(DemSrError, match=rf"'{key}' holds a negative variance"):
        checkpoint.load(str(_hostile(tmp_path / "m.pt", payload)))


@pytest.mark.parametrize("hparams,match", [
    ({"features": 512, "growth": 512, "blocks": 32, "dense_blocks": 16, "convs": 16},
     "multiply-adds per pixel"),
    ({"se_blocks": 32, "se_radius": 64}, "pixels of context"),
])
def test_dshat_inside_every_range_but_beyond_any_machine_is_refused_before_building(
        tmp_path, hparams, match):
    payload = torch.load(bundled.DSHAT_MODEL, weights_only=True)
    payload["hparams"] = {**payload["hparams"], **hparams}
    registry.check("dshat", payload["scale"], payload["hparams"], payload["normalisation"])
    path = _hostile(tmp_path / "huge.pt", payload)
    tracemalloc.start()
    try:
        with pytest.raises(DemSrError, match=rf"huge.pt' describes .*{match}"):
            checkpoint.load(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6


def test_every_architectures_defaults_and_bundled_models_are_within_the_cost_bounds():
    for name in registry.names():
        cls = registry.get(name)
        with torch.device("meta"):
            shell = registry.build(name, cls.scales[0] if cls.scales[0] > 1 else 2)
        cost = trust.network_cost(shell)
        assert cost["macs"] <= trust.MAX_MACS_PER_PIXEL / 10, (name, cost)
        assert cost["halo"] <= trust.MAX_HALO / 4, (name, cost)


def test_absurd_output_is_refused_naming_the_model_and_nothing_is_left(tmp_path, crop):
    """Weights just under the magnitude limit pass the file checks; the answer (±1e14 m)
    does not pass the output check."""
    payload = _tiny_payload(tmp_path)
    for key in ("tail.weight", "linear.weight"):
        payload["state_dict"][key] = torch.full_like(payload["state_dict"][key], 9e5)
    path = _hostile(tmp_path / "loud.pt", payload)
    checkpoint.load(str(path))  # every number is finite and below MAX_ABS_WEIGHT
    src = crop(SAGEHEN, 100, 100, 64, 64)
    out = tmp_path / "out" / "o.tif"
    out.parent.mkdir()
    with pytest.raises(DemSrError, match=r"Model model fast ×2 \(loud.pt\) gave "):
        superresolve(SuperResolveRequest(str(src), str(out), scale=2, method="model",
                                         model_path=str(path), device="cpu"))
    assert os.listdir(out.parent) == []


def test_output_check_bounds():
    window = np.array([[100.0, 110.0], [np.nan, 120.0]])
    assert output_bounds(window) == (80.0, 140.0)
    assert output_bounds(np.full((2, 2), 5.0)) == (4.0, 6.0)  # flat: MIN_MARGIN
    check_output_tile(np.array([[81.0, 139.0]]), window, "m")
    for bad in (np.array([[79.0]]), np.array([[141.0]]), np.array([[np.nan]]),
                np.array([[np.inf]])):
        with pytest.raises(DemSrError, match="Model m gave"):
            check_output_tile(bad, window, "m")
    with pytest.raises(DemSrError, match="NaN"):
        check_output_tile(np.array([[np.nan]]), np.full((2, 2), np.nan), "m")


def test_bundled_models_are_listed_by_hash_in_code():
    files = sorted(Path(bundled.MODELS_DIR).glob("*.pt"))
    assert {f.name for f in files} == set(bundled.BUNDLED_SHA256)
    for f in files:
        assert hashlib.sha256(f.read_bytes()).hexdigest() == bundled.BUNDLED_SHA256[f.name]
        ck = checkpoint.load(str(f))
        assert ck.bundled and trust.integrity_note(ck, str(f)) is None


def test_a_model_with_a_recomputed_hash_is_origin_unknown_never_verified(tmp_path):
    payload = torch.load(bundled.sr_model_path(2), weights_only=True)
    key = "tail.bias"
    payload["state_dict"][key] = payload["state_dict"][key] + 0.01
    path = _hostile(tmp_path / bundled.os.path.basename(bundled.sr_model_path(2)), payload)
    ck = checkpoint.load(str(path))
    note = trust.integrity_note(ck, str(path))
    assert not ck.bundled
    assert "not a bundled model, origin unknown" in note and "differs from the one shipped" in note
    assert "not deliberate changes" in note and "verified" not in note
    payload.pop("integrity")
    torch.save(payload, str(tmp_path / "nohash.pt"))
    note = trust.integrity_note(checkpoint.load(str(tmp_path / "nohash.pt")),
                                     str(tmp_path / "nohash.pt"))
    assert "origin unknown" in note and "written before" not in note


def test_random_bytes_are_not_called_code(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(DemSrError) as err:
        checkpoint.load(str(path))
    text = str(err.value)
    assert "not a file of tensors" in text and "Python objects" not in text
    assert "weights_only" not in text


def test_init_weights_errors_do_not_say_leave_model_empty(tmp_path):
    path = tmp_path / "init.pt"
    path.write_bytes(b"not a model")
    with pytest.raises(DemSrError) as err:
        checkpoint.load(str(path), role="INIT_WEIGHTS")
    assert "INIT_WEIGHTS empty" in str(err.value) and "MODEL" not in str(err.value)


@pytest.mark.parametrize("field,value,match", [
    ("normalisation", "local_mad", r"its 'normalisation' record is a str, not a table"),
    ("hparams", [1, 2], r"its 'hparams' record is a list, not a table"),
    ("scale", float("nan"), r"its scale nan is not a number"),
])
def test_a_bad_record_is_named_plainly(tmp_path, field, value, match):
    payload = torch.load(bundled.sr_model_path(2), weights_only=True)
    payload[field] = value
    with pytest.raises(DemSrError, match=match) as err:
        checkpoint.load(str(_hostile(tmp_path / "m.pt", payload)))
    assert "dictionary update sequence" not in str(err.value)
