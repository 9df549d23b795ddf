"""The models without PyTorch: the bundled .onnx copies, a fresh dependency folder holding
ONNX Runtime and no torch (Super-resolve at every factor route, Void repair, a trained
model's .onnx) against PyTorch's outputs, tampered files, no runtime at all, Deepness."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

import demsr  # noqa: F401 - puts the private dependency folder on sys.path

import torch  # noqa: E402,F401 - a missing torch must fail, not skip

from demsr.core import backends  # noqa: E402
from demsr.core.errors import DemSrError  # noqa: E402
from demsr.core.nets import bundled, checkpoint, onnx_model, registry, trust  # noqa: E402
from demsr.core.raster.io import read_band  # noqa: E402

from _checkout import system_python_env  # noqa: E402
from _dshat_helpers import holed_dem  # noqa: E402
from _model_helpers import dem_crop, tiny_sr_config  # noqa: E402

PY = "/usr/bin/python3"  # the Python QGIS runs here
TOL = 1e-3               # metres
VALIDATION = ["glacierflowmodel_aletsch_200m.tif", "pypi_lidar_dem_1m.tif",
              "marmap_hawaii_bathy.tif", "spatstat_bei_elev_5m_local.tif"]
# Every route a factor takes through the bundled models (model_upsampler.py, blend.py):
# ×1.5625 the (1, 2) model + area average, ×2 / ×3 / ×4 exact, ×2.5 the blend of the rule's
# model with a chain, ×3.25 the [2.625, 3.5] model + cubic spline, ×6 the ×4 model by the rule.
ALL_ROUTES = [1.5625, 2, 2.5, 3, 3.25, 4, 6]
TORCH_FAMILY = ("torch", "torchgen", "functorch", "nvidia", "triton")

RUNNER = r"""
import json, sys
jobs = json.load(open(sys.argv[1]))
try:
    import torch  # noqa
    sys.exit("torch is importable in the fresh profile")
except ImportError:
    pass
import demsr
from demsr.core.errors import DemSrError
from demsr.core.monitor import Monitor
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve
from demsr.core.pipelines.voidrepair import VoidRepairRequest, voidrepair
log = []
m = Monitor(info=log.append, warning=log.append)
results = {}
for job in jobs:
    try:
        if job["kind"] == "sr":
            superresolve(SuperResolveRequest(job["src"], job["out"], scale=job["scale"],
                                             method="model", model_path=job.get("model"),
                                             tile_size=job.get("tile", 1024),
                                             batch_size=2), m)
        else:
            voidrepair(VoidRepairRequest(job["src"], job["out"], job["mask"]), m)
        results[job["out"]] = "ok"
    except DemSrError as exc:
        results[job["out"]] = "error: " + str(exc)
results["torch imported"] = "torch" in sys.modules and sys.modules["torch"] is not None
results["log"] = log
print(json.dumps(results))
"""


def _read(path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return read_band(ds, 1)


def fresh_deps_without_torch(folder: Path) -> Path:
    """A dependency folder like a fresh profile's after installing ONNX Runtime only: every
    entry of DEMSR_DEPS_DIR (as `make deps` made it) but torch and its family, linked."""
    deps = os.environ.get("DEMSR_DEPS_DIR") or demsr.dependency_dir()
    assert Path(deps, "onnxruntime").is_dir(), (
        f"onnxruntime is not in the dependency folder {deps}: `make deps` installs it")
    folder.mkdir()
    for entry in Path(deps).iterdir():
        if entry.name.lower().startswith(TORCH_FAMILY) or entry.name == "__pycache__":
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


def run_without_torch(tmp_path: Path, jobs: list) -> dict:
    deps = fresh_deps_without_torch(tmp_path / "fresh-deps")
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    env = system_python_env(DEMSR_DEPS_DIR=str(deps), OMP_NUM_THREADS="2")
    env.pop(backends.ENV, None)
    res = subprocess.run([PY, "-c", RUNNER, str(tmp_path / "jobs.json")],
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_with_torch(monkeypatch, jobs: list, suffix: str = ".torch.tif") -> dict:
    """The same jobs in this process, PyTorch forced; outputs beside the job's."""
    from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve
    from demsr.core.pipelines.voidrepair import VoidRepairRequest, voidrepair

    monkeypatch.setenv(backends.ENV, backends.TORCH)
    outs = {}
    for job in jobs:
        out = job["out"] + suffix
        if job["kind"] == "sr":
            superresolve(SuperResolveRequest(job["src"], out, scale=job["scale"], method="model",
                                             model_path=job.get("model"),
                                             tile_size=job.get("tile", 1024), batch_size=2,
                                             device="cpu"))
        else:
            voidrepair(VoidRepairRequest(job["src"], out, out + ".mask.tif", device="cpu"))
        outs[job["out"]] = out
    monkeypatch.delenv(backends.ENV)
    return outs


