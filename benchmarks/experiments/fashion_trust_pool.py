"""How should photo trust pool the fused and the title's opinions? (issue 27)

Trains the frozen-head recipe's head on the two carved splits of ``benchmarks/fashion_trust.py``
(``carved_future``: Fall photos -> other seasons' photos; ``carved_withheld``: 10 types' photos
withheld) and scores title + photo, title, brand word + photo and photo alone on their
validation rows with three pools of ``p_fused`` and ``p_text`` (5-photo guard, weight 0.4 and
0.6): ``linear`` (``w p_f + (1-w) p_t``), ``confidence`` (each weight times that opinion's best
probability, renormalised) and ``geometric`` (``softmax(w log p_f + (1-w) log p_t)``).
``worst_gap`` is title + photo minus title only on the worst top-level slice.

Writes ``benchmarks/results/fashion_trust_pool.{json,md}``. About 10 minutes on 2 busy cores::

    python -m benchmarks.experiments.fashion_trust_pool
"""

from __future__ import annotations

import json
import time
from typing import Any

import torch

import multimodal_cat.modeling.modeling as modeling
from benchmarks import fashion_trust as ft
from benchmarks.fashion_model import RESULTS, environment, made_by, write_results
from benchmarks.fashion_model_data import load_table
from benchmarks.fashion_views import head_config, outputs, view_arrays
from multimodal_cat.modeling import trust

POOLS = ("linear", "confidence", "geometric")
WEIGHTS = (0.4, 0.6)
INPUTS = ("title_image", "title", "brand_image", "image")


def pool(p_fused: torch.Tensor, p_text: torch.Tensor, weight: float, mode: str) -> torch.Tensor:
    if mode == "linear":
        return weight * p_fused + (1 - weight) * p_text
    if mode == "confidence":
        return trust.confidence_pool(p_fused, p_text, weight)
    logs = weight * torch.log(p_fused.clamp_min(1e-12)) + (1 - weight) * torch.log(p_text.clamp_min(1e-12))
    return torch.softmax(logs, -1)


def trusted(mode: str):
    """``trusted_leaf_logits`` with another pool (same photo-count guard)."""

    def leaf_logits(fused, text, both, counts, min_photos, weight):
        if not bool(both.any()):
            return fused
        p_fused, p_text = torch.softmax(fused.float(), -1), torch.softmax(text.float(), -1)
        pooled = pool(p_fused, p_text, weight, mode)
        use_text = torch.zeros_like(both)
        if counts is not None and min_photos > 0:
            use_text = trust.photo_scarce_rows(p_text.argmax(-1), counts, min_photos)
            use_text |= trust.photo_scarce_rows(pooled.argmax(-1), counts, min_photos)
        answer = torch.where(use_text.unsqueeze(-1), p_text, pooled)
        return torch.where(both.unsqueeze(-1), torch.log(answer.clamp_min(1e-12)).to(fused.dtype), fused)

    return leaf_logits


def main() -> int:
    torch.set_num_threads(1)
    env = environment("benchmarks.experiments.fashion_trust_pool")
    table = load_table()
    meta = ft.load_meta(table)
    splits = ft.build_splits(table, meta)
    config = head_config(table)
    result: dict[str, Any] = {"environment": env, "grid": {}}
    for name in ("carved_future", "carved_withheld"):
        began = time.perf_counter()
        model = ft.train_split(table, splits[name], config)
        print(f"{name} trained in {time.perf_counter() - began:.0f} s", flush=True)
        rows = splits[name].eval
        for mode in POOLS:
            modeling.trusted_leaf_logits = trusted(mode)
            for weight in WEIGHTS:
                ft._set_trust(model, 5, weight)
                out = {i: outputs(model, view_arrays(table, rows, i)) for i in INPUTS}
                record = {i: round(ft._acc(table, rows, out[i][0]), 4) for i in INPUTS}
                record["worst_gap"] = round(ft.worst_gap(ft.slices(table, meta, splits[name], out),
                                                         ft.SLACK_WITHHELD), 4)
                result["grid"][f"{name}/{mode}/{weight}"] = record
                print(name, mode, weight, record, flush=True)
    result["made_by"] = "benchmarks/experiments/fashion_trust_pool.py, " + made_by(env)
    lines = ["# Photo trust: which pool (issue 27)", "", f"Made by {result['made_by']}.", "",
             "| split / pool / weight | title + photo | title | brand + photo | photo | worst gap |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {key} | {r['title_image']} | {r['title']} | {r['brand_image']} | {r['image']} | {r['worst_gap']} |"
              for key, r in result["grid"].items()]
    write_results(RESULTS / "fashion_trust_pool", result, "\n".join(lines) + "\n")
    print(json.dumps(result["grid"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
