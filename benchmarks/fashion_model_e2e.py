"""End-to-end fine-tuning of the MiniLM text tower of a trained fused ``MultimodalCatModel``.

The image embeddings stay cached (DINOv2-S on 2 CPU cores is too slow to fine-tune); the text
tower runs on ``input_ids`` and is trained together with the fusion and heads, warm-started
from a head trained on cached embeddings. The model accepts ``input_ids`` + ``image_embeds``
together.

Example:
    >>> tuned, seconds = finetune_text(head_model, table, rows)  # doctest: +SKIP
    >>> probs, tags = predict_text(tuned, table, table.rows("test"))  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from benchmarks.fashion_model_data import FashionTable
from multimodal_cat.modeling import MultimodalCatModel


@dataclass(frozen=True)
class FinetuneSpec:
    """Settings of the end-to-end run (fixed in advance; judged on validation)."""

    epochs: int = 1
    batch_size: int = 32
    max_length: int = 32
    tower_lr: float = 3e-5
    head_lr: float = 3e-4
    brand_share: float = 0.0  # same augmentation as the head: brand-only text on imaged rows
    bf16: bool = True  # bf16 autocast (AMX on this CPU: ~1.7x the fp32 speed)

    def to_dict(self) -> dict:
        return asdict(self)


def _tokenizer():
    from transformers import AutoTokenizer

    from multimodal_cat.encoders import resolve_encoder

    return AutoTokenizer.from_pretrained(resolve_encoder("minilm"))


def _batch(tokenizer, table: FashionTable, rows: np.ndarray, texts: list[str], max_length: int):
    """Tokenized ``texts`` (one per row of ``rows``) with the rows' cached image embeddings."""
    enc = tokenizer(
        [t or "" for t in texts],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "image_embeds": torch.from_numpy(table.image[rows]),
        "image_mask": torch.from_numpy(table.image_mask[rows]),
    }


def finetune_text(
    head_model: MultimodalCatModel,
    table: FashionTable,
    rows: np.ndarray,
    spec: FinetuneSpec = FinetuneSpec(),
    seed: int = 0,
) -> tuple[MultimodalCatModel, float]:
    """Copy ``head_model``, unfreeze its text tower and train tower + heads on ``rows``."""
    torch.manual_seed(seed)
    model = copy.deepcopy(head_model)
    model.config.freeze_encoders = False
    model.text_model.requires_grad_(True)
    if model.vision_model is not None:
        model.vision_model.requires_grad_(False)  # images stay cached embeddings
    tower = [p for p in model.text_model.parameters()]
    tower_ids = {id(p) for p in tower}
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in tower_ids]
    optimizer = torch.optim.AdamW(
        [{"params": tower, "lr": spec.tower_lr}, {"params": head, "lr": spec.head_lr}],
        weight_decay=0.01,
    )
    total = spec.epochs * math.ceil(len(rows) / spec.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, total // 10)) * max(0.0, 1 - s / total)
    )
    tokenizer = _tokenizer()
    brands = table.brands
    rng = np.random.default_rng(seed)
    model.train()
    start = time.perf_counter()
    for _ in range(spec.epochs):
        order = rows[rng.permutation(len(rows))]
        for begin in range(0, len(order), spec.batch_size):
            idx = order[begin : begin + spec.batch_size]
            use_brand = table.image_mask[idx] & (rng.random(len(idx)) < spec.brand_share)
            texts = [
                brands[i] if b else table.titles[i] for i, b in zip(idx, use_brand, strict=True)
            ]
            batch = _batch(tokenizer, table, idx, texts, spec.max_length)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=spec.bf16):
                out = model(
                    **batch,
                    labels=torch.from_numpy(table.labels[idx]),
                    tag_labels=torch.from_numpy(table.tags[idx]),
                )
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            schedule.step()
    seconds = time.perf_counter() - start
    model.eval()
    return model, seconds


