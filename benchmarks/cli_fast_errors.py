"""How fast the command line answers a mistake, as a ratio to importing torch and transformers.

Each case runs ``python -m multimodal_cat ...`` with one mistake (a missing model folder, feed,
image folder, an unknown tree) in a fresh process and times it until it exits (code 2 expected).
The baseline, timed in the same run, is a fresh process that only imports torch and
transformers: what every answer cost before the arguments were checked first. Each figure is
the best of ``--repeats`` runs (the least disturbed by other work on a shared machine); each
case also records whether torch was imported (``-X importtime``).

Example:
    python -m benchmarks.cli_fast_errors             # writes benchmarks/results/cli_fast_errors.*
    python -m benchmarks.cli_fast_errors --quick      # one repeat, results in a temp folder
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.fashion_model import environment, made_by, output_stem, write_results

FEED = Path(__file__).resolve().parents[1] / "examples" / "products.csv"
CASES = {
    "missing model folder": ["categorize", str(FEED), "--model", "./missing-folder"],
    "missing feed": ["categorize", "missing-feed.csv"],
    "unknown taxonomy": ["categorize", str(FEED), "--taxonomy", "amazon"],
    "missing image folder": ["categorize", str(FEED), "--image-root", "./no-images"],
    "train, missing feed": ["train", "--feed", "missing-feed.csv", "--output_dir", "m"],
}


def timed(command: list[str], cwd: str) -> tuple[float, int, str]:
    """Seconds until ``command`` exits, its exit code and its stderr."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    return time.perf_counter() - start, done.returncode, done.stderr


def best(command: list[str], cwd: str, repeats: int) -> tuple[float, int, str]:
    runs = [timed(command, cwd) for _ in range(repeats)]
    return min(r[0] for r in runs), runs[-1][1], runs[-1][2]


def measure(repeats: int, cwd: str) -> dict:
    baseline, _, _ = best([sys.executable, "-c", "import torch, transformers"], cwd, repeats)
    rows = []
    for case, argv in CASES.items():
        out = ["-o", "out.csv"] if argv[0] == "categorize" else []
        command = [sys.executable, "-X", "importtime", "-m", "multimodal_cat", *argv, *out]
        seconds, code, stderr = best(command, cwd, repeats)
        imported = {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if "|" in line}
        rows.append({
            "case": case,
            "exit_code": code,
            "seconds": round(seconds, 3),
            "to_baseline_ratio": round(seconds / baseline, 3),
            "torch_imported": "torch" in imported,
            "message": next((ln for ln in stderr.splitlines() if ln.startswith("multimodal-cat:")), ""),
        })
    return {"baseline_import_torch_transformers_s": round(baseline, 3), "rows": rows}


def markdown(result: dict) -> str:
    lines = [
        "# Answers to mistakes on the command line",
        "",
        f"{made_by(result['environment'])}, at end "
        f"{', '.join(f'{x:.2f}' for x in result['load_average_end'])}; best of "
        f"{result['repeats']} runs each. Baseline (same run): a fresh Python importing torch and "
        f"transformers, {result['baseline_import_torch_transformers_s']:.2f} s.",
        "",
        "| mistake | exit | seconds | / baseline | torch imported | message |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['case']} | {row['exit_code']} | {row['seconds']:.2f} | "
            f"{row['to_baseline_ratio']:.2f}x | {'yes' if row['torch_imported'] else 'no'} | "
            f"{row['message'][:90]} |"
        )
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (best kept)")
    parser.add_argument("--quick", action="store_true", help="one repeat; results to a temp dir")
    parser.add_argument("--out", help="output stem (default benchmarks/results/cli_fast_errors)")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    env = environment("benchmarks.cli_fast_errors")
    with tempfile.TemporaryDirectory() as cwd:
        result = {"environment": env, "repeats": repeats, **measure(repeats, cwd)}
    result["load_average_end"] = list(os.getloadavg())
    write_results(output_stem("cli_fast_errors", args.out, args.quick), result, markdown(result))
    return result


if __name__ == "__main__":
    main()
