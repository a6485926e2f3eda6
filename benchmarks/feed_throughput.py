"""Throughput of the real feed job with a fused checkpoint, against this machine's compute ceiling.

Runs ``categorize_feed`` over imaged fashion rows with a fused DINOv2-S + MiniLM checkpoint
(heads trained for a few seconds on cached embeddings of training rows), three times: fp32 with
an empty embedding cache, fp32 again (all cache hits) and bf16 with an empty cache. Around each
timed pass it measures the dense matmul rate (2048 x 2048, torch) so that products/s can be read
as a share of ``matmul GFLOP/s / GFLOP per product``, measured under the same machine load.

Example:
    python -m benchmarks.feed_throughput --quick          # 64 rows, smoke run
    python -m benchmarks.feed_throughput --rows 2000      # writes benchmarks/results/feed_throughput.*
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.fashion_data import DATA_DIR, REPO, load_fashion_embeddings

SCRATCH = REPO / "scratch" / "feed2"
RESULTS = REPO / "benchmarks" / "results"
LEVELS = ("masterCategory", "subCategory", "articleType")


# ------------------------------------------------------------------------------------ data
def fashion_frame() -> Any:
    import pandas as pd

    frame = pd.read_csv(DATA_DIR / "styles_with_images.csv", on_bad_lines="skip")
    frame["path"] = frame[list(LEVELS)].astype(str).agg(" > ".join, axis=1)
    return frame


def build_feed(rows: int, path: Path) -> int:
    """Write the first ``rows`` imaged rows with ``id % 5 == 0`` (then others), CSV order."""
    import pandas as pd

    frame = fashion_frame()
    test = frame[frame["id"] % 5 == 0]
    rest = frame[frame["id"] % 5 != 0]
    chosen = pd.concat([test, rest]).head(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "image", "truth"])
        for row in chosen.itertuples():
            writer.writerow([row.id, row.productDisplayName, str(DATA_DIR / row.image), row.path])
    return len(chosen)


def build_checkpoint(folder: Path, seconds: float = 10.0) -> dict[str, Any]:
    """A fused checkpoint whose heads are trained on cached embeddings of rows with id % 5 != 0."""
    from multimodal_cat.modeling import LabelSpace, MultimodalCatModel, MultimodalCatProcessor

    frame = fashion_frame()
    space = LabelSpace.from_paths(sorted(set(frame["path"])), name="fashion")
    model = MultimodalCatModel.from_encoders(
        vision="dinov2-small", text="minilm", taxonomy=space, freeze_encoders=True,
        vision_pooling="cls_mean", text_pooling="mean",
    )  # fmt: skip
    train = frame[frame["id"] % 5 != 0]
    images = load_fashion_embeddings("images", train["id"].to_numpy())
    titles = load_fashion_embeddings("titles", train["id"].to_numpy())
    keep = images.found & titles.found
    image_x = torch.from_numpy(images.vectors[keep])
    text_x = torch.from_numpy(titles.vectors[keep])
    labels = torch.tensor([space.node_index(p) for p in train["path"].to_numpy()[keep]])
    params = [p for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.01)
    model.train()
    start, steps, generator = time.monotonic(), 0, torch.Generator().manual_seed(0)
    while time.monotonic() - start < seconds:
        for batch in torch.randperm(len(labels), generator=generator).split(256):
            out = model(
                image_embeds=image_x[batch], text_embeds=text_x[batch], labels=labels[batch]
            )
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            steps += 1
    model.eval()
    model.save_pretrained(folder)
    MultimodalCatProcessor.from_encoders("dinov2-small", "minilm", max_length=64).save_pretrained(
        folder
    )
    return {"train_rows": int(keep.sum()), "steps": steps, "seconds": round(seconds, 1)}


# ----------------------------------------------------------------------------- ceilings
def matmul_gflops(dtype: torch.dtype, seconds: float = 3.0, n: int = 2048) -> dict[str, float]:
    """Dense n x n matmul rate over a ``seconds`` window (mean) and its best single call."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        tick = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - tick)
    flops = 2 * n**3
    return {
        "mean_gflops": round(flops * len(times) / sum(times) / 1e9, 1),
        "best_gflops": round(flops / min(times) / 1e9, 1),
        "calls": len(times),
    }