@torch.no_grad()
def predict_text(
    model: MultimodalCatModel,
    table: FashionTable,
    rows: np.ndarray,
    text_kind: str = "titles",
    max_length: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """Leaf probabilities and tag logits, running the (fine-tuned) text tower on the titles."""
    tokenizer = _tokenizer()
    texts = table.titles if text_kind == "titles" else table.brands
    probs, tags = [], []
    for begin in range(0, len(rows), 256):
        idx = rows[begin : begin + 256]
        out = model(**_batch(tokenizer, table, idx, [texts[i] for i in idx], max_length))
        probs.append(torch.softmax(out.category_logits.float(), -1).numpy())
        tags.append(out.tag_logits.float().numpy())
    return np.concatenate(probs), np.concatenate(tags)


def _subset(table: FashionTable, rows: np.ndarray, size: int) -> np.ndarray:
    """Every imaged row of ``rows`` plus an evenly spaced share of the text-only ones."""
    imaged = rows[table.image_mask[rows]]
    text_only = rows[~table.image_mask[rows]]
    step = max(1, len(text_only) // max(1, size - len(imaged)))
    return np.sort(np.concatenate([imaged, text_only[::step]]))


def _markdown(result: dict) -> str:
    from benchmarks.fashion_model import made_by  # the module imports this one
    from benchmarks.fashion_model_eval import METRIC_KEYS

    keys = [k for k in METRIC_KEYS if k != "tag_macro_f1"]
    lines = ["| model | split | text | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 3)]
    for row in result["rows"]:
        cells = [row["model"], row["split"], row["setting"]]
        cells += ["" if row.get(k) is None else f"{row[k]:.4f}" for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    env = result["environment"]
    return (
        "\n".join(
            [
                "# Fashion benchmark: MiniLM fine-tuned end to end inside the fused model",
                "",
                f"{made_by(env)}, {env['torch_threads']} torch threads.",
                "",
                "The fused model's head is first trained on cached embeddings of the train rows "
                "(spec `{}`), then its MiniLM tower and head are fine-tuned together on {} train rows "
                "for {} epoch(s) (settings `{}`) in {:.0f} s ({:.1f} rows/s); DINOv2 image embeddings "
                "stay cached. Validation rows (`id % 10 == 3`) are held out; test = imaged "
                "`id % 5 == 0`.".format(
                    json.dumps(result["head_spec"]),
                    result["train_rows"],
                    result["finetune_spec"]["epochs"],
                    json.dumps(result["finetune_spec"]),
                    result["seconds"],
                    result["rows_per_second"],
                ),
                "",
                *lines,
            ]
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Fine-tune on train rows; score validation and test, head-only vs end to end."""
    import argparse
    import dataclasses
    import os

    from benchmarks.fashion_model import RESULTS, environment, output_stem, write_results
    from benchmarks.fashion_model_data import load_table
    from benchmarks.fashion_model_eval import evaluate
    from benchmarks.fashion_model_train import HeadSpec, predict, train_head

    parser = argparse.ArgumentParser(description="MiniLM end-to-end fine-tuning (fashion)")
    parser.add_argument(
        "--rows", type=int, default=0, help="training rows (all imaged ones + a share); 0 = all"
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smoke run on ~6k products")
    parser.add_argument(
        "--spec", type=json.loads, default=None, help="head spec as JSON (default: the chosen one)"
    )
    parser.add_argument(
        "--out", help="output stem (default: results/fashion_model_e2e; --quick: a temp dir)"
    )
    args = parser.parse_args(argv)
    chosen = json.loads((RESULTS / "fashion_model.json").read_text())["chosen_spec"]
    spec = HeadSpec.from_dict(args.spec or {k: v for k, v in chosen.items() if k != "modalities"})
    ft_spec = FinetuneSpec(brand_share=spec.brand_share, epochs=args.epochs)
    torch.set_num_threads(args.threads)
    env = environment("benchmarks.fashion_model_e2e")
    table = load_table(limit=6000 if args.quick else None)
    if args.quick:
        spec = dataclasses.replace(spec, epochs=2)
    torch.set_num_threads(1)
    head, head_seconds = train_head(table, table.rows("train"), spec, seed=0)
    torch.set_num_threads(args.threads)
    rows = table.rows("train")
    rows = _subset(table, rows, args.rows) if args.rows else rows
    tuned, seconds = finetune_text(head, table, rows, ft_spec, seed=0)
    out_rows = []
    for split, split_rows in (
        ("val", table.rows("val", imaged=True)),
        ("test", table.rows("test")),
    ):
        for name, model, run in (("head only", head, predict), ("end to end", tuned, predict_text)):
            for kind in ("titles", "brands"):
                metrics = evaluate(table, split_rows, *run(model, table, split_rows, kind))
                out_rows.append({"model": name, "split": split, "setting": kind, **metrics})
                print(json.dumps(out_rows[-1]), flush=True)
    result = {
        "environment": env,
        "head_spec": spec.to_dict(),
        "head_seconds": round(head_seconds, 1),
        "finetune_spec": ft_spec.to_dict(),
        "train_rows": int(len(rows)),
        "seconds": round(seconds, 1),
        "rows_per_second": round(len(rows) * ft_spec.epochs / seconds, 1),
        "rows": out_rows,
    }
    env["load_average_end"] = list(os.getloadavg())
    write_results(output_stem("fashion_model_e2e", args.out, args.quick), result, _markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
