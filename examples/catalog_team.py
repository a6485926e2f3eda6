"""A catalog team's first hour with multimodal_cat, on the fashion products as they come.

The DataFrame is read with pandas and handed over untouched: its title column is called
``productDisplayName`` and its images are paths relative to the data folder, and the library
finds both (``image_root`` says where the paths start). Four steps:

1. zero-shot into the team's own tree (built from the label columns): ``predict(as_frame=True)``;
2. ``evaluate`` the zero-shot answers against the labels, photos included;
3. ``Categorizer.fit`` the frozen-head recipe on 1,000 labelled rows;
4. ``score`` and ``evaluate`` the fitted model on the same test rows.

Split: the project's protocol (``id % 5 == 0`` is test), the first rows of each side.

Run:
    python examples/catalog_team.py                      # real offline encoders (minutes)
    python examples/catalog_team.py --results out.json   # also write the figures
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from multimodal_cat import Categorizer, Taxonomy

LEVELS = ["masterCategory", "subCategory", "articleType"]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The example's options (data folder, sizes, encoders)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA, help="folder with styles_with_images.csv")
    p.add_argument("--train-rows", type=int, default=1000)
    p.add_argument("--test-rows", type=int, default=500)
    p.add_argument("--text-encoder", default="minilm")
    p.add_argument("--vision-encoder", default="dinov2-small")
    p.add_argument("--epochs", type=float, default=None, help="default: the frozen-head recipe's")
    p.add_argument("--output-dir", type=Path, default=None, help="checkpoint folder (default: temporary)")
    p.add_argument("--results", type=Path, default=None, help="write the figures here as JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the four steps; returns (and prints) the figures."""
    args = parse_args(argv)
    frame = pd.read_csv(args.data / "styles_with_images.csv")  # as it comes
    test = frame[frame["id"] % 5 == 0].head(args.test_rows)
    train = frame[frame["id"] % 5 != 0].head(args.train_rows)
    label = ",".join(LEVELS)
    tree = Taxonomy.from_paths(sorted(set(frame[LEVELS].astype(str).agg(" > ".join, axis=1))), name="fashion")
    figures: dict = {"train_rows": len(train), "test_rows": len(test), "tree_nodes": len(tree)}

    started = time.monotonic()
    zero_shot = Categorizer.zero_shot(tree, text_encoder=args.text_encoder)
    table = zero_shot.predict(test, image_root=args.data, as_frame=True)
    print(table[["id", "category_path", "confidence", "status"]].head())
    report = zero_shot.evaluate(test, label, image_root=args.data)
    figures["zero_shot"] = _summary(report.metrics, started)

    started = time.monotonic()
    options = {"num_train_epochs": args.epochs} if args.epochs else {}
    with tempfile.TemporaryDirectory() as scratch:
        fitted = Categorizer.fit(
            train, label=LEVELS, tags=["gender", "baseColour"], image_root=args.data, taxonomy=tree,
            output_dir=args.output_dir or Path(scratch) / "ckpt", eval_split=0.1, seed=0,
            text_encoder=args.text_encoder, vision_encoder=args.vision_encoder, **options,
        )
        figures["fit_seconds"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        figures["fitted_score"] = fitted.score(test, label, image_root=args.data)
        report = fitted.evaluate(test, label, image_root=args.data)
        figures["fitted"] = _summary(report.metrics, started)
        titles_only = fitted.evaluate(test.drop(columns=["image"]), label)
        figures["fitted_titles_only"] = _summary(titles_only.metrics, started)
    print(json.dumps(figures, indent=2))
    if args.results:
        _write_results(args.results, figures)
    return figures


def _write_results(path: Path, figures: dict) -> None:
    """The figures as JSON (with how they were made) and as a markdown table beside it."""
    import os
    import subprocess
    import sys
    from datetime import datetime, timezone

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    made = {"command": " ".join(["python", *sys.argv]), "commit": commit, "seed": 0,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "load_average": [round(x, 2) for x in os.getloadavg()]}
    path.write_text(json.dumps({**made, **figures}, indent=2) + "\n", encoding="utf-8")
    rows = [("zero-shot into the labels' tree", figures["zero_shot"]),
            (f"fit on {figures['train_rows']:,} rows, title + photo", figures["fitted"]),
            (f"fit on {figures['train_rows']:,} rows, title only", figures["fitted_titles_only"])]
    lines = [f"# examples/catalog_team.py ({figures['test_rows']:,} fashion test rows)", "",
             f"`{made['command']}` at `{commit}`, {made['date']}, load average {made['load_average']}.", "",
             "| model | leaf acc | leaf macro-F1 | level 1 | hier. F1 | ECE |", "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {m['leaf_accuracy']} | {m['leaf_macro_f1']} | {m['level1_accuracy']} | "
              f"{m['hierarchical_f1']} | {m['ece']} |" for name, m in rows]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _summary(metrics: dict, started: float) -> dict:
    keys = ("leaf_accuracy", "leaf_macro_f1", "level1_accuracy", "hierarchical_f1", "ece")
    return {**{k: round(float(metrics[k]), 4) for k in keys}, "seconds": round(time.monotonic() - started, 1)}


if __name__ == "__main__":
    main()
