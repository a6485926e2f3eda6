"""Markdown summary and reliability diagram of ``benchmarks/zero_shot_general.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from multimodal_cat.zero_shot.calibration import reliability

_COLUMNS = ("exact", "top_level", "hier_f1", "precision_at_conf_0_9", "share_at_conf_0_9", "ece")


def reliability_png(path: Path, confidence: np.ndarray, correct: np.ndarray) -> Path:
    """A 10-bin reliability diagram (accuracy against confidence, bar width = bin)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = [b for b in reliability(confidence, correct) if b["share"]]
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ax.bar(
        [b["low"] for b in table],
        [b["accuracy"] for b in table],
        width=0.1,
        align="edge",
        edgecolor="black",
        alpha=0.7,
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    for b in table:
        ax.text(b["low"] + 0.05, 0.02, f"{b['share']:.0%}", ha="center", fontsize=7)
    ax.set(
        xlabel="confidence",
        ylabel="accuracy (true node is the answer or below it)",
        xlim=(0, 1),
        ylim=(0, 1),
        title="Zero-shot, Flipkart test (bin share at bottom)",
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _row(name: str, m: dict) -> str:
    return f"| {name} | " + " | ".join(str(m.get(k, "")) for k in _COLUMNS) + " |"


def markdown(r: dict) -> str:
    """The report as markdown."""
    head = "| method | " + " | ".join(_COLUMNS) + " |"
    lines = [
        "# Zero-shot categorization, general merchandise (Flipkart titles, Flipkart tree)",
        "",
        f"Made by `{r['command']}` at commit `{r['git_commit'][:10]}` on {r['date_utc']} "
        f"(load average {[round(x, 2) for x in r['load_average_start']]} at start, "
        f"{[round(x, 2) for x in r['load_average_end']]} at end; seed {r['seed']}). "
        f"Tree: {r['tree']['nodes']} nodes, {r['tree']['leaves']} leaves. "
        f"Test: {r['rows']['test']} titles (md5 % 5 == 0), dev: {r['rows']['dev']}. {r['selection']}.",
        "",
        "## Flipkart test",
        "",
        head,
        "|" + "---|" * (len(_COLUMNS) + 1),
        *[_row(name, m) for name, m in r["flipkart_test_variants"].items()],
        "",
        "`package_default` is `ZeroShotCategorizer(tree).predict` with the shipped defaults "
        f"({r['package_defaults']}); a prediction is right only when it is the true node, so a "
        "backed-off branch counts as wrong in `exact` and in the calibration columns. "
        "`adapt_on_test_feed` smooths over the test titles' own neighbours (no labels). "
        "Targets: exact >= 0.65, top level >= 0.92, hier F1 >= 0.78, conf >= 0.9 rows >= 95% "
        "right, ECE <= 0.05.",
        "",
        f"Reliability diagram: `{r['reliability_png']}`. Temperature fitted on dev: "
        f"{r['temperature_fitted_on_dev']} (shipped {r['package_defaults']['temperature']}). "
        f"Fashion test with the same defaults: {r['fashion_test_calibration']}.",
        "",
        f"Grid choice on dev: {r['grid_choice']} (package default: "
        f"{r['grid_choice_is_package_default']}). Dev, package default: {r['dev']['package_default']}.",
        "",
        f"Speed: {r['timings']['titles_per_s']} titles/s through `predict` (embedding cache warm).",
        "",
    ]
    if r["sample30_shopify"]:
        lines += sample30_lines(r["sample30_shopify"])
    return "\n".join(lines)


def sample30_lines(s: dict) -> list[str]:
    """The sample30 section."""
    return [
        "## sample30 into Shopify",
        "",
        f"{s['right']} right, {s['acceptable']} acceptable, {s['wrong']} wrong; wrong with "
        f"confidence >= 0.9: {s['wrong_with_confidence_0_9']}; rows with tags: {s['with_tags']}/30.",
        "",
        "| id | title | predicted | conf | grade | right category |",
        "|---|---|---|---|---|---|",
        *[
            f"| {x['id']} | {x['title']} | {x['predicted']} | {x['confidence']} | {x['grade']} | "
            f"{x['right_category']} |"
            for x in s["rows"]
        ],
        "",
    ]
