"""Model cards: the ``README.md`` that ``save_pretrained``, ``train`` and ``push_to_hub`` write.

The card opens with the model hub's YAML metadata: ``library_name: multimodal-cat``, the
``pipeline_tag``, tags, the towers as ``base_model`` hub ids (the offline short names give
their models' ids, e.g. ``sentence-transformers/all-MiniLM-L6-v2``; a tower loaded from a local
folder is left out, never named by its path), and, when the folder holds the training run's
metrics (``all_results.json``, or a checkpoint's ``trainer_state.json``), the metric names and a
``model-index`` with their values. Then: what the model predicts (label count, taxonomy, tags),
its intended use and limits, the metrics and a usage snippet.

``pipeline_tag`` is ``text-classification`` for a model with a text tower, and
``image-classification`` only for an image-only model: the hub knows one task per model, and a
product title is the input every product has (most catalogue rows come without a usable photo)
and a checkpoint with a text tower answers from text alone; a photo is an extra input there.

A README.md that this module did not write (no :data:`CARD_MARK`) is never overwritten.

Example:
    >>> from multimodal_cat.modeling.testing import tiny_config
    >>> text = model_card(tiny_config(), {"eval_leaf_accuracy": 0.9}, model_id="shop/cat")
    >>> text.splitlines()[1], "pipeline_tag: text-classification" in text
    ('library_name: multimodal-cat', True)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from multimodal_cat.encoders.registry import base_model_id
from multimodal_cat.modeling.configuration import MultimodalCatConfig

CARD_MARK = "<!-- written by multimodal-cat: it rewrites this file; remove this line to keep your edits -->"
LIBRARY = "multimodal-cat"
# eval metric -> (hub metric type, readable name), in the order the card lists them
HEADLINE = {
    "eval_leaf_accuracy": ("accuracy", "Leaf accuracy"),
    "eval_hierarchical_f1": ("f1", "Hierarchical F1"),
    "eval_leaf_macro_f1": ("f1", "Leaf macro-F1"),
    "eval_tag_micro_f1": ("f1", "Tag micro-F1"),
}
_NOT_METRICS = ("runtime", "per_second", "flos", "epoch")


def base_models(config: MultimodalCatConfig) -> list[str]:
    """The towers' hub ids (image first); towers loaded from a local folder are left out."""
    ids = []
    for sub in (config.vision_config, config.text_config):
        name = getattr(sub, "name_or_path", "") if sub is not None else ""
        found = base_model_id(name) if name else None
        if found and found not in ids:
            ids.append(found)
    return ids


def pipeline_tag(config: MultimodalCatConfig) -> str:
    """``text-classification`` when the model reads text, else ``image-classification``."""
    return "text-classification" if config.text_config is not None else "image-classification"


def run_metrics(folder: str | Path) -> dict[str, Any]:
    """The training run's metrics kept in ``folder``: ``all_results.json`` (the final folder of
    ``train``), else the last evaluation in ``trainer_state.json`` (a ``checkpoint-*``), else
    ``{}``."""
    folder = Path(folder)
    results = folder / "all_results.json"
    if results.is_file():
        return json.loads(results.read_text(encoding="utf-8"))
    state = folder / "trainer_state.json"
    if state.is_file():
        history = json.loads(state.read_text(encoding="utf-8")).get("log_history", [])
        evals = [entry for entry in history if "eval_loss" in entry or "eval_leaf_accuracy" in entry]
        if evals:
            return dict(evals[-1])
    return {}


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in sorted(metrics.items())
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        and not any(word in key for word in _NOT_METRICS)
    }


def metadata(
    config: MultimodalCatConfig, metrics: Mapping[str, Any], model_id: str, tags: list[str]
) -> dict[str, Any]:
    """The YAML metadata block of the card, as a dict."""
    task = pipeline_tag(config)
    towers = [name for name, sub in (("image", config.vision_config), ("text", config.text_config)) if sub is not None]
    data: dict[str, Any] = {
        "library_name": LIBRARY,
        "pipeline_tag": task,
        "tags": list(dict.fromkeys(
            [LIBRARY, "product-categorization", "taxonomy", "e-commerce"]
            + (["multimodal"] if len(towers) == 2 else [])
            + list(tags)
        )),
    }
    bases = base_models(config)
    if bases:
        data["base_model"] = bases if len(bases) > 1 else bases[0]
    numbers = _numbers(metrics)
    found = [(key, *HEADLINE[key]) for key in HEADLINE if key in numbers]
    if found:
        data["metrics"] = sorted({kind for _, kind, _ in found})
        data["model-index"] = [{
            "name": model_id,
            "results": [{
                "task": {"type": task, "name": "Product categorization"},
                "dataset": {"type": "custom", "name": "held-out rows of the training feed"},
                "metrics": [
                    {"type": kind, "value": round(numbers[key], 4), "name": name}
                    for key, kind, name in found
                ],
            }],
        }]
    return data


