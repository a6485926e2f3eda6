"""Taxonomy alignment on pairs it was not tuned for, across languages, and its confidences.

Pairs (all learn from no rules; see ../shared/data/README.md):

- ``no_rules``: Shopify 2025-01 -> Google 2021-09-21, scored on all 10,535 published rules;
- ``legacy_to_2025``: Shopify's legacy 2022-02 tree -> Shopify 2025-01, scored on
  ``to_shopify.yml`` (5,595 rules);
- ``crosslingual.<locale>``: Google's 2015 tree in es-ES, it-IT, nl-NL, pl-PL, pt-BR, zh-CN ->
  the en-US tree (2019), truth = the same id, scored on the ids present in both; with the
  offline multilingual encoder (``multilingual-e5-small``) and, beside it, the English-only
  default (``crosslingual_english_only.<locale>``).

- ``gs1_to_google``, ``gs1_to_shopify``: the GS1 GPC tree of MWPD (394 nodes, English, a
  tree no setting was chosen on) -> Google / Shopify, no truth mapping: 50 random GS1 nodes
  (seed 0) whose inferred rules were judged right / acceptable / wrong by reading both paths
  (``benchmarks/data/gs1_rule_judgements.csv``, one judgement per (tree, source, target),
  also for the rules of commit 4841cb2, before the mode by language: ``before``; of commit
  93102a9, the mode by language: ``after``; after the aligner fixes of issue 26's GS1 items:
  ``gs1 fixes``, only the rules those runs had not produced); with the
  mode that ran and why, and the share of the wrong rules the review CSV lists at a review
  fraction of 20%. A rule the file does not judge is counted ``unjudged``.
  The file holds GS1 ids, not GS1 paths: MWPD may not be redistributed in the project, so
  read the paths from ``../shared/data/mwpd/tree.csv`` to check a judgement.

For the pairs with a truth mapping: exact and exact-or-ancestor accuracy; ``precision_top90`` (exact accuracy of the
90% most confident rules) and ``share_of_errors_in_bottom10`` (share of the exact errors among
the 10% least confident); and how many errors the default review list (least confident 10%
plus the structural signals) holds. Settings were chosen on legacy_to_2025 and on the
Shopify 2024-07 held-out fifth of mapping_benchmark.py. The weights of the family matcher
(:mod:`multimodal_cat.align.families`, on for the crosslingual pairs) were chosen on ONE
declared dev locale, ``pl-PL`` (:data:`DEV_LOCALE`): its figures are dev, not a result; the
other five locales were never used to choose anything.

Usage:
    python benchmarks/alignment_general.py                       # every pair
    python benchmarks/alignment_general.py --only crosslingual   # merge into the results
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from mapping_benchmark import confidence_report

from multimodal_cat.align import AlignmentResult, MappingAligner
from multimodal_cat.mapping import Mapping, MappingRule
from multimodal_cat.taxonomy import Taxonomy

LOCALES = ("es-ES", "it-IT", "nl-NL", "pl-PL", "pt-BR", "zh-CN")
DEV_LOCALE = "pl-PL"  # chose the family matcher's weights: reported, but not a result
GOOGLE_RULES = (
    "taxonomies/shopify/2025-01-unstable/data/integrations/google/2021-09-21/mappings/"
    "from_shopify.yml"
)
LOCALE_FILE = "taxonomies/google/locales/taxonomy-with-ids.{}.txt"
RESULTS = Path("benchmarks/results/alignment_general")
JUDGEMENTS = Path("benchmarks/data/gs1_rule_judgements.csv")
GS1_SAMPLE, GS1_SEED, GS1_REVIEW_FRACTION = 50, 0, 0.2


def truth_of(rules: Mapping, source: Taxonomy, target: Taxonomy) -> Mapping:
    """Rules whose source and first target both trees have (one target each)."""
    kept = [
        r
        for sid, r in rules.rules.items()
        if sid in source and r.target_ids and r.target_ids[0] in target
    ]
    return Mapping(kept, source, target)


def scored(result: AlignmentResult, truth: Mapping, target: Taxonomy) -> dict:
    """Accuracy, confidence ranking and review-list catch of one alignment."""
    ids = [sid for sid in truth.rules if sid in result.mapping.rules]
    exact = anc = 0
    wrong: set[str] = set()
    off_line: set[str] = set()
    for sid in ids:
        want, got = truth.rules[sid].target_ids[0], result.mapping.rules[sid].target_ids[0]
        line = {c.id for c in target.ancestors(want, include_self=True)}
        exact += got == want
        anc += got in line
        if got != want:
            wrong.add(sid)
            if got not in line:
                off_line.add(sid)
    review = {item.source_id for item in result.review}
    kinds: dict[str, int] = {}
    for item in result.review:
        kinds[item.reason] = kinds.get(item.reason, 0) + 1
    return {
        "n": len(ids),
        "exact": round(exact / max(1, len(ids)), 4),
        "exact_or_ancestor": round(anc / max(1, len(ids)), 4),
        **confidence_report(result.mapping, truth, ids),
        "review": {
            "listed": len(review),
            "by_reason": kinds,
            "errors_listed": len(wrong & review),
            "share_of_errors_listed": round(len(wrong & review) / max(1, len(wrong)), 4),
            "errors_off_the_truth_line": len(off_line),
            "off_line_errors_listed": len(off_line & review),
        },
        "align_s": result.timings,
    }


def run_pair(aligner: MappingAligner, source: Taxonomy, target: Taxonomy, truth: Mapping) -> dict:
    start = time.perf_counter()
    result = aligner.align(source, target)
    out = scored(result, truth_of(truth, source, target), target)
    out["total_s"] = round(time.perf_counter() - start, 2)
    out["mode"] = result.details["mode"]
    out["encoder"] = result.details["encoder"]
    if result.details["warnings"]:
        out["warnings"] = result.details["warnings"]
    return out


def run_no_rules(args: argparse.Namespace) -> dict:
    shopify, google = Taxonomy.load("shopify"), Taxonomy.load("google")
    rules = Mapping.from_file(Path(args.data) / GOOGLE_RULES)
    return run_pair(MappingAligner(args.encoder), shopify, google, rules)


def run_legacy(args: argparse.Namespace) -> dict:
    legacy, shopify = Taxonomy.load("shopify/2022-02"), Taxonomy.load("shopify")
    rules = Mapping.load("shopify/2022-02", "shopify")
    return run_pair(MappingAligner(args.encoder), legacy, shopify, rules)


def run_crosslingual(args: argparse.Namespace, encoder: str) -> dict:
    folder = Path(args.data)
    english = Taxonomy.load(folder / LOCALE_FILE.format("en-US"))
    aligner = MappingAligner(encoder, multilingual=None)  # the encoder asked for, with a warning
    out = {}
    for locale in args.locales:
        source = Taxonomy.load(folder / LOCALE_FILE.format(locale))
        same = Mapping([MappingRule(c.id, (c.id,)) for c in source if c.id in english])
        out[locale] = run_pair(aligner, source, english, same)
        print(locale, encoder, out[locale]["exact"], file=sys.stderr, flush=True)
    return out


def judgements(path: Path = JUDGEMENTS) -> dict[tuple[str, str, str], dict[str, str]]:
    """(target tree, source id, target id) -> its judgement row."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {(r["target_tree"], r["source_id"], r["target_id"]): r for r in csv.DictReader(handle)}