def ceilings(bf16: bool) -> dict[str, Any]:
    """Matmul rates at the process's thread count and on one thread; ``<dtype>`` is the higher."""
    out: dict[str, Any] = {}
    for dtype in ("fp32", "bf16") if bf16 else ("fp32",):
        torch_dtype = torch.float32 if dtype == "fp32" else torch.bfloat16
        out[f"{dtype}_all_threads"] = matmul_gflops(torch_dtype)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        out[f"{dtype}_1_thread"] = matmul_gflops(torch_dtype, seconds=2.0)
        torch.set_num_threads(threads)
        best = max(
            out[f"{dtype}_all_threads"], out[f"{dtype}_1_thread"], key=lambda r: r["mean_gflops"]
        )
        out[dtype] = dict(best)
    return out


# -------------------------------------------------------------------------------- FLOPs
def _layer_flops(tokens: float, tokens_sq: float, hidden: int, inner: int, layers: int) -> float:
    """Matmul FLOPs of ``layers`` transformer layers: 2 x weight params x tokens + attention."""
    weights = 4 * hidden * hidden + 2 * hidden * inner  # q, k, v, o + two MLP matrices
    return layers * (2 * weights * tokens + 4 * tokens_sq * hidden)  # QK^T and AV


def image_tower_flops(config: Any, size: int = 224) -> dict[str, float]:
    patches = (size // config.patch_size) ** 2
    tokens = patches + 1 + getattr(config, "num_register_tokens", 0)
    inner = int(config.hidden_size * config.mlp_ratio)
    layers = _layer_flops(tokens, tokens**2, config.hidden_size, inner, config.num_hidden_layers)
    patch_embed = 2 * 3 * config.patch_size**2 * config.hidden_size * patches
    return {"tokens": tokens, "flops": layers + patch_embed}


def text_tower_flops(config: Any, lengths: np.ndarray) -> float:
    mean, mean_sq = float(lengths.mean()), float((lengths.astype(float) ** 2).mean())
    return _layer_flops(
        mean, mean_sq, config.hidden_size, config.intermediate_size, config.num_hidden_layers
    )


def head_flops(model: Any) -> float:
    return float(
        sum(
            2 * m.weight.numel()
            for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and not name.startswith(("vision_", "text_"))
        )
    )


def measured_image_flops(model: Any) -> float:
    """Cross-check: torch's FlopCounterMode over one 224 x 224 image through the image tower."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.get_image_features(torch.randn(1, 3, 224, 224))
    return float(counter.get_total_flops())


def flops_per_product(checkpoint: Path, feed: Path) -> dict[str, Any]:
    from multimodal_cat.modeling import MultimodalCatModel, MultimodalCatProcessor
    from multimodal_cat.products import Product

    model = MultimodalCatModel.from_pretrained(checkpoint).eval()
    processor = MultimodalCatProcessor.from_pretrained(checkpoint)
    with open(feed, encoding="utf-8") as handle:
        texts = processor.texts([Product(title=r["title"]) for r in csv.DictReader(handle)])
    lengths = np.array(
        [len(ids) for ids in processor.tokenizer(texts, truncation=True, max_length=processor.max_length)["input_ids"]]
    )  # fmt: skip
    image = image_tower_flops(model.vision_model.config)
    text = text_tower_flops(model.text_model.config, lengths)
    head = head_flops(model)
    return {
        "image_tower_gflop": round(image["flops"] / 1e9, 3),
        "image_tokens": image["tokens"],
        "image_tower_gflop_flopcounter": round(measured_image_flops(model) / 1e9, 3),
        "text_tower_gflop": round(text / 1e9, 4),
        "text_tokens_mean": round(float(lengths.mean()), 2),
        "text_tokens_max": int(lengths.max()),
        "head_gflop": round(head / 1e9, 5),
        "total_gflop": round((image["flops"] + text + head) / 1e9, 3),
        "how": (
            "per transformer layer 2 x (4 d^2 + 2 d d_ff) x tokens (q,k,v,o and MLP weights) + "
            "4 x tokens^2 x d (QK^T, AV); DINOv2-S/14 at 224: 256 patches + CLS = 257 tokens, 12 "
            "layers, d=384, d_ff=1536, plus the 14x14 patch projection; MiniLM: 6 layers, d=384, "
            "d_ff=1536 on the feed's real (unpadded) token counts incl. [CLS]/[SEP]; head: 2 x "
            "weights of every Linear outside the towers. Cross-checked with "
            "torch.utils.flop_counter on one image, which counts the linears and the patch "
            "projection but not CPU SDPA attention (12 x 4 x 257^2 x 384 = 1.22 GFLOP)."
        ),
    }


# ------------------------------------------------------------------------------- passes
@dataclass
class Pass:
    """One timed ``categorize_feed`` run."""

    name: str
    bf16: bool
    num_threads: int | None
    rows: int
    seconds: float
    products_per_s: float
    ok: int
    ceiling_before: dict[str, Any]
    ceiling_after: dict[str, Any]
    load_before: list[float]
    load_after: list[float]
    output: str


def timed_pass(
    name: str, checkpoint: Path, feed: Path, cache_dir: Path, bf16: bool, args: argparse.Namespace
) -> Pass:
    """Measure the ceiling, run the feed job (predictor already loaded), measure again."""
    from multimodal_cat.encoders import EmbeddingCache
    from multimodal_cat.feeds import categorize_feed
    from multimodal_cat.predictors.checkpoint import ModelPredictor

    predictor = ModelPredictor.from_pretrained(
        str(checkpoint), bf16=bf16, cache=EmbeddingCache(cache_dir), num_threads=args.threads
    )
    output = SCRATCH / f"out_{name}.csv"
    output.unlink(missing_ok=True)
    for side in (f".{output.name}.progress.json", f".{output.name}.partial.jsonl"):
        output.with_name(side).unlink(missing_ok=True)
    load_before, before = list(os.getloadavg()), ceilings(bf16)
    start = time.perf_counter()
    summary = categorize_feed(feed, predictor, output, batch_size=args.batch_size, progress=False)
    seconds = time.perf_counter() - start
    after, load_after = ceilings(bf16), list(os.getloadavg())
    result = Pass(
        name, bf16, args.threads, summary.rows, round(seconds, 2), round(summary.rows / seconds, 2),
        summary.ok, before, after, load_before, load_after, str(output.relative_to(REPO)),
    )  # fmt: skip
    print(json.dumps(asdict(result)), flush=True)
    return result


def ceiling_ratio(run: Pass, gflop: float, dtype: str) -> dict[str, float]:
    """products/s divided by (matmul GFLOP/s / GFLOP per product), before / after / mean."""
    rates = [run.ceiling_before[dtype]["mean_gflops"], run.ceiling_after[dtype]["mean_gflops"]]
    ceiling = [r / gflop for r in rates]
    return {
        "ceiling_products_per_s_before": round(ceiling[0], 2),
        "ceiling_products_per_s_after": round(ceiling[1], 2),
        "ratio_vs_before": round(run.products_per_s / ceiling[0], 3),
        "ratio_vs_after": round(run.products_per_s / ceiling[1], 3),
        "ratio_vs_mean": round(run.products_per_s / (sum(ceiling) / 2), 3),
    }


def compare(first: Path, second: Path, feed: Path) -> dict[str, Any]:
    """Row-by-row top-1 agreement of two outputs, and each one's accuracy against the truth."""
    from multimodal_cat.feeds import read_output

    def ids(path: Path) -> list[str]:
        return [r["category_id"] for r in sorted(read_output(path), key=lambda r: r["row"])]

    with open(feed, encoding="utf-8") as handle:
        truth = [r["truth"] for r in csv.DictReader(handle)]
    a, b = ids(first), ids(second)
    return {
        "rows": len(a),
        "agreement": round(float(np.mean([x == y for x, y in zip(a, b, strict=True)])), 4),
        "accuracy_first": round(float(np.mean([x == t for x, t in zip(a, truth, strict=True)])), 4),
        "accuracy_second": round(
            float(np.mean([x == t for x, t in zip(b, truth, strict=True)])), 4
        ),
    }


# --------------------------------------------------------------------------------- main
def git_commit() -> str:
    found = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return found.stdout.strip()


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(0)
    rows = 64 if args.quick and not args.rows else (args.rows or 2000)
    feed = SCRATCH / f"feed_{rows}.csv"
    build_feed(rows, feed)
    checkpoint = Path(args.checkpoint)
    trained = None
    if args.rebuild or not (checkpoint / "config.json").exists():
        trained = build_checkpoint(checkpoint, args.train_seconds)
    flops = flops_per_product(checkpoint, feed)
    caches = SCRATCH / f"cache_{rows}"
    shutil.rmtree(caches, ignore_errors=True)
    fp32 = timed_pass("fp32_cold", checkpoint, feed, caches / "fp32", False, args)
    warm = timed_pass("fp32_warm", checkpoint, feed, caches / "fp32", False, args)
    bf16 = timed_pass("bf16_cold", checkpoint, feed, caches / "bf16", True, args)
    gflop = flops["total_gflop"]
    compared = {}
    if args.compare_rows:
        small = SCRATCH / f"feed_{args.compare_rows}.csv"
        build_feed(args.compare_rows, small)
        default = argparse.Namespace(**{**vars(args), "threads": None})
        for name, is_bf16 in (
            ("fp32_cold_default_threads", False),
            ("bf16_cold_default_threads", True),
        ):
            run = timed_pass(name, checkpoint, small, caches / name, is_bf16, default)
            dtype = "bf16" if is_bf16 else "fp32"
            compared[name] = {"pass": asdict(run), "ratio": ceiling_ratio(run, gflop, dtype)}
    return {
        "command": " ".join(
            [Path(sys.executable).name, "-m", "benchmarks.feed_throughput", *sys.argv[1:]]
        ),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "rows": rows,
        "feed": str(feed.relative_to(REPO)),
        "checkpoint": str(checkpoint),
        "checkpoint_training": trained,
        "batch_size": args.batch_size,
        "flops_per_product": flops,
        "num_threads": args.threads,
        "passes": [asdict(p) for p in (fp32, warm, bf16)],
        "default_threads_comparison": compared,
        "fp32_vs_fp32_ceiling": ceiling_ratio(fp32, gflop, "fp32"),
        "bf16_vs_bf16_ceiling": ceiling_ratio(bf16, gflop, "bf16"),
        "bf16_vs_fp32_ceiling": ceiling_ratio(bf16, gflop, "fp32"),
        "bf16_speedup": round(bf16.products_per_s / fp32.products_per_s, 3),
        "bf16_agreement": compare(
            SCRATCH / "out_fp32_cold.csv", SCRATCH / "out_bf16_cold.csv", feed
        ),
        "cache_speedup": round(fp32.seconds / warm.seconds, 1),
        "warm_agreement": compare(
            SCRATCH / "out_fp32_cold.csv", SCRATCH / "out_fp32_warm.csv", feed
        ),
        "targets": {"fp32_ratio": 0.6, "bf16_agreement": 0.99, "cache_speedup": 20.0},
    }


def markdown(result: dict[str, Any]) -> str:
    flops, fp32, bf16 = result["flops_per_product"], result["passes"][0], result["passes"][2]
    ratio, ratio16 = result["fp32_vs_fp32_ceiling"], result["bf16_vs_bf16_ceiling"]
    agree = result["bf16_agreement"]
    lines = [
        "# Feed job throughput with a fused checkpoint",
        "",
        f"`{result['command']}` at commit `{result['git_commit'][:12]}`, {result['date']}, "
        f"{result['cpu_count']} CPUs ({result['torch_threads']} torch threads; predictor "
        f"num_threads={result['num_threads']}), torch "
        f"{result['torch']}. {result['rows']:,} imaged fashion rows (id % 5 == 0 first), "
        f"DINOv2-S/14 + MiniLM fused checkpoint, `categorize_feed` batch {result['batch_size']}.",
        "",
        f"FLOPs per product: {flops['total_gflop']} GFLOP = image tower "
        f"{flops['image_tower_gflop']} (flop counter: {flops['image_tower_gflop_flopcounter']}) + "
        f"text tower {flops['text_tower_gflop']} ({flops['text_tokens_mean']} tokens on average) "
        f"+ head {flops['head_gflop']}.",
        "",
        "| pass | products/s | s | matmul GFLOP/s before / after | ceiling products/s | ratio | load before -> after |",
        "|---|---|---|---|---|---|---|",
    ]
    extra = [
        (c["pass"], "bf16" if c["pass"]["bf16"] else "fp32", c["ratio"])
        for c in result["default_threads_comparison"].values()
    ]
    for run, dtype, r in (
        (fp32, "fp32", ratio),
        (result["passes"][1], "fp32", None),
        (bf16, "bf16", ratio16),
        *extra,
    ):
        before, after = run["ceiling_before"][dtype], run["ceiling_after"][dtype]
        ceiling = (
            f"{r['ceiling_products_per_s_before']} / {r['ceiling_products_per_s_after']}"
            if r
            else ""
        )
        share = f"{r['ratio_vs_before']} / {r['ratio_vs_after']}" if r else ""
        lines.append(
            f"| {run['name']} ({run['rows']} rows, threads {run['num_threads']}) | {run['products_per_s']} | {run['seconds']} | {dtype} "
            f"{before['mean_gflops']} / {after['mean_gflops']} | {ceiling} | {share} | "
            f"{[round(x, 2) for x in run['load_before']]} -> {[round(x, 2) for x in run['load_after']]} |"
        )
    lines += [
        "",
        f"- fp32 vs fp32 ceiling: **{ratio['ratio_vs_mean']}** (target 0.6).",
        f"- bf16: {result['bf16_speedup']}x the fp32 products/s; top-1 agreement with fp32 "
        f"**{agree['agreement']}** over {agree['rows']} rows (target 0.99); accuracy vs truth "
        f"{agree['accuracy_first']} (fp32) / {agree['accuracy_second']} (bf16). Against the fp32 "
        f"ceiling the bf16 pass reaches {result['bf16_vs_fp32_ceiling']['ratio_vs_mean']}.",
        f"- Second fp32 pass (all embedding-cache hits): **{result['cache_speedup']}x** faster "
        f"(target 20x), same top-1 on {result['warm_agreement']['agreement']} of rows.",
        "",
        "Ceilings are 2048x2048 torch matmuls right before and right after each timed pass (mean "
        "rate over a 3 s window with all threads and a 2 s window on one thread; the higher of the "
        "two is the ceiling), on a machine shared with other jobs; the ratio column "
        "is products/s over (matmul GFLOP/s / GFLOP per product). Threads `None` = the process "
        "default (one per core); the main passes set the predictor's `num_threads`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="feed rows (default 2000)")
    parser.add_argument("--quick", action="store_true", help="64 rows, results under scratch/feed2")
    parser.add_argument("--batch-size", type=int, default=64, help="rows per predict call")
    parser.add_argument(
        "--threads", type=int, default=1, help="ModelPredictor num_threads (0: process default)"
    )
    parser.add_argument(
        "--compare-rows", type=int, default=None, help="rows for the default-threads passes"
    )
    parser.add_argument("--checkpoint", default=str(SCRATCH / "fused_ckpt"))
    parser.add_argument("--rebuild", action="store_true", help="retrain the checkpoint's head")
    parser.add_argument("--train-seconds", type=float, default=10.0)
    parser.add_argument("--out", default=None, help="results path without extension")
    args = parser.parse_args(argv)
    args.threads = args.threads or None
    if args.compare_rows is None:
        args.compare_rows = 32 if args.quick else 400
    result = run(args)
    default = SCRATCH / "quick" if args.quick else RESULTS / "feed_throughput"
    out = Path(args.out) if args.out else default
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
