"""Fit the orientation probe (:mod:`multimodal_cat.modeling.orientation`) after training.

A sample of the training photos is embedded by the trained image tower as it comes and turned
by 90, 180 and 270 degrees (the upright ones are usually in the embedding cache already), and
a four-way logistic regression learns the turn from the embedding. A fifth of the photos is
held out to measure it and to choose how sure the probe must be before a photo is turned back:
the lowest of :data:`MIN_PROBABILITIES` at which at most :data:`MAX_UPRIGHT_TURNED` of the
held-out upright photos would be turned. When none is that safe (the catalog's photos come in
orientations the probe cannot tell apart), the probe is stored in ``"flag"`` mode: a photo it
finds turned is not turned back but not trusted either (see
:mod:`multimodal_cat.modeling.orientation`). The stored weights are then refitted on every
sampled photo.

Example:
    >>> figures = fit_orientation_probe(model, processor, train_set, cache=cache)  # doctest: +SKIP
    >>> figures["orientation_mode"], figures["orientation_turned_photos_read_upright"]  # doctest: +SKIP
    ('turn', 0.89)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from multimodal_cat._progress import progress_bar
from multimodal_cat.encoders import EmbeddingCache
from multimodal_cat.imaging import try_open_image
from multimodal_cat.modeling import MultimodalCatModel, MultimodalCatProcessor
from multimodal_cat.modeling.orientation import TURNS, OrientationProbe
from multimodal_cat.predictors.checkpoint import TowerEmbedder

__all__ = ["fit_orientation_probe"]

MIN_PHOTOS = 20  # fewer readable training photos: no probe (the model reads photos as they come)
HELD_OUT = 0.2
MIN_PROBABILITIES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
MAX_UPRIGHT_TURNED = 0.01  # share of held-out upright photos the chosen setting may turn
FLAG_MIN_PROBABILITY = 0.9  # when no setting turns so few: the vote that flags a photo
C = 30.0  # inverse regularisation (chosen on 400 fashion photos: 10 is surer but checks more photos)


def _sample_photos(dataset: Any, size: int, seed: int) -> list[Any]:
    """Up to ``size`` readable photos of ``dataset``'s rows (``image`` paths), drawn with ``seed``."""
    paths = [p for p in dict.fromkeys(dataset["image"]) if p] if "image" in dataset.column_names else []
    order = np.random.default_rng(seed).permutation(len(paths))
    photos = []
    for i in order:
        image = try_open_image(str(paths[i]))
        if image is not None:
            photos.append(image.convert("RGB"))
        if len(photos) == size:
            break
    return photos


def _embed_turns(embedder: TowerEmbedder, photos: list[Any]) -> np.ndarray:
    """(len(TURNS), n, dim) image embeddings of each photo turned each way."""
    out = []
    bar = progress_bar(total=len(TURNS) * len(photos), desc="photos turned for the orientation check",
                       unit="photo")
    for degrees in TURNS:
        vectors = []
        for start in range(0, len(photos), embedder.batch_size):
            chunk = [photo.rotate(degrees, expand=True) for photo in photos[start : start + embedder.batch_size]]
            vectors.append(embedder.embed_images(chunk))
            bar.update(len(chunk))
        out.append(torch.cat(vectors).numpy())
    bar.close()
    return np.stack(out)


def _fit(vectors: np.ndarray) -> Any:
    """Four-way logistic regression from ``vectors`` (turns, photos, dim) to the turn."""
    from sklearn.linear_model import LogisticRegression

    x = vectors.reshape(-1, vectors.shape[-1])
    y = np.repeat(np.arange(len(TURNS)), vectors.shape[1])
    return LogisticRegression(C=C, max_iter=5000).fit(x, y)


def _probe(classifier: Any, min_probability: float = 0.9) -> OrientationProbe:
    return OrientationProbe(
        weight=np.round(classifier.coef_, 6).tolist(),
        bias=np.round(classifier.intercept_, 6).tolist(),
        min_probability=min_probability,
    )


def _votes(classifier: Any, held_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(4, n) turn index the four views vote for each held-out photo sent turned each way (0
    where the photo is not doubted), and (4, n) how sure the vote is."""
    probe = _probe(classifier, min_probability=0.0)
    vectors = torch.from_numpy(held_out)
    turns, sure = [], []
    for came in range(len(TURNS)):  # the photo came turned by TURNS[came]: its views roll
        views = vectors[[(came + u) % len(TURNS) for u in range(len(TURNS))]]
        turn, how_sure = probe.turn_of(views)
        turns.append(torch.where(probe.doubtful(views[0]), turn, torch.zeros_like(turn)).numpy())
        sure.append(how_sure.numpy())
    return np.stack(turns), np.stack(sure)


def _choose(classifier: Any, held_out: np.ndarray) -> tuple[float, str, dict[str, Any]]:
    """The lowest min_probability that turns few held-out upright photos, the mode (``"turn"``,
    or ``"flag"`` when none does), and its figures."""
    turns, sure = _votes(classifier, held_out)
    chosen, mode = FLAG_MIN_PROBABILITY, "flag"
    for threshold in MIN_PROBABILITIES:
        if float(((turns[0] != 0) & (sure[0] >= threshold)).mean()) <= MAX_UPRIGHT_TURNED:
            chosen, mode = threshold, "turn"
            break
    read = np.where(sure >= chosen, turns, 0)
    came = np.arange(len(TURNS))[:, None]
    doubtful = _probe(classifier).doubtful(torch.from_numpy(held_out[0])).numpy()
    return chosen, mode, {
        "orientation_mode": mode,
        "orientation_turned_photos_found": round(float((read[1:] != 0).mean()), 4),
        "orientation_turned_photos_read_upright": round(float((read[1:] == came[1:]).mean()), 4),
        "orientation_turned_photos_misread": round(float(((read[1:] != came[1:]) & (read[1:] != 0)).mean()), 4),
        "orientation_upright_photos_found_turned": round(float((read[0] != 0).mean()), 4),
        "orientation_upright_photos_checked": round(float(doubtful.mean()), 4),
    }


def fit_orientation_probe(
    model: MultimodalCatModel,
    processor: MultimodalCatProcessor,
    dataset: Any,
    *,
    photos: int = 256,
    cache: EmbeddingCache | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the probe on up to ``photos`` training photos and store it in ``model.config``.

    Returns:
        Its figures (``orientation_*``), measured on a held-out fifth of the photos; empty when
        the model has no image tower or the set has fewer than :data:`MIN_PHOTOS` readable
        photos (then no probe is stored).
    """
    if model.vision_model is None:
        return {}
    sample = _sample_photos(dataset, photos, seed)
    if len(sample) < MIN_PHOTOS:
        return {}
    model.eval()
    with torch.inference_mode():
        vectors = _embed_turns(TowerEmbedder(model, processor, cache=cache), sample)
    cut = int(round(len(sample) * (1 - HELD_OUT)))
    min_probability, mode, figures = _choose(_fit(vectors[:, :cut]), vectors[:, cut:])
    probe = _probe(_fit(vectors), min_probability)
    probe.mode = mode
    probe.figures = {**figures, "orientation_photos": len(sample)}
    model.config.orientation_probe = probe.to_dict()
    return {**probe.figures, "orientation_min_probability": min_probability}
