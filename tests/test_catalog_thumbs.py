"""Crop-tolerant photo matching (catalog.thumbs) and the duplicates audit's "same photo" rule:
a cropped, halved, JPEG-30 copy of a photo matches it; another photo does not (the audit then
verifies candidate copies with catalog.copies)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from catalog_helpers import ColourEncoder, WordsEncoder, copy_of
from PIL import Image

from multimodal_cat.catalog.audits import audit
from multimodal_cat.catalog.embed import CatalogEncoders
from multimodal_cat.catalog.thumbs import nearest_photos, photo_matches, thumbnails
from multimodal_cat.encoders.cache import EmbeddingCache


def textured(seed: int, size: int = 160) -> Image.Image:
    """A smooth random picture (blurred noise, upsampled): a stand-in for a product photo."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (14, 14, 3), dtype=np.uint8)
    return Image.fromarray(small, "RGB").resize((size, size), Image.BICUBIC)



def test_a_cropped_recompressed_copy_matches_and_another_photo_does_not() -> None:
    photo = textured(0)
    thumbs, present = thumbnails([photo, copy_of(photo, 0.2), textured(1), None])
    scores = photo_matches(thumbs, present, [(0, 1), (0, 2), (0, 3)])
    assert scores[(0, 1)] > 0.92
    assert scores[(0, 2)] < 0.9
    assert scores[(0, 3)] == 0.0  # no photo: no match


def test_duplicates_audit_finds_a_copied_photo_under_a_reworded_title(tmp_path) -> None:
    encoders = CatalogEncoders(WordsEncoder(), ColourEncoder(), cache=EmbeddingCache(tmp_path))
    photo = textured(3)
    rows = [
        {"id": "a", "title": "Acme Men Green Running Shoes", "image": photo},
        {"id": "b", "title": "New Acme Men Running Green Shoes for sale", "image": copy_of(photo)},
        {"id": "c", "title": "Acme Men Green Running Shoes", "image": textured(4)},
        {"id": "d", "title": "Acme Men Blue Running Shoes", "image": copy_of(photo, 0.1)},
    ]
    found = audit(pd.DataFrame(rows), encoders, checks="duplicates",
                  options={"image_threshold": 2.0, "text_threshold": 2.0,
                           "both_image_threshold": 2.0})
    assert [sorted(ids) for ids in found["ids"]] == [["a", "b"]]  # d: another colour
    (pair,) = found.iloc[0]["evidence"]["pairs"]
    assert pair["by"] == ["photo copy"] and pair["photo_match"] > 0.9
    assert pair["photo_copy"]["correlation"] > 0.7  # verified a copy (catalog.copies)


def test_photo_matches_hold_one_photos_crops_at_a_time(monkeypatch) -> None:
    # 13 crops of 48x48x3 floats are 360 KB per photo: kept for every photo at once, a 40k
    # photo audit would hold 14 GB
    import weakref

    from multimodal_cat.catalog import thumbs as module

    real, alive, most = module.centre_crops, [], [0]

    def tracked(thumb, scales=module.SCALES):
        out = real(thumb, scales)
        if len(scales) > 1:
            most[0] = max(most[0], sum(ref() is not None for ref in alive))
            alive.append(weakref.ref(out))
        return out

    monkeypatch.setattr(module, "centre_crops", tracked)
    images = [textured(seed) for seed in range(8)]
    thumbs, present = thumbnails(images)
    pairs = [(i, j) for i in range(8) for j in range(i + 1, 8)]
    scores = module.photo_matches(thumbs, present, pairs)
    assert len(alive) == 8 and most[0] <= 1
    exact = real(thumbs[0]) @ real(thumbs[1])[-1]
    assert abs(max(exact.max(), (real(thumbs[1]) @ real(thumbs[0])[-1]).max())
               - scores[(0, 1)]) < 1e-3  # float16 wholes: the same scores


def test_nearest_photos_pair_a_cropped_copy_with_its_original() -> None:
    images = [textured(seed) for seed in range(12)] + [copy_of(textured(5), 0.2), None]
    thumbs, present = thumbnails(images)
    pairs = nearest_photos(thumbs, present)
    assert (5, 12) in pairs  # the copy's whole is the nearest picture to the original's crop
    assert all(13 not in pair for pair in pairs)  # no photo, no pair
    assert all(i < j for i, j in pairs) and len(pairs) <= 3 * 13  # k=1 per crop and photo


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def test_audit_finds_a_copy_its_encoders_put_far_from_the_original() -> None:
    """A copy outside both encoders' neighbour lists (each side's 10 nearest are other listings
    it resembles more) is still compared, through the photos' nearest pictures in pixels."""
    from multimodal_cat.catalog.audits.context import AuditContext
    from multimodal_cat.catalog.audits.duplicates import duplicate_pairs
    from multimodal_cat.products import Product

    rng = np.random.default_rng(0)
    near_copy, near_original = rng.normal(size=(2, 32))  # two directions, cosine ~ 0
    between = _unit(near_copy) + _unit(near_original)  # 0.7 from both
    images = [textured(7), copy_of(textured(7))] + [textured(20 + k) for k in range(22)]
    # rows 2-12 share the copy's vectors exactly, rows 13-23 the original's
    text = np.stack([_unit(near_original), _unit(between)] + [_unit(between)] * 11
                    + [_unit(near_original)] * 11)
    image = np.stack([_unit(near_original), _unit(near_copy)] + [_unit(near_copy)] * 11
                     + [_unit(near_original)] * 11)
    products = [Product(id=str(k), title=f"Acme Printed Shirt {k}") for k in range(24)]
    ctx = AuditContext(products, list(range(1, 25)), {"text": text, "image": image},
                       [None] * 24, [None] * 24, pd.DataFrame(), thumbs=thumbnails(images),
                       photos=lambda row: images[row], options={"photo_text_threshold": 0.6})
    for modality in ("text", "image"):
        rows, _ = ctx.neighbours(modality)
        assert 0 not in rows[1] and 1 not in rows[0]  # in neither encoder's neighbour list
    found = duplicate_pairs(ctx)
    assert [(i, j) for i, j, _, _ in found] == [(0, 1)]
    assert found[0][3]["by"] == ["photo copy"] and found[0][3]["text_cosine"] > 0.6
