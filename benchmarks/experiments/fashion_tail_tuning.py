"""Would a stronger image pathway reach the image-only goal? Tune DINOv2's last block(s) on cached
intermediate tokens and compare with a head on the frozen pooled features, on validation.

The frozen-head recipe reads DINOv2-small's pooled output (CLS + mean of patches). Fine-tuning
the whole tower is out of reach on 2 CPU cores, but its early blocks need not run more than
once: this benchmark runs blocks ``0 .. L-k-1`` once per photo and keeps their output tokens,
then trains the last ``k`` blocks (plus the final layer norm) and a linear classifier on them,
against the same linear classifier (and the recipe's MLP head) on the frozen pooled features of
the same photos. Train: a deterministic sample of the fashion *training* photos; scored on the
imaged *validation* rows (``id % 10 == 3``), image only, leaf accuracy. Nothing of the test
split is read. Results: ``benchmarks/results/fashion_tail_tuning.{json,md}``.

Usage (from the repo root; about 15 minutes on 2 cores)::

    python -m benchmarks.experiments.fashion_tail_tuning --train 2400 --blocks 1
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from benchmarks.fashion_data import DATA_DIR
from benchmarks.fashion_model import environment, made_by, output_stem, write_results
from benchmarks.fashion_model_data import load_table
from multimodal_cat.encoders._base import load_tower
from multimodal_cat.framing import fit_image
from multimodal_cat.imaging import open_image


def photo_paths(ids: np.ndarray) -> list[str]:
    """Image file of each product id (``styles_with_images.csv``)."""
    import pandas as pd

    frame = pd.read_csv(DATA_DIR / "styles_with_images.csv", on_bad_lines="skip")
    by_id = dict(zip(frame["id"], frame["image"], strict=True))
    return [str(DATA_DIR / by_id[int(i)]) for i in ids]


@torch.inference_mode()
def early_tokens(model, processor, paths: list[str], first_tuned: int, batch: int = 32) -> torch.Tensor:
    """Tokens entering block ``first_tuned`` for each photo, float16 (n, tokens, hidden)."""
    out = []
    for start in tqdm(range(0, len(paths), batch), desc="early blocks", unit="batch"):
        images = [fit_image(open_image(p)) for p in paths[start : start + batch]]
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        hidden = model(pixel_values=pixels, output_hidden_states=True).hidden_states
        out.append(hidden[first_tuned].to(torch.float16))
    return torch.cat(out)


class Tail(nn.Module):
    """The last blocks + final norm of DINOv2, CLS + mean pooling, then a linear classifier."""

    def __init__(self, model, first_tuned: int, n_classes: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(copy.deepcopy(model.encoder.layer[first_tuned:]))
        self.norm = copy.deepcopy(model.layernorm)
        self.classifier = nn.Linear(2 * model.config.hidden_size, n_classes)

    def pooled(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = tokens.float()
        for block in self.blocks:
            hidden = block(hidden)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        hidden = self.norm(hidden)
        return torch.cat([hidden[:, 0], hidden[:, 1:].mean(1)], dim=-1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pooled(tokens))


def train_tail(tail: Tail, tokens, labels, epochs: int, lr_block: float, seed: int = 0) -> Tail:
    torch.manual_seed(seed)
    groups = [
        {"params": [p for n, p in tail.named_parameters() if not n.startswith("classifier")], "lr": lr_block},
        {"params": tail.classifier.parameters(), "lr": 1e-4},
    ]
    optimizer = torch.optim.AdamW(groups, weight_decay=0.05)
    steps = epochs * ((len(labels) + 31) // 32)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[lr_block, 1e-4], total_steps=steps, pct_start=0.1
    )
    tail.train()
    for _ in tqdm(range(epochs), desc="tail epochs"):
        order = torch.randperm(len(labels))
        for start in range(0, len(labels), 32):
            rows = order[start : start + 32]
            loss = nn.functional.cross_entropy(tail(tokens[rows]), labels[rows], label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return tail.eval()


def linear_probe(features, labels, val_features, val_labels) -> tuple[float, object]:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000, C=2.0).fit(features, labels)
    return float((clf.predict(val_features) == val_labels).mean()), clf


def warm_start(tail: Tail, probe: object) -> None:
    """Start the tuned tail's classifier from the probe's weights (classes it never saw: zero)."""
    with torch.no_grad():
        tail.classifier.weight.zero_()
        tail.classifier.bias.fill_(-10.0)
        rows = torch.as_tensor(probe.classes_, dtype=torch.long)
        tail.classifier.weight[rows] = torch.as_tensor(probe.coef_, dtype=torch.float32)
        tail.classifier.bias[rows] = torch.as_tensor(probe.intercept_, dtype=torch.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=2400, help="training photos (sampled)")
    parser.add_argument("--blocks", type=int, default=1, help="last blocks to tune")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-5, help="learning rate of the tuned blocks")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table = load_table()
    rng = np.random.default_rng(0)
    train = rng.permutation(table.rows("train", imaged=True))[: args.train]
    val = table.rows("val", imaged=True)
    model, processor = load_tower("dinov2-small", "image", "cls_mean", local_files_only=None, cache_dir=None)
    model.eval()
    first = model.config.num_hidden_layers - args.blocks
    tokens = early_tokens(model, processor, photo_paths(table.ids[train]), first)
    val_tokens = early_tokens(model, processor, photo_paths(table.ids[val]), first)
    leaves = {node: i for i, node in enumerate(table.space.leaves)}
    y = torch.tensor([leaves[int(n)] for n in table.labels[train]])
    y_val = np.array([leaves[int(n)] for n in table.labels[val]])
    tail = Tail(model, first, len(leaves))
    with torch.no_grad():  # the frozen pooled features, through the same (untuned) tail
        frozen = torch.cat([tail.pooled(tokens[i : i + 64]) for i in range(0, len(y), 64)]).numpy()
        frozen_val = torch.cat([tail.pooled(val_tokens[i : i + 64]) for i in range(0, len(y_val), 64)]).numpy()
    probe, fitted = linear_probe(frozen, y.numpy(), frozen_val, y_val)
    warm_start(tail, fitted)
    began = time.perf_counter()
    tail = train_tail(tail, tokens, y, args.epochs, args.lr)
    tail_seconds = time.perf_counter() - began
    with torch.no_grad():
        logits = torch.cat([tail(val_tokens[i : i + 64]) for i in range(0, len(y_val), 64)])
    tuned = float((logits.argmax(-1).numpy() == y_val).mean())
    result = {
        "environment": environment("benchmarks.experiments.fashion_tail_tuning"),
        "train_photos": int(len(y)),
        "val_photos": int(len(y_val)),
        "tuned_blocks": args.blocks,
        "epochs": args.epochs,
        "lr_blocks": args.lr,
        "val_image_only_leaf_accuracy": {
            "linear_probe_on_frozen_features": round(probe, 4),
            "tuned_tail_linear_classifier": round(tuned, 4),
        },
        "tail_train_seconds": round(tail_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    acc = result["val_image_only_leaf_accuracy"]
    text = "\n".join(
        [
            "# Tuning DINOv2's last blocks on cached tokens (fashion validation, image only)",
            "",
            f"Made by {made_by(result['environment'])}.",
            "",
            f"{result['train_photos']} training photos, {result['val_photos']} validation photos; "
            f"last {args.blocks} block(s) + final norm tuned for {args.epochs} epochs (lr {args.lr}; "
            "the classifier starts from the probe's weights, lr 1e-4) "
            f"in {result['tail_train_seconds']} s.",
            "",
            "| image pathway | leaf accuracy |",
            "|---|---|",
            f"| logistic regression on the frozen pooled features | {acc['linear_probe_on_frozen_features']} |",
            f"| tuned last block(s) + linear classifier | {acc['tuned_tail_linear_classifier']} |",
            "",
        ]
    )
    write_results(output_stem("fashion_tail_tuning", args.out, False), result, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
