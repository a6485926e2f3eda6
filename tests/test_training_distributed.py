"""``multimodal-cat train`` under a 2-process distributed launch (gloo on CPU).

``accelerate launch --multi_gpu`` starts its processes with ``torch.distributed.run``; this
runs the same launcher with two CPU processes, so the Trainer wraps the model in DDP exactly as
on several GPUs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from multimodal_cat.modeling import MultimodalCatModel
from tests.test_training_trainer import _feed


@pytest.mark.parametrize("frozen", [False, True])
def test_train_runs_in_two_processes(
    tmp_path: Path, frozen: bool, tiny_encoders: tuple[str, str]
) -> None:
    vision_dir, text_dir = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path, 32)).to_csv(feed, index=False)
    out = tmp_path / "model"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["-m", "multimodal_cat.cli.main", "train", "--feed", str(feed)]
    command += ["--text-encoder", str(text_dir), "--vision-encoder", str(vision_dir)]
    command += ["--projection-dim", "16", "--fusion-hidden-dim", "24", "--output_dir", str(out)]
    command += ["--max_steps", "4", "--per_device_train_batch_size", "4", "--use_cpu"]
    command += ["--report_to", "none", "--save_strategy", "no", "--logging_steps", "1"]
    if frozen:
        command += ["--freeze-encoders", "--embedding-cache", str(tmp_path / "cache")]
        command += ["--image-only-views", "0", "--weak-text-views", "0"]  # 32 rows per epoch
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parent.parent))
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    # 32 rows, 2 processes x 4 rows per step: 4 steps make one epoch (one process: half).
    assert "'epoch': '1'" in done.stderr + done.stdout, (done.stderr + done.stdout)[-3000:]
    model = MultimodalCatModel.from_pretrained(out)
    assert model.config.freeze_encoders is frozen
