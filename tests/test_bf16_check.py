"""One bf16 check for every command: bf16 only where the hardware runs it natively."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from transformers import Trainer
from transformers.trainer_utils import TrainOutput

import multimodal_cat.encoders._base as base
from multimodal_cat.cli.main import main
from multimodal_cat.encoders._base import use_bf16
from tests.test_training_trainer import _feed


@pytest.fixture
def no_native_bf16(monkeypatch):
    monkeypatch.setattr(base, "native_bf16", lambda device="cpu": False)


def test_use_bf16_warns_and_falls_back_where_bf16_is_emulated(no_native_bf16):
    with pytest.warns(UserWarning, match="no native bf16.*fp32 is used instead"):
        assert use_bf16(True) is False
    assert use_bf16(False) is False


def test_use_bf16_keeps_it_where_native(monkeypatch):
    monkeypatch.setattr(base, "native_bf16", lambda device="cpu": True)
    assert use_bf16(True) is True


def test_checkpoint_predictor_and_train_fall_back_to_fp32(no_native_bf16, tmp_path: Path, tiny_encoders, monkeypatch):
    from multimodal_cat.modeling.testing import tiny_model, tiny_processor
    from multimodal_cat.predictors.checkpoint import ModelPredictor

    with pytest.warns(UserWarning, match="no native bf16"):
        predictor = ModelPredictor(tiny_model(vision=None), tiny_processor(tmp_path / "p"), bf16=True)
    assert predictor.bf16 is False and predictor.embedder.bf16 is False
    seen = []
    monkeypatch.setattr(Trainer, "train", lambda self, *a, **k: seen.append(self.args.bf16)
                        or TrainOutput(0, 0.0, {"train_runtime": 0.0}))
    monkeypatch.setattr(Trainer, "save_model", lambda self, *a, **k: None)
    _, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path)).drop(columns="image").to_csv(feed, index=False)
    flags = ["train", "--feed", str(feed), "--text-encoder", text, "--freeze-encoders", "--use_cpu", "--bf16"]
    flags += ["--report_to", "none", "--embedding-cache", "none", "--output_dir", str(tmp_path / "m")]
    with pytest.warns(UserWarning, match="no native bf16"):
        assert main(flags) == 0
    assert seen == [False]
