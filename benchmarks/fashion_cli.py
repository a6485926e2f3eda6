"""Does ``multimodal-cat train`` with its defaults give what ``fashion_model.py`` reports?

The model benchmark trains its heads with a plain torch loop on cached embeddings. A user runs
the command line instead (the Hugging Face ``Trainer``, the frozen-head recipe, the library's own
embedding cache). This benchmark writes the same split as two feeds (train: every non-test
product of ``styles.csv``, with its image path where it has one; test: the imaged products with
``id % 5 == 0``), then runs

    multimodal-cat train --feed train.csv --eval-feed test.csv --freeze-encoders \\
        --vision-encoder dinov2-small --text-encoder minilm \\
        --category-column masterCategory,subCategory,articleType \\
        --tag-column gender --tag-column baseColour --tag-column season --tag-column usage \\
        --embedding-cache CACHE --output_dir MODEL --bf16 --use_cpu --save_strategy no \\
        --report_to none --seed S --disable_tqdm true

with no other training flag: first with an empty embedding cache (both towers run over every
product), then once per seed with the cache warm. In the same run, the model benchmark's torch loop
trains its chosen spec on the same rows from the benchmark's own cache, so accuracy and head
seconds sit side by side and speed is a ratio measured under the same load.

Usage (from the repo root; about 20 minutes on 2 cores, most of it DINOv2 over 9.6k images)::

    python -m benchmarks.fashion_cli
    python -m benchmarks.fashion_cli --limit 3000 --out /tmp/cli_smoke   # smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.fashion_data import DATA_DIR
from benchmarks.fashion_model import RESULTS, environment, made_by, output_stem, write_results
from benchmarks.fashion_model_eval import METRIC_KEYS

METRICS = tuple(key for key in METRIC_KEYS if key != "tag_macro_f1")  # the CLI's columns
TAGS = ("gender", "baseColour", "season", "usage")


def write_feeds(folder: Path, limit: int | None = None) -> dict[str, int]:
    """The benchmark split as ``train.csv`` / ``test.csv`` feeds; returns row counts."""
    styles = pd.read_csv(DATA_DIR / "styles.csv", on_bad_lines="skip")
    images = pd.read_csv(DATA_DIR / "styles_with_images.csv", on_bad_lines="skip")
    frame = styles.merge(images[["id", "image"]], on="id", how="left")
    if limit and limit < len(frame):  # every k-th product, as fashion_model_data.load_table
        frame = frame.iloc[:: max(1, len(frame) // limit)]
    frame["image"] = [str(DATA_DIR / p) if isinstance(p, str) else "" for p in frame["image"]]
    frame = frame.rename(columns={"productDisplayName": "title"})
    test = (frame["image"] != "") & (frame["id"] % 5 == 0)
    frame[~test].to_csv(folder / "train.csv", index=False)
    frame[test].to_csv(folder / "test.csv", index=False)
    return {
        "train": int((~test).sum()),
        "train_imaged": int(((~test) & (frame["image"] != "")).sum()),
        "test": int(test.sum()),
    }


def cli_command(folder: Path, cache: Path, seed: int | str) -> list[str]:
    """The ``multimodal-cat train`` call: data flags only, so the recipe's defaults apply."""
    command = [sys.executable, "-m", "multimodal_cat", "train"]
    command += ["--feed", str(folder / "train.csv"), "--eval-feed", str(folder / "test.csv")]
    command += ["--freeze-encoders", "--vision-encoder", "dinov2-small", "--text-encoder", "minilm"]
    command += ["--category-column", "masterCategory,subCategory,articleType"]
    for tag in TAGS:
        command += ["--tag-column", tag]
    command += ["--embedding-cache", str(cache), "--output_dir", str(folder / "model")]
    command += ["--bf16", "--use_cpu", "--save_strategy", "no", "--report_to", "none"]
    return command + ["--seed", str(seed), "--disable_tqdm", "true"]


def run_cli(command: list[str], log: Path) -> dict:
    """Run the command; its printed metrics plus wall seconds."""
    start = time.perf_counter()
    with log.open("w") as err:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"multimodal-cat train failed ({done.returncode}):\n{tail}")
    printed = done.stdout
    metrics = json.loads(printed[printed.rindex("{\n") :])
    return {"wall_seconds": round(wall, 1), **metrics}