def _labels_text(config: MultimodalCatConfig) -> str:
    space = config.label_space
    leaves = len(space.leaves)
    depth = max((path.count(">") + 1 for path in space.paths), default=0)
    line = (
        f"- **Categories**: {leaves:,} leaf categories ({config.num_categories:,} nodes, "
        f"{depth} levels) of the `{config.taxonomy_name}` tree; `id2label` names the leaves."
    )
    groups = config.tag_group_list
    if groups:
        tags = ", ".join(
            f"`{g.attribute}` ({len(g.values)} values{', multi-valued' if g.multi_valued else ''})"
            for g in groups
        )
        line += f"\n- **Tags**: {tags}."
    towers = [
        f"{kind}: `{base_model_id(sub.name_or_path) or sub.model_type}`"
        for kind, sub in (("image", config.vision_config), ("text", config.text_config))
        if sub is not None
    ]
    line += f"\n- **Towers**: {', '.join(towers)}; fusion `{config.fusion_type}`."
    return line


def _metrics_text(metrics: Mapping[str, Any]) -> str:
    numbers = _numbers(metrics)
    if not numbers:
        return "No evaluation was recorded with this folder (train with an evaluation set)."
    rows = "\n".join(f"| `{key}` | {value:.4f} |" for key, value in numbers.items())
    return (
        "Measured by the training run on its evaluation rows:\n\n"
        f"| metric | value |\n|---|---:|\n{rows}"
    )


def _orientation_text(config: MultimodalCatConfig) -> str:
    """What the checkpoint does with a sideways photo (empty without an orientation probe)."""
    probe = config.orientation_probe or {}
    if not probe:
        return ""
    figures = probe.get("figures") or {}
    held_out = (
        f" On held-out training photos it found {figures['orientation_turned_photos_found']:.0%} of "
        f"the turned ones and {figures['orientation_upright_photos_found_turned']:.0%} of the upright "
        "ones turned."
        if "orientation_turned_photos_found" in figures
        else ""
    )
    action = (
        "read turned back upright"
        if probe.get("mode", "turn") == "turn"
        else "not trusted: answered from the text when there is one, else at a low confidence "
        "(turning back turned too many upright held-out photos)"
    )
    return (
        "\nSideways photos: a photo that an orientation probe, fitted on the training photos, "
        f"finds turned by 90, 180 or 270 degrees is {action}, with a warning on the answer.{held_out}\n"
    )


def _usage(model_id: str) -> str:
    return f'''```python
import multimodal_cat  # registers the Auto classes and the pipeline task with transformers
from transformers import pipeline

categorize = pipeline("product-categorization", model="{model_id}")
categorize({{"title": "Men's leather running shoes", "image": "shoe.jpg"}})
# {{'label': ..., 'path': 'A > B > C', 'score': ..., 'alternatives': [...], 'tags': [...]}}

from multimodal_cat import Categorizer  # feeds, DataFrames, mappings to other trees
Categorizer.from_pretrained("{model_id}").predict({{"title": "Stoneware coffee mug"}})
```'''


def model_card(
    config: MultimodalCatConfig,
    metrics: Mapping[str, Any] | None = None,
    *,
    model_id: str = "path/to/checkpoint",
    tags: list[str] | None = None,
) -> str:
    """The model card (README.md text) of a checkpoint with ``config``.

    Args:
        config: The model's config (towers, label space, tags).
        metrics: The training run's metrics (``all_results.json``); ``None`` or ``{}`` = none.
        model_id: What the usage snippet loads: a hub repo id or a folder.
        tags: Extra hub tags.
    """
    metrics = dict(metrics or {})
    head = yaml.safe_dump(metadata(config, metrics, model_id, tags or []), sort_keys=False)
    reads = {
        (True, True): "photo and text (title, description and brand through the text "
        "template; a product missing one of them is answered from the other)",
        (True, False): "text (title, description and brand through the text template)",
        (False, True): "photo",
    }[(config.text_config is not None, config.vision_config is not None)]
    return f"""---
{head}---
{CARD_MARK}

# {Path(model_id).name or model_id}

A [multimodal-cat](https://pypi.org/project/multimodal-cat/) product categorizer: it reads a
product's {reads} and predicts a category of a taxonomy tree, always an existing path, with a
probability, the top alternatives and attribute tags.

{_labels_text(config)}

## Intended use

Categorizing marketplace or catalogue products into the tree above: new listings at upload
time, catalogue clean-up, and mapping to other marketplaces' trees with `multimodal_cat`'s
mappings. Answers below a confidence threshold (`min_confidence` backs off to a coarser,
surer category) should go to human review.

Not for: categories outside this tree (the model always answers one of its own), products
unlike the training feed (other languages, product kinds or photo styles than it was trained
on), or decisions about people.
{_orientation_text(config)}
## Metrics

{_metrics_text(metrics)}

## Usage

{_usage(model_id)}
"""


def write_model_card(
    folder: str | Path,
    config: MultimodalCatConfig,
    *,
    metrics: Mapping[str, Any] | None = None,
    model_id: str | None = None,
    tags: list[str] | None = None,
) -> Path | None:
    """Write ``folder/README.md`` (metrics from the folder when not given).

    Returns the card's path, or ``None`` when the folder holds a README.md this module did not
    write (kept as it is).
    """
    folder = Path(folder)
    card = folder / "README.md"
    if card.is_file() and CARD_MARK not in card.read_text(encoding="utf-8", errors="replace"):
        return None
    found = run_metrics(folder) if metrics is None else metrics
    text = model_card(config, found, model_id=model_id or folder.resolve().name, tags=tags)
    card.write_text(text, encoding="utf-8")
    return card