def judged_counts(rules: dict[str, str], tree: str, judged: dict) -> dict[str, int]:
    """Right / acceptable / wrong / unjudged among ``rules`` (source id -> target id)."""
    counts = {"right": 0, "acceptable": 0, "wrong": 0, "unjudged": 0}
    for sid, tid in rules.items():
        row = judged.get((tree, sid, tid))
        counts[row["judgement"] if row else "unjudged"] += 1
    return counts


def run_gs1(args: argparse.Namespace, tree: str) -> dict:
    """GS1 -> ``tree``: the judged sample's counts now and before, the mode, the review catch."""
    gs1 = Taxonomy.load(Path(args.data) / "mwpd" / "tree.csv")
    target = Taxonomy.load(tree)
    aligner = MappingAligner(args.encoder, review_fraction=GS1_REVIEW_FRACTION)
    start = time.perf_counter()
    result = aligner.align(gs1, target)
    seconds = round(time.perf_counter() - start, 2)
    sample = random.Random(GS1_SEED).sample(sorted(gs1.ids()), GS1_SAMPLE)
    judged = judgements()
    now = {sid: result.mapping.rules[sid].target_ids[0] for sid in sample}
    before, previous = (
        {
            sid: tid
            for (name, sid, tid), row in judged.items()
            if name == tree and label in row["seen_in"].split(" and ") and sid in now
        }
        for label in ("before", "after")
    )
    listed = {item.source_id: item.reason for item in result.review}
    rank = {item.source_id: i for i, item in enumerate(result.review)}
    wrong = [sid for sid, tid in now.items() if judged.get((tree, sid, tid), {}).get("judgement") == "wrong"]
    caught = [sid for sid in wrong if sid in listed]
    return {
        "n": len(sample),
        "seed": GS1_SEED,
        "judged": judged_counts(now, tree, judged),
        "before": {"commit": "4841cb2", **judged_counts(before, tree, judged)},
        "previous": {"commit": "93102a9", **judged_counts(previous, tree, judged)},
        "mode": result.details["mode"],
        "mode_reason": result.details["mode_reason"],
        "languages": result.details["languages"],
        "lexical_share": result.details["lexical_share"],
        "review": {
            "fraction": GS1_REVIEW_FRACTION,
            "listed": len(result.review),
            "of_rules": len(result.mapping.rules),
            "wrong_in_sample": len(wrong),
            "wrong_listed": len(caught),
            "share_of_wrong_listed": round(len(caught) / max(1, len(wrong)), 4),
            "wrong_listed_in_first_half": sum(rank[s] < len(rank) / 2 for s in caught),
            "sample_rules_listed": sum(s in listed for s in now),
            "reasons_of_wrong_listed": dict(sorted(_count(listed[s] for s in caught).items())),
            "wrong_not_listed": [gs1[s].full_path for s in wrong if s not in listed],
        },
        "total_s": seconds,
    }


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return out


def commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def markdown(report: dict) -> str:
    lines = [
        "# Alignment on trees it was not tuned for",
        "",
        f"Last made by `{report['command']}` at commit {report['commit']} on {report['date']}; "
        f"load average at start {report['load_average_at_start']} (2 shared cores); "
        "each pair's run is listed under `runs` in the JSON.",
        "",
        "| pair | encoder | n | exact | exact or ancestor | precision top 90% | "
        "errors in bottom 10% | errors on review list |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for key, encoder in (("no_rules", "minilm"), ("legacy_to_2025", "minilm")):
        if key in report:
            rows.append((key, encoder, report[key]))
    for group, encoder in (
        ("crosslingual", "multilingual-e5-small"),
        ("crosslingual_english_only", "minilm"),
    ):
        for locale, value in report.get(group, {}).items():
            dev = " (dev, not a result)" if locale == DEV_LOCALE else ""
            rows.append((f"{locale} -> en-US{dev}", encoder, value))
    for name, encoder, r in rows:
        if "judged" in r:
            continue
        lines.append(
            f"| {name} | {encoder} | {r['n']} | {r['exact']} | {r['exact_or_ancestor']} | "
            f"{r['precision_top90']} | {r['share_of_errors_in_bottom10']} | "
            f"{r['review']['share_of_errors_listed']} ({r['review']['listed']} listed) |"
        )
    lines += _gs1_lines(report)
    lines += [
        "",
        "Targets: no_rules exact >= 0.97 and exact-or-ancestor >= 0.997; legacy_to_2025 >= 0.985; "
        "crosslingual exact >= 0.90 per locale; bottom 10% >= 0.6 of the errors and top 90% "
        ">= 0.97 right.",
        "",
        report["settings_note"],
    ]
    return "\n".join(lines) + "\n"


def _gs1_lines(report: dict) -> list[str]:
    """The judged GS1 samples as a markdown table."""
    keys = [k for k in ("gs1_to_google", "gs1_to_shopify") if k in report]
    if not keys:
        return []
    lines = [
        "",
        f"GS1 -> Google / Shopify ({GS1_SAMPLE} random GS1 nodes, seed {GS1_SEED}, rules judged by "
        f"hand: `{JUDGEMENTS}`; review fraction {GS1_REVIEW_FRACTION}):",
        "",
        "| pair | mode (why) | right / acceptable / wrong (unjudged) | before (4841cb2) | "
        "previous (93102a9) | wrong rules on the review list (in its first half) | listed |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in keys:
        r = report[key]
        j, b, v = r["judged"], r["before"], r["review"]
        p = r.get("previous", {"right": "-", "acceptable": "-", "wrong": "-"})
        lines.append(
            f"| {key} | {r['mode']} ({r['mode_reason']}) | {j['right']} / {j['acceptable']} / "
            f"{j['wrong']} ({j['unjudged']}) | {b['right']} / {b['acceptable']} / {b['wrong']} | "
            f"{p['right']} / {p['acceptable']} / {p['wrong']} | "
            f"{v['wrong_listed']} of {v['wrong_in_sample']} ({v['share_of_wrong_listed']}; "
            f"{v['wrong_listed_in_first_half']}) | "
            f"{v['listed']} of {v['of_rules']} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--encoder", default="minilm", help="encoder of the English pairs")
    parser.add_argument("--multilingual", default="multilingual-e5-small")
    parser.add_argument("--only", default="no_rules,legacy_to_2025,crosslingual,gs1")
    parser.add_argument("--locales", nargs="+", default=list(LOCALES))
    parser.add_argument("--english-only", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    only = set(args.only.split(","))
    path = RESULTS.with_suffix(".json")
    report = json.loads(path.read_text()) if path.is_file() else {}
    report.update(
        {
            "benchmark": "alignment_general",
            "command": " ".join(["python", *sys.argv]),
            "commit": commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "seed": "none (deterministic: no sampling)",
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "settings_note": (
                "Default aligner settings throughout (ancestor_threshold 0.5, ahead 3, "
                "sticky_threshold 0.9, structure_weight 1, root_reuse_penalty 1, lexical "
                "floor on); chosen on legacy_to_2025 and checked on Shopify -> Google, which is "
                "itself scored here, so those two figures are not untouched test figures. The "
                "mode follows the trees' languages (script + common catalogue words): the "
                "family matcher runs only across languages (the crosslingual pairs); it has weights text 0.25 per spread, size 1 capped at 1, support 1, none "
                "-1, confidence temperature 0.25 (row x column softmax x parent's), two "
                "Procrustes rounds on the most confident half, chosen on the dev locale "
                f"{DEV_LOCALE} alone (its rows are dev, not results); the cap was checked on a "
                "hand-made non-translated pair (tests/test_align_families.py) and forcing the "
                "matcher on en-GB 2015 -> en-US and legacy_to_2025 was measured (README); the "
                "other crosslingual locales were never used to choose anything. The "
                "'unrelated target branch' review signal (min share 0.5 of agreeing votes, "
                "factor (agreeing+1)/(disagreeing+1)) was set a priori and checked on a judged "
                "sample of 40 Flipkart -> Google rules (seed 1, dev) and on Shopify -> Google; "
                "nothing was chosen on the judged GS1 samples. The GS1 fixes of issue 26 (no "
                "permutation of siblings, back-offs claim nothing in the family assignment, the "
                "back-off to the best candidates' common ancestor, roots backing off like any "
                "rule, generic head words, the parent's confidence as a cap) were checked on "
                "Shopify -> Google, legacy_to_2025, the Flipkart -> Google dev sample and GS1 "
                "nodes outside the judged samples; the generic-head share 0.03 (0.05 tied on the "
                "dev pairs) was chosen on GS1 nodes outside the judged samples."
            ),
        }
    )
    run = {k: report[k] for k in ("command", "commit", "date", "load_average_at_start")}
    report.setdefault("runs", []).append({**run, "pairs": sorted(only)})
    if "no_rules" in only:
        report["no_rules"] = run_no_rules(args)
    if "legacy_to_2025" in only:
        report["legacy_to_2025"] = run_legacy(args)
    if "gs1" in only:
        report["gs1_to_google"] = run_gs1(args, "google")
        report["gs1_to_shopify"] = run_gs1(args, "shopify")
    if "crosslingual" in only:
        report.setdefault("crosslingual", {}).update(run_crosslingual(args, args.multilingual))
        if args.english_only:
            report.setdefault("crosslingual_english_only", {}).update(
                run_crosslingual(args, args.encoder)
            )
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    RESULTS.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
