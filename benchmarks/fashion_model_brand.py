"""A brand-robust fused model for the brand-only test (titles cut to their first word).

The fused model chosen on validation keeps full-title accuracy first, so it trains without the
brand augmentation. This second fused model takes the same settings but swaps the title
embedding of a share of imaged training rows for the brand-only embedding, and may show the
imaged rows more often; the share and the repeats are the pair with the best brand-only
validation accuracy in the search log (never test).

Example:
    nice -n 5 python -m benchmarks.fashion_model_brand   # adds rows to results/fashion_model.*
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmarks.fashion_model_data import FashionTable
from benchmarks.fashion_model_eval import evaluate
from benchmarks.fashion_model_train import HeadSpec, predict, predict_ensemble, train_ensemble

BRAND_AXES = ("brand_share", "imaged_repeats")


def best_brand_setting(spec: HeadSpec, search_log: list[dict]) -> dict:
    """Brand share and imaged-row repeats with the best brand-only validation accuracy.

    Only runs that share the chosen settings on every other axis compete.
    """
    fixed = {k: v for k, v in spec.to_dict().items() if k not in ("modalities", *BRAND_AXES)}
    candidates = [
        (entry["val_brand_leaf_accuracy"], {k: entry["spec"][k] for k in BRAND_AXES})
        for entry in search_log
        if "val_brand_leaf_accuracy" in entry
        and all(entry["spec"].get(k) == v for k, v in fixed.items())
        and entry["spec"]["brand_share"] > 0
    ]
    if not candidates:
        raise ValueError(
            "The search log has no brand-augmented run with the chosen settings; run the search "
            "first."
        )
    return max(candidates, key=lambda c: c[0])[1]


def brand_robust(
    table: FashionTable, spec: HeadSpec, setting: dict, seeds: tuple[int, ...]
) -> tuple[list[dict], list[float]]:
    """Train the augmented fused model on train + val; score test with titles and brands."""
    augmented = dataclasses.replace(spec, **setting)
    rows = np.flatnonzero(table.split != "test")
    test = table.rows("test")
    models, seconds = train_ensemble(table, rows, augmented, seeds)
    out = []
    name = f"fused + brand augmentation {augmented.brand_share}"
    if augmented.imaged_repeats > 1:
        name += f", imaged rows x{augmented.imaged_repeats}"
    for kind in ("titles", "brands"):
        single = evaluate(table, test, *predict(models[0], table, test, kind))
        out.append(_row(f"{name} (seed {seeds[0]})", kind, single, seconds[0]))
        if len(models) > 1:
            ens = evaluate(table, test, *predict_ensemble(models, table, test, kind))
            out.append(_row(f"{name} ({len(models)}-seed mean)", kind, ens, sum(seconds)))
    return out, [round(s, 2) for s in seconds]


def _row(model: str, setting: str, metrics: dict, seconds: float) -> dict:
    return {
        "model": model,
        "setting": setting,
        "trained_on": "all train+val rows",
        "head_seconds": round(seconds, 2),
        **metrics,
    }


def main(argv: list[str] | None = None) -> int:
    """Add the brand-robust model's rows to an existing ``fashion_model.json`` / ``.md``."""
    import argparse

    import torch

    from benchmarks.fashion_model import RESULTS, markdown
    from benchmarks.fashion_model_data import load_table

    parser = argparse.ArgumentParser(description="brand-robust fused model (fashion)")
    parser.add_argument("--results", default=str(RESULTS / "fashion_model.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    path = Path(args.results)
    result = json.loads(path.read_text())
    spec = HeadSpec.from_dict(result["chosen_spec"])
    setting = best_brand_setting(spec, result["search_log"])
    seeds = tuple(result["seeds"])
    table = load_table(limit=6000 if result["environment"]["quick"] else None)
    rows, seconds = brand_robust(table, spec, setting, seeds)
    result["rows"] = [r for r in result["rows"] if "brand augmentation" not in r["model"]] + rows
    result["brand_model"] = {
        **setting,
        "head_train_seconds": seconds,
        "command": "python -m benchmarks.fashion_model_brand " + " ".join(argv or []),
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path.write_text(json.dumps(result, indent=2) + "\n")
    path.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
