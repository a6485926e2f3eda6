"""Photo copies (catalog.copies): a cropped, halved, JPEG-30 copy is verified as a copy; two
different product photos on white, and a recoloured copy, are not; the duplicates audit merges
only verified copies when both photos are at hand, holding one pair's photos at a time."""

from __future__ import annotations

import sys
import weakref

import numpy as np
import pandas as pd
import pytest
from catalog_helpers import ColourEncoder, WordsEncoder, copy_of
from PIL import Image, ImageDraw, ImageFilter

from multimodal_cat.catalog.audits import audit
from multimodal_cat.catalog.copies import compare_photos
from multimodal_cat.catalog.embed import CatalogEncoders
from multimodal_cat.encoders.cache import EmbeddingCache
from multimodal_cat.errors import MissingPackageError, MultimodalCatError

SHIRT = [(70, 40), (100, 30), (124, 30), (154, 40), (190, 80), (170, 100), (160, 90),
         (160, 200), (64, 200), (64, 90), (54, 100), (34, 80)]


def product_photo(seed: int, colour: tuple[int, int, int] = (40, 70, 150)) -> Image.Image:
    """A shirt of one silhouette on white, printed with a pattern drawn from ``seed``: two seeds
    are two different products shot alike."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-60, 60, (56, 56, 1)).repeat(3, axis=2)
    pattern = np.clip(np.float32(colour) + noise, 0, 255).astype(np.uint8)
    texture = Image.fromarray(pattern, "RGB").resize((224, 224), Image.BICUBIC)
    mask = Image.new("L", (224, 224), 0)
    ImageDraw.Draw(mask).polygon(SHIRT, fill=255)
    photo = Image.new("RGB", (224, 224), "white")
    photo.paste(texture, mask=mask.filter(ImageFilter.GaussianBlur(1)))
    return photo



def recoloured(image: Image.Image) -> Image.Image:
    """The same picture with the product's red and blue swapped (white stays white)."""
    r, g, b = image.split()
    return Image.merge("RGB", (b, g, r))


@pytest.mark.parametrize("crop", [0.1, 0.2])
def test_a_cropped_resized_jpeg_copy_is_a_copy(crop) -> None:
    photo = product_photo(0)
    found = compare_photos(photo, copy_of(photo, crop))
    assert found.is_copy(), found
    assert found.inliers >= 5 and abs(found.scale - 1 / (1 - crop)) < 0.05  # the crop, found
    assert compare_photos(copy_of(photo, crop), photo).is_copy()  # either way round


def test_two_different_products_on_white_are_not_copies() -> None:
    a, b = product_photo(0), product_photo(1)
    found = compare_photos(a, b)
    assert not found.is_copy() and found.correlation < 0.5, found
    assert not compare_photos(a, copy_of(b)).is_copy()


def test_a_recoloured_copy_is_not_a_copy() -> None:
    photo = product_photo(0, colour=(170, 60, 40))
    found = compare_photos(photo, recoloured(copy_of(photo)))
    assert found.correlation > 0.7  # the same picture in every detail...
    assert found.colour_difference > 0.2 and not found.is_copy()  # ...in another colour


def test_plain_pictures_compare_by_colour() -> None:
    red, blue = Image.new("RGB", (40, 40), (200, 30, 30)), Image.new("RGB", (40, 40), (30, 30, 200))
    assert compare_photos(red, red.resize((30, 30))).is_copy()
    assert not compare_photos(red, blue).is_copy()


def test_missing_opencv_names_the_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(MissingPackageError, match="opencv-python-headless") as error:
        compare_photos(product_photo(0), product_photo(1))
    assert isinstance(error.value, MultimodalCatError)


def _encoders(tmp_path) -> CatalogEncoders:
    return CatalogEncoders(WordsEncoder(), ColourEncoder(), cache=EmbeddingCache(tmp_path))


def test_audit_merges_copies_not_lookalikes_or_recolours(tmp_path) -> None:
    photo = product_photo(0, colour=(170, 60, 40))
    rows = [
        {"id": "a", "title": "Acme Men Printed Shirt", "image": photo},
        {"id": "b", "title": "New Acme Printed Men Shirt for sale", "image": copy_of(photo)},
        {"id": "c", "title": "Acme Men Printed Shirt", "image": product_photo(1, (170, 60, 40))},
        {"id": "d", "title": "Acme Men Printed Shirt", "image": recoloured(photo)},
    ]
    options = {"photo_threshold": -1.0, "photo_text_threshold": 0.0}  # compare every pair
    found = audit(pd.DataFrame(rows), _encoders(tmp_path), checks="duplicates", options=options)
    assert [sorted(ids) for ids in found["ids"]] == [["a", "b"]]
    (pair,) = found.iloc[0]["evidence"]["pairs"]
    assert pair["by"] == ["photo copy"] and pair["photo_copy"]["inliers"] >= 5


def test_audit_holds_one_pairs_photos_at_a_time(tmp_path) -> None:
    from multimodal_cat.catalog.audits import audit_context, run_checks

    rows = [{"id": str(k), "title": f"Acme Shirt {k}", "image": product_photo(k)}
            for k in range(5)]
    ctx = audit_context(pd.DataFrame(rows), _encoders(tmp_path),
                        options={"photo_threshold": -1.0, "photo_text_threshold": 0.0})
    alive: list[weakref.ref] = []
    most = [0]

    def load(row: int) -> Image.Image:  # a fresh decoded photo each time, as from a file
        image = product_photo(row)
        alive.append(weakref.ref(image))
        most[0] = max(most[0], sum(ref() is not None for ref in alive))
        return image

    ctx.photos = load
    run_checks(ctx, ["duplicates"])
    assert len(alive) == 2 * 10  # every pair of 5 photos compared, each photo opened per pair
    assert most[0] <= 2


def test_audit_compares_no_photos_whose_titles_cannot_count(tmp_path) -> None:
    """A copy counts only when the titles reach photo_text_threshold: pairs below it are not
    worth the photo comparison (about 20 ms each)."""
    from multimodal_cat.catalog.audits import audit_context, run_checks

    photo = product_photo(0)
    rows = [{"id": "a", "title": "Acme Men Printed Shirt", "image": photo},
            {"id": "b", "title": "Zed Women Heeled Sandals", "image": copy_of(photo)}]
    ctx = audit_context(pd.DataFrame(rows), _encoders(tmp_path),
                        options={"photo_threshold": -1.0, "photo_text_threshold": 0.5})
    opened = []
    ctx.photos = lambda row: opened.append(row) or rows[row]["image"]
    assert run_checks(ctx, ["duplicates"]).empty
    assert opened == [] and ctx.memo["pair_scores"][(0, 1)]["text"] < 0.5
    ctx.options["photo_text_threshold"] = 0.0  # now the titles may count: the photos decide
    assert len(run_checks(ctx, ["duplicates"])) == 1 and sorted(opened) == [0, 1]