def test_bundled_onnx_copies_match_their_checkpoints():
    """Every bundled .pt has NAME.onnx exported from its very weights, with its header:
    a retrained model without a fresh export (`make onnx`) fails here."""
    pts = sorted(Path(bundled.MODELS_DIR).glob("*.pt"))
    assert len(pts) >= 7
    for pt in pts:
        ckpt = checkpoint.load(str(pt), prefer_onnx=False)
        onnx = onnx_model.read(onnx_model.onnx_path(str(pt)))
        h = onnx.header
        assert h["source_weights"] == trust.weights_digest(ckpt.state_dict), (
            f"{pt.name}: its .onnx was made from other weights; run `make onnx`")
        assert (h["architecture"], h["scale"]) == (ckpt.architecture, ckpt.scale)
        assert h["hparams"] == json.loads(json.dumps(ckpt.hparams))
        assert h["provenance"] == json.loads(json.dumps(ckpt.provenance))
        assert h["halo"] == ckpt.build().halo
        assert ckpt._matching_onnx() is not None


def test_declared_limits_read_without_torch_equal_the_classes():
    """The limits checked on an .onnx header without torch are the classes' own."""
    for name in ("fast", "gisr", "dshat"):
        cls, spec = registry.get(name), registry._declared(name)
        for attr in registry._DECLARED:
            assert getattr(spec, attr, None) == getattr(cls, attr, None), (name, attr)
        assert hasattr(spec, "check_extra") == hasattr(cls, "check_extra")


def test_fresh_profile_with_onnxruntime_only_matches_pytorch(tmp_path, dems_dir, monkeypatch):
    """No torch, ONNX Runtime only: Super-resolve at every factor route on the validation
    DEMs, Void repair with the bundled DS-HAT and a freshly trained model's .onnx, each
    within 1e-3 m of PyTorch's run of the same job."""
    jobs = []
    for k, name in enumerate(VALIDATION):
        src = tmp_path / f"v{k}.tif"
        dem_crop(dems_dir / name, src, 40, 40, 72)
        for f in (ALL_ROUTES if k == 0 else [1.5625, 2, 2.5]):
            jobs.append(dict(kind="sr", src=str(src), out=str(tmp_path / f"v{k}_x{f}.tif"),
                             scale=f, tile=64 if f == 2 else 1024))
    holed_dem(dems_dir / "pypi_lidar_dem_1m.tif", tmp_path / "holed.tif", 100, 100, 96, 96,
              seed=3)
    jobs.append(dict(kind="vr", src=str(tmp_path / "holed.tif"), out=str(tmp_path / "vr.tif"),
                     mask=str(tmp_path / "vr_mask.tif")))
    # a model trained here: Train DEM SR writes NAME.onnx beside NAME.pt
    from demsr.core.training.train import run_training

    hr = tmp_path / "hr.tif"
    dem_crop(dems_dir / "flopy_sagehen_10m.tif", hr, 0, 0, 160)
    trained = tmp_path / "trained.pt"
    run_training(tiny_sr_config(str(hr), trained, epochs=1, steps_per_epoch=5))
    assert Path(onnx_model.onnx_path(str(trained))).is_file()
    jobs.append(dict(kind="sr", src=str(tmp_path / "v1.tif"), out=str(tmp_path / "trained.tif"),
                     scale=2, model=str(trained)))

    # a .pt replaced after its .onnx was made: refused without torch, not run from the old copy
    shutil.copy(bundled.sr_model_path(2), tmp_path / "stale.pt")
    shutil.copy(onnx_model.onnx_path(bundled.sr_model_path(2)), tmp_path / "stale.onnx")
    with open(tmp_path / "stale.pt", "ab") as fh:
        fh.write(b"\0")  # another file (torch would still read it), so another hash
    stale = dict(kind="sr", src=str(tmp_path / "v1.tif"), out=str(tmp_path / "stale.tif"),
                 scale=2, model=str(tmp_path / "stale.pt"))
    got = run_without_torch(tmp_path, jobs + [stale])
    assert "made from another version of 'stale.pt'" in got.pop(stale["out"])
    assert not Path(stale["out"]).exists()
    assert got.pop("torch imported") is False
    log = got.pop("log")
    assert all(v == "ok" for v in got.values()), {k: v for k, v in got.items() if v != "ok"}
    assert any("ONNX Runtime" in line for line in log), log[:5]
    ref = run_with_torch(monkeypatch, jobs)
    for job in jobs:
        a, b = _read(job["out"]), _read(ref[job["out"]])
        assert np.array_equal(np.isnan(a), np.isnan(b)), job
        worst = float(np.nanmax(np.abs(a - b)))
        assert worst <= TOL, (job, worst)
        if job["kind"] == "vr":
            assert np.array_equal(_read(job["mask"]), _read(ref[job["out"]] + ".mask.tif"))


