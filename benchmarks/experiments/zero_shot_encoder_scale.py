"""Do the engine's settings (fitted on MiniLM) hold for another text encoder once its cosines are
put on MiniLM's scale? (``multimodal_cat/zero_shot/scale.py``)

Multilingual E5 crowds its cosines into a narrow band (spread 0.024 against MiniLM's 0.124
over the names of Google's two top levels), so with the same weights, temperature and
confidence model its probabilities are flat and its confidences collapse. The scale multiplies
the embedding term of every score by MiniLM's spread over the encoder's (no setting: both
spreads are measured on the same fixed names). Scored with the package predictor (defaults) on
Flipkart: 1,500 dev titles (seed 0) and the 2,563 test titles, scale off and on, for
``multilingual-e5-small`` and for MiniLM (whose scale is 1: unchanged).

Usage (about 10 minutes on 2 busy cores, most of it E5 encoding)::

    python -m benchmarks.experiments.zero_shot_encoder_scale
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import multimodal_cat.predictors.zero_shot as engine
from benchmarks.fashion_model import RESULTS, environment, made_by, write_results
from benchmarks.zero_shot_general_eval import load_flipkart
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.calibration import expected_calibration_error
from multimodal_cat.zero_shot.scale import cosine_scale

NAME = "zero_shot_encoder_scale"
ENCODERS = ("multilingual-e5-small", "minilm")
DEV_ROWS, SEED = 1500, 0


def figures(tax: Taxonomy, titles: list[str], truth: list[str], encoder: str) -> dict:
    """Exact, top level, share at >= 0.9 and wrong among them, mean confidence, ECE."""
    answers = ZeroShotCategorizer(tax, text_encoder=encoder, tags=False).predict(titles)
    right = np.array([a.category_id == t for a, t in zip(answers, truth, strict=True)])
    roots = [tax[t].full_path.split(" > ")[0] for t in truth]
    top = np.mean([a.category_path.split(" > ")[0] == r for a, r in zip(answers, roots, strict=True)])
    conf = np.array([a.confidence for a in answers])
    sure = conf >= 0.9
    return {
        "exact": round(float(right.mean()), 4), "top_level": round(float(top), 4),
        "share_at_0_9": round(float(sure.mean()), 4),
        "wrong_at_0_9": round(float(1 - right[sure].mean()), 4) if sure.any() else None,
        "mean_confidence": round(float(conf.mean()), 4),
        "ece": round(float(expected_calibration_error(conf, right)), 4),
    }  # fmt: skip


def markdown(result: dict) -> str:
    lines = ["# Text encoders on MiniLM's cosine scale (zero-shot, Flipkart)", "", f"Made by {result['made_by']}.", "",
             f"Scales: {result['scales']}.", "",
             "| rows | encoder | scale | exact | top level | share >= 0.9 | wrong among them | mean confidence | ECE |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for key, r in result["runs"].items():
        rows, encoder, scale = key.split("/")
        lines.append(f"| {rows} | {encoder} | {scale} | {r['exact']} | {r['top_level']} | {r['share_at_0_9']} | "
                     f"{r['wrong_at_0_9']} | {r['mean_confidence']} | {r['ece']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    env = environment("benchmarks.experiments.zero_shot_encoder_scale", seed=SEED)
    tax, rows = load_flipkart(args.data)
    dev = rows[~rows["test"]].sample(DEV_ROWS, random_state=SEED)
    test = rows[rows["test"]]
    sets = {"dev": dev, "test": test}
    runs, scales = {}, {}
    for mode in ("off", "on"):
        engine.cosine_scale = cosine_scale if mode == "on" else (lambda *args: 1.0)
        for encoder in ENCODERS:
            for name, part in sets.items():
                key = f"{name}/{encoder}/{mode}"
                runs[key] = figures(tax, part["title"].astype(str).tolist(), part["category_id"].tolist(), encoder)
                print(key, runs[key], flush=True)
    engine.cosine_scale = cosine_scale
    from multimodal_cat.align.embeddings import resolve_text_encoder

    scales = {e: round(cosine_scale(resolve_text_encoder(e)), 4) for e in ENCODERS}
    result = {"environment": env, "made_by": made_by(env), "scales": scales, "runs": runs}
    write_results(RESULTS / NAME, result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
