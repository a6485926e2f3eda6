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
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    """Fine-tune on train rows, judge on validation, score test; add rows to the results files."""
    import argparse
    import dataclasses
    import json

    from benchmarks.fashion_model import RESULTS, markdown
    from benchmarks.fashion_model_data import load_table
    from benchmarks.fashion_model_eval import evaluate
    from benchmarks.fashion_model_train import HeadSpec, predict, train_head

    parser = argparse.ArgumentParser(description="MiniLM end-to-end fine-tuning (fashion)")
    parser.add_argument("--rows", type=int, default=12000, help="training rows (all imaged ones)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smoke run on ~6k products")
    parser.add_argument("--results", default=str(RESULTS / "fashion_model.json"))
    args = parser.parse_args(argv)
    result = json.loads(Path(args.results).read_text())
    fields = {k: v for k, v in result["chosen_spec"].items() if k != "modalities"}
    spec = dataclasses.replace(HeadSpec(), **fields)
    ft_spec = FinetuneSpec(brand_share=spec.brand_share)
    table = load_table(limit=6000 if args.quick else None)
    if args.quick:
        spec = dataclasses.replace(spec, epochs=2)
    torch.set_num_threads(1)
    head, head_seconds = train_head(table, table.rows("train"), spec, seed=0)
    torch.set_num_threads(args.threads)
    rows = _subset(table, table.rows("train"), args.rows)
    tuned, seconds = finetune_text(head, table, rows, ft_spec, seed=0)
    val, test = table.rows("val", imaged=True), table.rows("test")
    report = {"finetune_spec": ft_spec.to_dict(), "rows": len(rows), "seconds": round(seconds, 1)}
    for name, model, run in (("head", head, predict), ("e2e", tuned, predict_text)):
        for kind in ("titles", "brands"):
            report[f"val_{name}_{kind}"] = evaluate(table, val, run(model, table, val, kind)[0])
    print(json.dumps(report), flush=True)
    for kind in ("titles", "brands"):
        metrics = evaluate(table, test, *predict_text(tuned, table, test, kind))
        result["rows"].append(
            {
                "model": "fused, MiniLM fine-tuned end to end (seed 0)",
                "setting": kind,
                "trained_on": f"{len(rows)} train rows (val held out)",
                "head_seconds": round(seconds, 1),
                **metrics,
            }
        )
    result["e2e"] = report
    Path(args.results).write_text(json.dumps(result, indent=2) + "\n")
    Path(args.results).with_suffix(".md").write_text(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
