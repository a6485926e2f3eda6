"""Import time of ``import multimodal_cat`` against ``import transformers`` and ``import torch``.

Each statement runs in a fresh interpreter ``--repeats`` times: the wall time of the statement
itself (``time.perf_counter`` around it, interpreter start-up excluded) and, in one more run,
``python -X importtime``'s cumulative microseconds of the statement's top-level imports. The
ratios (multimodal_cat / transformers, multimodal_cat / torch) are what to compare between
machines. One more row times what registering with transformers costs once transformers'
Auto modules are loaded: ``import multimodal_cat`` after ``from transformers import AutoConfig,
AutoModel, AutoProcessor`` (untimed setup), when the config and processor hooks run at once;
it is measured in the same process as its setup, so it is free of start-up noise. Rounds run
every statement once, in turn, so a change of load hits all of them alike; the median of the
rounds is kept (a shared machine's noise is one-sided, so the best run is given too).

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
AUTO = "from transformers import AutoConfig, AutoModel, AutoProcessor"
# name -> (untimed setup, timed statement)
STATEMENTS = {
    "multimodal_cat": ("", "import multimodal_cat"),
    "transformers": ("", "import transformers"),
    "torch": ("", "import torch"),
    "registration": (AUTO, "import multimodal_cat"),
}
TIMED = """import sys, time
{setup}
start = time.perf_counter()
{statement}
elapsed = time.perf_counter() - start
print(elapsed, 'torch' in sys.modules, 'transformers' in sys.modules, len(sys.modules))
"""
IMPORTTIME_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _run(*args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, check=True
    )


def timed_run(setup: str, statement: str) -> dict:
    """One fresh interpreter: seconds the statement took (after the setup), what was loaded."""
    done = _run("-c", TIMED.format(setup=setup, statement=statement))
    seconds, torch, transformers, modules = done.stdout.split()
    return {
        "seconds": float(seconds),
        "loads_torch": torch == "True",
        "loads_transformers": transformers == "True",
        "modules": int(modules),
    }


def importtime_s(statement: str) -> float:
    """``-X importtime``: the cumulative seconds of the statement's top-level imports
    (start-up modules such as ``site`` and ``encodings`` excluded)."""
    start_up = {
        m.group(4)
        for m in map(IMPORTTIME_LINE.match, _run("-X", "importtime", "-c", "pass").stderr.splitlines())
        if m
    }
    total = 0
    for line in _run("-X", "importtime", "-c", statement).stderr.splitlines():
        match = IMPORTTIME_LINE.match(line)
        if match and match.group(3) == " " and match.group(4) not in start_up:  # top level only
            total += int(match.group(2))
    return total / 1e6


def measure(repeats: int) -> dict[str, dict]:
    """Every statement once per round, rounds interleaved (a load change hits all alike)."""
    runs: dict[str, list[dict]] = {name: [] for name in STATEMENTS}
    for _ in range(repeats):
        for name, (setup, statement) in STATEMENTS.items():
            runs[name].append(timed_run(setup, statement))
    rows = {}
    for name, (setup, statement) in STATEMENTS.items():
        seconds = [run["seconds"] for run in runs[name]]
        rows[name] = {
            "name": name,
            "setup": setup,
            "statement": statement,
            "median_s": round(statistics.median(seconds), 4),
            "best_s": round(min(seconds), 4),
            "importtime_s": None if setup else round(importtime_s(statement), 4),
            "loads_torch": runs[name][0]["loads_torch"],
            "loads_transformers": runs[name][0]["loads_transformers"],
            "modules_loaded": runs[name][0]["modules"],
        }
    return rows


def ratios(rows: dict[str, dict]) -> dict[str, float]:
    ours = rows["multimodal_cat"]["median_s"]
    return {
        "multimodal_cat_to_transformers": round(ours / rows["transformers"]["median_s"], 4),
        "multimodal_cat_to_torch": round(ours / rows["torch"]["median_s"], 4),
        "registration_to_torch": round(rows["registration"]["median_s"] / rows["torch"]["median_s"], 4),
    }


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        "# Import time",
        "",
        f"{made_by(env)}, at end {', '.join(f'{x:.2f}' for x in result['load_average_end'])}; "
        f"{result['repeats']} fresh interpreters per statement, rounds interleaved (median and "
        "best), plus one `-X importtime` run (start-up modules excluded).",
        "",
        "| statement (after setup) | median (s) | best (s) | -X importtime (s) | torch loaded "
        "| transformers loaded | modules |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for row in result["rows"]:
        shown = f"`{row['statement']}`" + (f" after `{row['setup']}`" if row["setup"] else "")
        importtime = "" if row["importtime_s"] is None else f"{row['importtime_s']:.4f}"
        lines.append(
            f"| {shown} | {row['median_s']:.4f} | {row['best_s']:.4f} | {importtime} | "
            f"{row['loads_torch']} | {row['loads_transformers']} | {row['modules_loaded']} |"
        )
    r = result["ratios"]
    lines += [
        "",
        f"`import multimodal_cat` alone takes {r['multimodal_cat_to_transformers']:.4f}x the time "
        f"of `import transformers` and {r['multimodal_cat_to_torch']:.4f}x that of `import torch` "
        "(medians), and loads neither. Registering with the Auto classes (the config and processor "
        "hooks, run as soon as transformers' Auto modules are loaded) costs "
        f"{r['registration_to_torch']:.4f}x `import torch`.",
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
    rows = measure(repeats)
    result = {
        "environment": env,
        "repeats": repeats,
        "rows": list(rows.values()),
        "ratios": ratios(rows),
        "load_average_end": list(os.getloadavg()),
    }
    write_results(output_stem("import_time", args.out, args.quick), result, markdown(result))
    return result


if __name__ == "__main__":
    main()
