"""Load time of each shipped taxonomy tree, as a ratio to reading its raw files in the same run.

For each shipped tree the benchmark times ``read_taxonomy`` (the reader ``Taxonomy.load`` uses,
without its per-process cache) and, as the baseline, reading the same files' text and splitting
it into lines. The ratio (load / baseline) is what to compare between machines and runs; the
seconds are recorded too. Each figure is the best of ``--repeats`` runs (the least disturbed
by other work on a shared machine). Also times building the tree's flat index
(:class:`~multimodal_cat.taxonomy.TaxonomyIndex` with its derived tables and lookups), which the model head, the metrics and the
aligner share.

Example:
    python -m benchmarks.taxonomy_load               # writes benchmarks/results/taxonomy_load.*
    python -m benchmarks.taxonomy_load --quick       # one repeat, results in a temp folder
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.fashion_model import environment, made_by, output_stem, write_results
from multimodal_cat.taxonomy.index import TaxonomyIndex
from multimodal_cat.taxonomy.readers import read_taxonomy
from multimodal_cat.taxonomy.shipped import SHIPPED_TAXONOMIES, taxonomies_dir
from multimodal_cat.taxonomy.tree import Taxonomy


def source_files(path: Path, fmt: str) -> list[Path]:
    """The files the reader parses for a shipped tree (Shopify's YAML folder: its category files)."""
    if fmt == "shopify_yaml":
        return sorted((path / "data" / "categories").glob("*.yml"))
    return [path]


def read_lines(files: list[Path]) -> int:
    """The baseline: read each file's text and split it into lines; returns the line count."""
    return sum(len(f.read_text(encoding="utf-8-sig").splitlines()) for f in files)


def best_seconds(work: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` timed calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def index_tables(tree: Taxonomy) -> TaxonomyIndex:
    """A fresh flat index of ``tree`` (checked) with every derived table computed."""
    lists = tree.to_index()
    index = TaxonomyIndex(lists.ids, lists.parents, lists.names, lists.paths, tree.name)
    _ = index.depths, index.leaves, index.children, index.levels, index.ancestor_paths
    _ = index.node_index(index.paths[-1])  # builds the id / path lookup
    return index


def measure(name: str, repeats: int) -> dict:
    relative, fmt = SHIPPED_TAXONOMIES[name]
    path = taxonomies_dir() / relative
    files = source_files(path, fmt)
    lines = read_lines(files)
    baseline = best_seconds(lambda: read_lines(files), repeats)
    tree = read_taxonomy(path, format=fmt, name=name, missing_parents="create")
    load = best_seconds(
        lambda: read_taxonomy(path, format=fmt, name=name, missing_parents="create"), repeats
    )
    index = best_seconds(lambda: index_tables(tree), repeats)
    return {
        "taxonomy": name,
        "format": fmt,
        "files": len(files),
        "lines": lines,
        "categories": len(tree),
        "baseline_read_lines_s": round(baseline, 4),
        "load_s": round(load, 4),
        "load_to_baseline_ratio": round(load / baseline, 1),
        "index_s": round(index, 4),
        "index_to_baseline_ratio": round(index / baseline, 2),
    }


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        "# Taxonomy load time",
        "",
        f"{made_by(env)}, "
        f"at end {', '.join(f'{x:.2f}' for x in result['load_average_end'])}; "
        f"best of {result['repeats']} runs each.",
        "",
        "| taxonomy | format | files | lines | categories | read lines (s) | load (s) "
        "| load / read lines | index (s) | index / read lines |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['taxonomy']} | {row['format']} | {row['files']} | {row['lines']:,} | "
            f"{row['categories']:,} | {row['baseline_read_lines_s']:.4f} | {row['load_s']:.4f} | "
            f"{row['load_to_baseline_ratio']:.1f}x | {row['index_s']:.4f} | "
            f"{row['index_to_baseline_ratio']:.2f}x |"
        )
    lines += [
        "",
        "Load: `read_taxonomy` on the shipped files (no cache). Baseline (same run): read the "
        "same files' text and split it into lines. Index: a `TaxonomyIndex` of the tree, checked, with "
        "its depths, leaves, children, levels, ancestor chains and id/path lookup.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (best kept)")
    parser.add_argument("--quick", action="store_true", help="one repeat; results to a temp dir")
    parser.add_argument("--out", help="output stem (default benchmarks/results/taxonomy_load)")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    env = environment("benchmarks.taxonomy_load")
    rows = [measure(name, repeats) for name in SHIPPED_TAXONOMIES]
    result = {
        "environment": env,
        "repeats": repeats,
        "rows": rows,
        "load_average_end": list(os.getloadavg()),
    }
    write_results(output_stem("taxonomy_load", args.out, args.quick), result, markdown(result))
    return result


if __name__ == "__main__":
    main()
