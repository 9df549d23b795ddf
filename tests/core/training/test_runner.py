"""The training runner's shared parts: configs per task, the dispatch, the resume signature."""
import dataclasses

import pytest

import demsr  # noqa: F401 - puts the private torch folder on sys.path

from demsr.core.errors import DemSrError  # noqa: E402
from demsr.core.training.config import (DSHATTrainConfig, SRTrainConfig,  # noqa: E402
                                        TrainConfig)
from demsr.core.training.state import resume_signature  # noqa: E402
from demsr.core.training.train import run_training  # noqa: E402


def _fields(cls) -> set:
    return {f.name for f in dataclasses.fields(cls)}


def test_each_config_has_only_the_fields_its_task_uses():
    shared = _fields(TrainConfig)
    sr, dshat = _fields(SRTrainConfig) - shared, _fields(DSHATTrainConfig) - shared
    assert {"scale", "degradation", "loss", "coarser_copies"} <= sr
    assert {"factors", "void_coverage", "references", "spectral"} <= dshat
    assert sr & dshat == {"gradient_weight"}  # both have one, with their own default
    assert SRTrainConfig.gradient_weight != DSHATTrainConfig.gradient_weight


def test_a_config_without_a_task_is_refused(tmp_path):
    with pytest.raises(DemSrError, match="No training for a TrainConfig"):
        run_training(TrainConfig(inputs=["x.tif"], output_model=str(tmp_path / "m.pt")))


def test_resume_signature_follows_the_settings_not_the_output(tmp_path):
    a = SRTrainConfig(inputs=["b.tif", "a.tif"], output_model=str(tmp_path / "m.pt"))
    same = dataclasses.replace(a, inputs=["a.tif", "b.tif"], output_model="other.pt",
                               device="cpu", resume=False)
    assert resume_signature(a, hparams={"c": 8}) == resume_signature(same, hparams={"c": 8})
    assert resume_signature(a, hparams={"c": 8}) != resume_signature(a, hparams={"c": 16})
    for change in (dict(seed=1), dict(scale=3), dict(coarser_copies=(2,)),
                   dict(learning_rate=1e-4)):
        assert resume_signature(dataclasses.replace(a, **change)) != resume_signature(a), change
