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
from multimodal_cat.catalog.thumbs import photo_matches, thumbnails
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