def test_tiles_two_at_a_time_equal_one_at_a_time(tmp_path, dems_dir, monkeypatch):
    """ONNX Runtime on the CPU: the engine computes two tiles at once, one thread each
    (Network.lanes), with the same output bit for bit as one tile after another on all the
    threads, at an exact factor, one finished by area average, the blend and one finished by
    GDAL's cubic spline (×3.25: GDAL warps in the lanes' threads)."""
    from demsr.core.monitor import Monitor
    from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve

    monkeypatch.setenv(backends.ENV, backends.ONNX)
    monkeypatch.setattr(backends, "_THREADS", 2)  # two lanes on any machine
    src = tmp_path / "dem.tif"
    dem_crop(dems_dir / VALIDATION[0], src, 40, 40, 150)
    for f in (1.5625, 2, 2.5, 3.25):
        outs = {}
        for lanes in (1, 2):
            monkeypatch.setattr(backends, "MAX_LANES", lanes)
            log = []
            out = tmp_path / f"x{f}_{lanes}.tif"
            superresolve(SuperResolveRequest(str(src), str(out), scale=f, method="model",
                                             tile_size=64), Monitor(info=log.append))
            plan = [line for line in log if "tiles of" in line]
            assert plan and ("2 at a time" in plan[0]) == (lanes == 2), plan
            outs[lanes] = _read(out)
        assert np.array_equal(outs[1], outs[2], equal_nan=True), f


def _tampered(tmp_path, change) -> str:
    src = onnx_model.onnx_path(bundled.sr_model_path(2))
    data = bytearray(Path(src).read_bytes())
    path = tmp_path / "x2.onnx"
    path.write_bytes(change(data))
    return str(path)


def test_tampered_onnx_is_refused(tmp_path, crop, monkeypatch):
    from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve

    def flip_weight(data):
        data[len(data) // 2] ^= 0x01  # one bit of a weight in the middle of the file
        return bytes(data)

    path = _tampered(tmp_path, flip_weight)
    with pytest.raises(DemSrError, match="damaged: its graph or weights"):
        onnx_model.read(path)
    monkeypatch.setenv(backends.ENV, backends.ONNX)
    src = crop("flopy_sagehen_10m.tif", 0, 0, 48, 48)
    with pytest.raises(DemSrError, match="damaged"):
        superresolve(SuperResolveRequest(str(src), str(tmp_path / "o.tif"), method="model",
                                         model_path=path))
    assert not (tmp_path / "o.tif").exists()

    def edit_header(new_hparams, rehash):
        def change(data):
            body = onnx_model.body_digest(bytes(data))
            meta = onnx_model.metadata(bytes(data))
            header = dict(json.loads(meta[onnx_model.HEADER_KEY]), hparams=new_hparams)
            record = json.loads(meta[onnx_model.INTEGRITY_KEY])
            if rehash:  # a crafted file: hashes made to match, settings out of range
                record["header"] = onnx_model.header_digest(header)
            fields = onnx_model._fields(bytes(data))
            kept = b"".join(bytes(data[s:e]) for n, s, e, _ in fields if n != 14)
            assert onnx_model.body_digest(kept) == body
            return (kept + onnx_model._metadata_entry(onnx_model.HEADER_KEY, json.dumps(header))
                    + onnx_model._metadata_entry(onnx_model.INTEGRITY_KEY, json.dumps(record)))
        return change

    hp = {"channels": 32, "blocks": 5, "back_projection": 3}
    with pytest.raises(DemSrError, match="header .* does not match"):
        onnx_model.read(_tampered(tmp_path, edit_header(hp, rehash=False)))
    with pytest.raises(DemSrError, match="outside what architecture 'fast' allows"):
        onnx_model.read(_tampered(tmp_path, edit_header({"channels": 10**6}, rehash=True)))


def test_a_stale_onnx_beside_a_checkpoint_is_not_used(tmp_path):
    """NAME.onnx made from other weights than NAME.pt: PyTorch runs the .pt."""
    pt = tmp_path / "m.pt"
    shutil.copy(bundled.sr_model_path(2), pt)
    shutil.copy(onnx_model.onnx_path(bundled.sr_model_path(4)), tmp_path / "m.onnx")
    net = checkpoint.load(str(pt)).build_for_inference("cpu", backends.ONNX)
    assert isinstance(net, backends.TorchNetwork)
    ckpt = checkpoint.load(str(pt), prefer_onnx=True)  # m.onnx records another .pt's hash
    assert ckpt.onnx is None and ckpt.state_dict
    shutil.copy(onnx_model.onnx_path(bundled.sr_model_path(2)), tmp_path / "m.onnx")
    net = checkpoint.load(str(pt)).build_for_inference("cpu", backends.ONNX)
    assert isinstance(net, backends.OnnxNetwork) and net.runtime.startswith("ONNX Runtime")


def test_without_either_runtime_the_message_names_both(tmp_path, crop):
    src = crop("flopy_sagehen_10m.tif", 0, 0, 32, 32)
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['onnxruntime'] = None; "
        "import demsr; "
        "from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve\n"
        "try:\n superresolve(SuperResolveRequest(sys.argv[1], sys.argv[2], method='model'))\n"
        "except Exception as e:\n print(type(e).__name__, e)")
    res = subprocess.run([PY, "-c", code, str(src), str(tmp_path / "o.tif")],
                         capture_output=True, text=True, timeout=120, env=system_python_env())
    assert res.stdout.startswith("RuntimeMissing"), res.stdout + res.stderr[-2000:]
    assert "ONNX Runtime" in res.stdout and "PyTorch" in res.stdout
    assert "onnxruntime" in res.stdout and "torch==" in res.stdout  # how to install either
    assert not (tmp_path / "o.tif").exists()