def loop_reference(limit: int | None, seeds: list[int]) -> dict[str, dict]:
    """The model benchmark's torch loop, its chosen spec, same rows, one run per seed."""

    from benchmarks.fashion_model_data import load_table
    from benchmarks.fashion_model_eval import evaluate
    from benchmarks.fashion_model_train import HeadSpec, predict, train_head

    spec = HeadSpec.from_dict(
        json.loads((RESULTS / "fashion_model.json").read_text())["chosen_spec"]
    )
    table = load_table(limit=limit)
    train = np.flatnonzero(table.split != "test")
    test = table.rows("test")
    runs = {}
    for seed in seeds:
        model, seconds = train_head(table, train, spec, seed=seed)
        probs, tag_logits = predict(model, table, test)
        metrics = evaluate(table, test, probs, tag_logits)
        runs[f"torch loop, seed {seed}"] = {"head_seconds": round(seconds, 1), **metrics}
    return runs


def mean_row(runs: dict[str, dict], prefix: str) -> dict:
    """Mean of the runs whose name starts with ``prefix`` (metrics and head seconds)."""
    chosen = [run for name, run in runs.items() if name.startswith(prefix)]
    keys = [f"eval_{k}" for k in METRICS] + list(METRICS) + ["train_runtime", "head_seconds"]
    return {
        key: round(float(np.mean([run[key] for run in chosen])), 4)
        for key in keys
        if chosen and all(key in run for run in chosen)
    }


def markdown(result: dict) -> str:
    """Side-by-side table: the CLI runs (cold, then warm per seed), the loop per seed, means."""
    env = result["environment"]
    head = ["run", "wall s", "head s", *METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, run in result["runs"].items():
        seconds = run.get("train_runtime", run.get("head_seconds"))
        cells = [name, f"{run['wall_seconds']:.0f}" if "wall_seconds" in run else ""]
        cells.append(f"{seconds:.1f}")
        for key in METRICS:
            value = run.get(f"eval_{key}", run.get(key))
            cells.append("" if value is None else f"{value:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    rows = result["rows"]
    return (
        "\n".join(
            [
                "# Fashion benchmark through the command line (`multimodal-cat train`, defaults)",
                "",
                f"{made_by(env)}, {env['torch_threads']} torch threads.",
                "",
                f"Feeds: {rows['train']} training products ({rows['train_imaged']} with an image), "
                f"{rows['test']} test products (imaged, `id % 5 == 0`), the split of "
                "`fashion_model.py`. Command (no training flags: the frozen-head recipe applies):",
                "",
                f"    {result['command']}",
                "",
                *lines,
                "",
                "`wall s` = the whole command (loading, both towers over the feeds, training, "
                "evaluation); `head s` = the Trainer's `train_runtime` (the loop's own seconds for "
                "the reference). `cold cache` starts from an empty embedding cache, `warm cache` "
                "reruns the same command (one run per seed). `torch loop` = "
                "`fashion_model_train.train_head` with the model benchmark's chosen spec on the "
                "benchmark's cached embeddings, same seeds, same torch threads. `mean` rows "
                "average the seeds' metrics (not their probabilities). Mean Trainer head seconds "
                f"/ mean loop head seconds: {result['trainer_over_loop']}.",
            ]
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="about N products, every k-th (smoke run)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run per seed (warm cache)"
    )
    parser.add_argument("--out", help="output stem (default: benchmarks/results/fashion_cli)")
    args = parser.parse_args(argv)
    import torch

    env = environment("benchmarks.fashion_cli", limit=args.limit)
    with tempfile.TemporaryDirectory(prefix="fashion_cli_") as tmp:
        folder = Path(tmp)
        rows = write_feeds(folder, args.limit)
        runs = {}
        plan = [("cold cache", args.seeds[0])] + [("warm cache", seed) for seed in args.seeds]
        for cache_state, seed in plan:
            name = f"{cache_state}, seed {seed}"
            command = cli_command(folder, folder / "cache", seed)
            print(f"[cli] {name}: {' '.join(command)}", flush=True)
            runs[name] = run_cli(command, folder / f"run_{len(runs)}.log")
            print(f"[cli] {name}: {json.dumps(runs[name])}", flush=True)
        torch.set_num_threads(env["torch_threads"])
        runs.update(loop_reference(args.limit, args.seeds))
        runs["warm cache, mean"] = mean_row(runs, "warm cache, seed")
        runs["torch loop, mean"] = mean_row(runs, "torch loop, seed")
    shown = [
        Path(part).name if part.startswith(tmp) else part
        for part in cli_command(folder, folder / "cache", "S")[1:]
    ]
    result = {
        "environment": env,
        "rows": rows,
        "command": " ".join(["python", *shown]),
        "runs": runs,
        "trainer_over_loop": round(
            runs["warm cache, mean"]["train_runtime"] / runs["torch loop, mean"]["head_seconds"],
            2,
        ),
    }
    write_results(output_stem("fashion_cli", args.out, quick=False), result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
