"""The audit's HTML page: self-contained (thumbnails as data: URIs), duplicate pairs side by
side, mismatches with title and categories; opened in headless Chromium, which saves a
screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess

import pandas as pd
import pytest
from catalog_helpers import ColourEncoder, WordsEncoder, swatch
from PIL import Image

from multimodal_cat.catalog.audits import audit
from multimodal_cat.catalog.embed import CatalogEncoders
from multimodal_cat.catalog.report import render_html, write_report
from multimodal_cat.encoders.cache import EmbeddingCache

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _findings(tmp_path):
    rows = [
        {"id": f"k{i}", "title": f"kitchen frying pan {i}", "image": swatch((30 + 40 * i, 160, 30 * i), 60, 4),
         "curated": "Home > Kitchen", "seller_category": "Pans"} for i in range(6)
    ] + [
        {"id": f"s{i}", "title": f"running sneaker {i}", "image": swatch((200, 40 * i, 30), 60),
         "curated": "Footwear > Shoes", "seller_category": "Shoes"} for i in range(6)
    ]
    rows[0]["curated"] = "Footwear > Shoes"  # a pan listed as a shoe
    rows.append({"id": "s0-copy", "title": "running sneaker 0", "image": swatch((200, 30, 30), 60),
                 "curated": "Footwear > Shoes"})
    rows.append({"id": "broken", "title": None, "image": None, "curated": None})
    kept: list = []
    encoders = CatalogEncoders(WordsEncoder(), ColourEncoder(), cache=EmbeddingCache(tmp_path))
    found = audit(pd.DataFrame(rows), encoders, checks="duplicates,categories",
                  category="curated", products_out=kept.extend)
    return found, kept


def test_page_is_self_contained_with_pairs_and_mismatches(tmp_path) -> None:
    found, products = _findings(tmp_path)
    assert {"duplicates", "categories", "input"} <= set(found["check"])
    page = render_html(found, products)
    body = page.split("<body>")[1]
    assert "http://" not in body and "https://" not in body and "<script" not in page
    assert page.count("data:image/jpeg;base64,") >= 3
    duplicate = body.split("<b>duplicates</b>")[1].split('class="card')[0]
    assert "s0-copy" in duplicate and "s0" in duplicate  # the pair on one card
    mismatch = body.split("<b>categories</b>")[1].split('class="card')[0]
    assert "kitchen frying pan 0" in mismatch and "Pans" in mismatch  # title, seller's category
    assert "Home &gt; Kitchen" in mismatch  # the predicted category


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"), reason="chromium not installed")
def test_chromium_renders_the_report(tmp_path) -> None:
    assert CHROMIUM, "CI must have chromium for the report test"
    found, products = _findings(tmp_path)
    paths = write_report(found, tmp_path / "report", products=products)
    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1200,900", paths["html"].resolve().as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    image = Image.open(shot)
    assert image.size == (1200, 900)
    colours = image.convert("RGB").resize((60, 45)).getcolors(60 * 45)
    assert colours is not None and len(colours) > 5  # not a blank page
    red = sum(n for n, (r, g, b) in colours if r > 150 and g < 90 and b < 90)
    assert red > 0  # the red sneaker thumbnails (or the high-severity border) were drawn