def test_deepness_export_carries_the_metadata_deepness_reads(tmp_path, dems_dir):
    import onnx
    import onnxruntime as ort

    ckpt = checkpoint.load(bundled.sr_model_path(2), prefer_onnx=False)
    path = tmp_path / "x2_deepness.onnx"
    onnx_model.export_deepness(ckpt, str(path), resolution_cm=100.0, tile=128)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["model_type"] == "Superresolution"
    assert float(meta["resolution"]) == 100.0 and meta["tile_size"] == "128"
    assert json.loads(meta["standardization_mean"]) == [0.0]
    assert json.loads(meta["standardization_std"]) == pytest.approx([1 / 255])
    assert meta["scale_factor"] == "2"
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 1, 128, 128]
    # what Deepness feeds: (x/255 − mean)/std of the raster's values = the elevations
    tile = dem_crop(dems_dir / "pypi_lidar_dem_1m.tif", tmp_path / "t.tif", 0, 0, 128)
    x = ((tile / 255.0 - 0.0) / (1 / 255.0)).astype(np.float32)[None, None]
    got = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    with torch.inference_mode():
        ref = ckpt.build()(torch.from_numpy(x)).numpy()
    assert got.shape == (1, 1, 256, 256)
    assert float(np.abs(got - ref).max()) <= TOL
    with pytest.raises(DemSrError, match="Deepness runs super-resolution"):
        onnx_model.export_deepness(checkpoint.load(bundled.DSHAT_MODEL), str(path), 100.0)


def test_backend_choice_keeps_device_meaning(monkeypatch):
    """DEVICE=cpu/auto on a machine without a GPU: ONNX Runtime when installed; DEVICE=cuda
    still means a CUDA GPU (PyTorch), never a silent CPU run."""
    from demsr.core.devices import select_device

    monkeypatch.delenv(backends.ENV, raising=False)
    cpu = select_device("cpu")
    assert cpu.backend == backends.ONNX and "ONNX Runtime" in cpu.description
    assert select_device("cpu", backend="torch").backend == backends.TORCH
    if not torch.cuda.is_available():
        with pytest.raises(DemSrError, match="DEVICE=cuda"):
            select_device("cuda")
    monkeypatch.setenv(backends.ENV, "torch")
    assert "PyTorch" in select_device("auto").description


@pytest.mark.parametrize("module", ["onnxruntime", "torch"])
def test_runtimes_are_found_without_importing_them(module):
    """Which runtimes are installed is read from package metadata: checking costs no import
    (torch's is 1.3–1.6 s)."""
    key = backends.ONNX if module == "onnxruntime" else backends.TORCH
    code = ("import sys; import demsr; "
            "from demsr.core import backends; v = backends.installed_version(sys.argv[1]); "
            "print(bool(v), sys.argv[2] in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code, key, module],
                         capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["True", "False"], res.stdout + res.stderr[-2000:]
