"""Import time of ``import multimodal_cat`` against ``import transformers`` and ``import torch``.

Each statement runs in a fresh interpreter ``--repeats`` times: the wall time of the statement
itself (``time.perf_counter`` around it, interpreter start-up excluded) and, in one more run,
``python -X importtime``'s cumulative microseconds of the statement's top-level imports. The
ratios (multimodal_cat / transformers, multimodal_cat / torch) are what to compare between
machines. Two more rows show what registering with transformers' Auto classes costs once
transformers' Auto modules do load (``from transformers import AutoModel`` with and without
``import multimodal_cat`` first). Rounds run every statement once, in turn, so a change of load
hits all of them alike; the median of the rounds is kept (a shared machine's noise is
one-sided, so the best run is given too).

Example:
    python -m benchmarks.import_time            # writes benchmarks/results/import_time.*
    python -m benchmarks.import_time --quick    # 2 repeats, results in a temp folder
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.fashion_model import environment, made_by, output_stem, write_results

ROOT = Path(__file__).resolve().parent.parent
STATEMENTS = {
    "multimodal_cat": "import multimodal_cat",
    "transformers": "import transformers",
    "torch": "import torch",
    "AutoModel": "from transformers import AutoModel",
    "multimodal_cat + AutoModel": "import multimodal_cat; from transformers import AutoModel",
}
TIMED = """import sys, time
start = time.perf_counter()
{statement}
elapsed = time.perf_counter() - start
print(elapsed, 'torch' in sys.modules, 'transformers' in sys.modules, len(sys.modules))
"""
IMPORTTIME_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def timed_run(statement: str) -> dict:
    """One fresh interpreter: seconds the statement took, what it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", TIMED.format(statement=statement)],
        capture_output=True, text=True, env=_env(), check=True,
    )
    seconds, torch, transformers, modules = done.stdout.split()
    return {
        "seconds": float(seconds),
        "loads_torch": torch == "True",
        "loads_transformers": transformers == "True",
        "modules": int(modules),
    }


def importtime_us(statement: str) -> int:
    """``-X importtime``: sum of the cumulative microseconds of the top-level imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True, text=True, env=_env(), check=True,
    )
    baseline = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"],
        capture_output=True, text=True, env=_env(), check=True,
    )
    start_up = {m.group(4) for m in map(IMPORTTIME_LINE.match, baseline.stderr.splitlines()) if m}
    total = 0
    for line in done.stderr.splitlines():
        match = IMPORTTIME_LINE.match(line)
        # top level only (one space of indent); start-up modules (site, encodings...) excluded
        if match and match.group(3) == " " and match.group(4) not in start_up:
            total += int(match.group(2))
    return total


def summary(name: str, statement: str, runs: list[dict]) -> dict:
    seconds = [run["seconds"] for run in runs]
    return {
        "name": name,
        "statement": statement,
        "median_s": round(statistics.median(seconds), 4),
        "best_s": round(min(seconds), 4),
        "importtime_s": round(importtime_us(statement) / 1e6, 4),
        "loads_torch": runs[0]["loads_torch"],
        "loads_transformers": runs[0]["loads_transformers"],
        "modules_loaded": runs[0]["modules"],
    }


def measure(repeats: int) -> tuple[dict[str, dict], list[float]]:
    """Every statement once per round, rounds interleaved (a load change hits all alike)."""
    runs: dict[str, list[dict]] = {name: [] for name in STATEMENTS}
    for _ in range(repeats):
        for name, statement in STATEMENTS.items():
            runs[name].append(timed_run(statement))
    extra = [  # per round: what `import multimodal_cat` first adds to the Auto import
        hooked["seconds"] - plain["seconds"]
        for hooked, plain in zip(runs["multimodal_cat + AutoModel"], runs["AutoModel"], strict=True)
    ]
    rows = {name: summary(name, STATEMENTS[name], runs[name]) for name in STATEMENTS}
    return rows, extra


def ratios(rows: dict[str, dict], extra: list[float]) -> dict[str, float]:
    ours = rows["multimodal_cat"]["median_s"]
    hooked = statistics.median(extra)
    return {
        "multimodal_cat_to_transformers": round(ours / rows["transformers"]["median_s"], 4),
        "multimodal_cat_to_torch": round(ours / rows["torch"]["median_s"], 4),
        "registration_extra_s_on_AutoModel": round(hooked, 4),
        "registration_extra_to_AutoModel": round(hooked / rows["AutoModel"]["median_s"], 4),
    }


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        "# Import time",
        "",
        f"{made_by(env)}, at end {', '.join(f'{x:.2f}' for x in result['load_average_end'])}; "
        f"{result['repeats']} fresh interpreters per statement (median and best), plus one "
        "`-X importtime` run (start-up modules excluded).",
        "",
        "| statement | median (s) | best (s) | -X importtime (s) | loads torch | loads transformers "
        "| modules |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| `{row['statement']}` | {row['median_s']:.4f} | {row['best_s']:.4f} | "
            f"{row['importtime_s']:.4f} | {row['loads_torch']} | {row['loads_transformers']} | "
            f"{row['modules_loaded']} |"
        )
    r = result["ratios"]
    lines += [
        "",
        f"`import multimodal_cat` takes {r['multimodal_cat_to_transformers']:.4f}x the time of "
        f"`import transformers` and {r['multimodal_cat_to_torch']:.4f}x that of `import torch` "
        "(medians). Registering with the Auto classes runs when transformers' Auto modules load: "
        f"{r['registration_extra_s_on_AutoModel']:+.3f} s on `from transformers import AutoModel` "
        f"({r['registration_extra_to_AutoModel']:+.1%}; median of the per-round differences, "
        "the two statements run back to back in each round).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="fresh interpreters per statement")
    parser.add_argument("--quick", action="store_true", help="2 repeats; results to a temp dir")
    parser.add_argument("--out", help="output stem (default benchmarks/results/import_time)")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    env = environment("benchmarks.import_time", python=sys.version.split()[0])
    rows, extra = measure(repeats)
    result = {
        "environment": env,
        "repeats": repeats,
        "rows": list(rows.values()),
        "registration_extra_s_per_round": [round(x, 4) for x in extra],
        "ratios": ratios(rows, extra),
        "load_average_end": list(os.getloadavg()),
    }
    write_results(output_stem("import_time", args.out, args.quick), result, markdown(result))
    return result


if __name__ == "__main__":
    main()
