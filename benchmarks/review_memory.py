"""Peak memory of `review import` and `review tasks` on large inputs, against a baseline commit.

Issue 22 measured 731 MB for a 114 MB Label Studio export and 2.0 GB for `review tasks` on a
200k-row feed: both read their input whole. This benchmark builds inputs of that size (seeded),
runs both commands of the baseline commit (extracted with `git archive`) and of this tree, each
in its own process, and records each process's peak RSS (``wait4``), the ratio between them,
and that both write the same output.

Usage:
    python benchmarks/review_memory.py [--baseline-commit ebbb25b] [--tasks 40000] [--rows 200000]

Writes ``benchmarks/results/review_memory.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TREE = "id,parent_id,name\n1,,Apparel\n2,1,Shirts\n3,1,Shoes\n4,,Kitchen\n5,4,Mugs\n6,4,Pans\n"
PATHS = {"2": "Apparel > Shirts", "3": "Apparel > Shoes", "5": "Kitchen > Mugs", "6": "Kitchen > Pans"}
SHOPIFY_GOOGLE = (ROOT.parent / "shared" / "data" / "taxonomies" / "shopify" / "2025-01-unstable" / "data"
                  / "integrations" / "google" / "2021-09-21" / "mappings" / "from_shopify.yml")
WORDS = ["soft", "cotton", "linen", "blue", "red", "ceramic", "steel", "handmade", "classic", "slim", "fit", "dishwasher", "safe"]


def make_export(path: Path, tasks: int, rng: random.Random) -> None:
    """A Label Studio export: each task with a ~2.7 KB description and one annotation."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[")
        for i in range(tasks):
            category = rng.choice(list(PATHS))
            task = {
                "id": i,
                "data": {"id": f"P{i}", "title": f"Product {i}", "suggested_id": "2",
                         "description": " ".join(rng.choices(WORDS, k=400))},
                "annotations": [{"id": i, "completed_by": 1, "updated_at": "2026-01-01T00:00:00Z",
                                 "result": [{"from_name": "category", "to_name": "title", "type": "taxonomy",
                                             "value": {"taxonomy": [PATHS[category].split(" > ")]}}]}],
            }
            handle.write(("," if i else "") + json.dumps(task))
        handle.write("]")


def make_feed(feed: Path, predictions: Path, rows: int, rng: random.Random) -> None:
    """A feed with ~450-character descriptions and its categorize output (1 row in 20 under 0.5:
    the review queue of ``--below 0.5``)."""
    with open(feed, "w", encoding="utf-8") as out, open(predictions, "w", encoding="utf-8") as pred:
        out.write("id,title,description\n")
        pred.write("row,id,status,category_id,category_path,confidence,alternatives\n")
        for i in range(1, rows + 1):
            out.write(f"P{i},Product {i},{' '.join(rng.choices(WORDS, k=70))}\n")
            category = rng.choice(list(PATHS))
            confidence = 0.4 if i % 20 == 0 else 0.95
            pred.write(f"{i},P{i},ok,{category},{PATHS[category]},{confidence},\n")


def make_mapping(path: Path, megabytes: int) -> None:
    """A Shopify-style rule file of about ``megabytes`` MB: the published Shopify -> Google rules
    repeated under fresh input ids."""
    source = SHOPIFY_GOOGLE.read_text(encoding="utf-8")
    head, rules = source.split("rules:\n", 1)
    body = rules.split("\nunmapped_product_category_ids:")[0] + "\n"
    with open(path, "w", encoding="utf-8") as out:
        out.write(head + "rules:\n")
        copy = 0
        while out.tell() < megabytes * 1_000_000:
            out.write(body.replace("product_category_id: aa", f"product_category_id: x{copy}-aa"))
            copy += 1


def measure_mapping(path: Path, work: Path, codes: dict[str, Path]) -> dict:
    """Peak RSS of reading a large mapping file with each version of the library."""
    code = f"from multimodal_cat.mapping.rules_io import read_rules_yaml; print(len(read_rules_yaml({str(path)!r}).rules))"
    result: dict[str, object] = {"command": f"python -c {code!r}"}
    for label, root in codes.items():
        rss, exit_code = peak_rss_mb([sys.executable, "-c", code], root, work)
        result[label] = {"peak_rss_mb": rss, "exit_code": exit_code}
    result["ratio_baseline_over_this"] = round(result["baseline"]["peak_rss_mb"] / result["this"]["peak_rss_mb"], 2)
    result["same_output"] = None
    return result


def peak_rss_mb(command: list[str], code: Path, cwd: Path) -> tuple[float, int]:
    """Run ``command`` with ``code`` first on the path; its peak RSS (MB) and exit code."""
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return round(usage.ru_maxrss / 1024, 1), os.waitstatus_to_exitcode(status)


def extract(commit: str, target: Path) -> Path:
    data = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(target, filter="data")
    return target


def measure(name: str, args: list[str], outputs: dict[str, Path], work: Path, codes: dict[str, Path]) -> dict:
    result: dict[str, object] = {"command": f"multimodal-cat {' '.join(args)}"}
    for label, code in codes.items():
        out = outputs[label]
        rss, exit_code = peak_rss_mb([sys.executable, "-m", "multimodal_cat", *args, "-o", str(out)], code, work)
        result[label] = {"peak_rss_mb": rss, "exit_code": exit_code}
    result["ratio_baseline_over_this"] = round(result["baseline"]["peak_rss_mb"] / result["this"]["peak_rss_mb"], 2)
    result["same_output"] = _same(name, outputs["baseline"], outputs["this"])
    return result


def _same(name: str, a: Path, b: Path) -> bool:
    """The same answers in both outputs, compared on the fields both versions write (this
    version adds fields: a correction keeps the product's text, a task its image source)."""
    if name == "import":  # the order of lines may differ; the set of answers may not
        left = [json.loads(line) for line in a.read_text().splitlines()]
        right = [json.loads(line) for line in b.read_text().splitlines()]
    else:
        left, right = json.loads(a.read_text()), json.loads(b.read_text())
    return sorted(map(_shared_json, left, right)) == sorted(map(_shared_json, right, left))


def _shared_json(item: object, other: object) -> str:
    """``item`` reduced to the keys ``other`` has too, at every level, as canonical JSON."""
    def common(x: object, y: object) -> object:
        if isinstance(x, dict) and isinstance(y, dict):
            return {k: common(x[k], y[k]) for k in x if k in y}
        return x
    return json.dumps(common(item, other), sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-commit", default="ebbb25b")
    parser.add_argument("--tasks", type=int, default=40_000)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mapping-mb", type=int, default=125, help="size of the large mapping file")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        codes = {"baseline": extract(args.baseline_commit, work / "baseline"), "this": ROOT}
        (work / "tree.csv").write_text(TREE, encoding="utf-8")
        make_export(work / "export.json", args.tasks, rng)
        make_feed(work / "feed.csv", work / "out.csv", args.rows, rng)
        make_mapping(work / "mapping.yml", args.mapping_mb)
        sizes = {name: round((work / name).stat().st_size / 1e6, 1)
                 for name in ("export.json", "feed.csv", "out.csv", "mapping.yml")}
        report = {
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                     text=True).stdout.strip(),
            "baseline_commit": args.baseline_commit,
            "seed": args.seed,
            "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "input_mb": sizes,
            "import": measure("import", ["review", "import", "export.json", "--taxonomy", "tree.csv"],
                              {k: work / f"corrections-{k}.jsonl" for k in codes}, work, codes),
            "tasks": measure("tasks", ["review", "tasks", "feed.csv", "out.csv", "--taxonomy", "tree.csv",
                                       "--below", "0.5"],
                             {k: work / f"tasks-{k}.json" for k in codes}, work, codes),
            "mapping": measure_mapping(work / "mapping.yml", work, codes),
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
    write(report)


def write(report: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "review_memory.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = [
        f"| {name} | {report['input_mb'][file]} MB | {r['baseline']['peak_rss_mb']} MB | "
        f"{r['this']['peak_rss_mb']} MB | {r['ratio_baseline_over_this']}x | {r['same_output']} |"
        for name, file, r in (("review import", "export.json", report["import"]),
                              ("review tasks", "feed.csv", report["tasks"]),
                              ("read a mapping file", "mapping.yml", report["mapping"]))
    ]
    lines = [
        "# Peak memory of review import / review tasks on large inputs",
        "",
        f"Made with: `{report['command']}` at commit {report['commit']} (baseline {report['baseline_commit']}), "
        f"seed {report['seed']}, {report['when']} on {report['machine']}; load average "
        f"{report['load_average_before']} before, {report['load_average_after']} after.",
        "",
        "| command | input | baseline peak RSS | this peak RSS | baseline / this | same output |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    (RESULTS / "review_memory.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
