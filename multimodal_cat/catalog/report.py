"""Audit reports a person reads: the findings as CSV and JSON lines, and one self-contained
HTML page (thumbnails embedded as ``data:`` URIs, no network, no script): duplicate pairs side
by side, mismatches with photo, title, seller's and predicted category.

Example:
    >>> write_report(findings, "report", products=products)  # doctest: +SKIP
    {'csv': PosixPath('report/findings.csv'), 'jsonl': ..., 'html': ...}
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from multimodal_cat.products import Product

THUMBNAIL = 160  # pixels, longest side
SHOWN = 500  # findings drawn on the page (all are in the CSV / JSON lines)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} .summary td,.summary th{padding:.2em .8em;text-align:left}
.card{border:1px solid #ccc;border-radius:6px;padding:.6em;margin:.6em 0;display:flex;gap:1em}
.card.high{border-left:6px solid #c0392b}.card.medium{border-left:6px solid #e67e22}
.card.low{border-left:6px solid #f1c40f}.card.bad-row{border-left:6px solid #7f8c8d}
.items{display:flex;gap:.8em;flex-wrap:wrap}.item{width:180px;font-size:.85em}
.item img{max-width:160px;max-height:160px;display:block;background:#f4f4f4}
.noimg{width:160px;height:100px;background:#eee;color:#888;display:flex;align-items:center;
justify-content:center}.meta{font-size:.85em;min-width:260px}
.meta code{background:#f4f4f4;padding:0 .2em}
"""


def thumbnail_uri(image: Image.Image | None) -> str | None:
    """A small JPEG of ``image`` as a ``data:`` URI (None without an image)."""
    if image is None:
        return None
    small = image.convert("RGB")
    small.thumbnail((THUMBNAIL, THUMBNAIL))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def write_tables(findings: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """``findings.csv`` (evidence as JSON text) and ``findings.jsonl``."""
    folder.mkdir(parents=True, exist_ok=True)
    flat = findings.copy()
    for column in ("ids", "rows", "evidence"):
        flat[column] = [json.dumps(v, ensure_ascii=False, default=str) for v in flat[column]]
    flat.to_csv(folder / "findings.csv", index=False)
    with (folder / "findings.jsonl").open("w", encoding="utf-8") as out:
        for record in findings.to_dict(orient="records"):
            out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    return {"csv": folder / "findings.csv", "jsonl": folder / "findings.jsonl"}


def _item(product: Product | None, product_id: str, thumbs: dict[str, str | None]) -> str:
    uri = thumbs.get(product_id)
    picture = (
        f'<img src="{uri}" alt="photo of {html.escape(product_id)}">' if uri
        else '<div class="noimg">no photo</div>'
    )
    title = html.escape(product.title if product else "")
    seller_category = html.escape(product.seller_category if product else "")
    extra = f"<br>seller's category: {seller_category}" if seller_category else ""
    return (
        f'<div class="item">{picture}<b>{html.escape(product_id)}</b><br>{title}{extra}</div>'
    )


def _evidence(evidence: Any) -> str:
    if not isinstance(evidence, dict):
        return html.escape(str(evidence))
    parts = []
    for key, value in evidence.items():
        if key in ("titles",):
            continue
        shown = json.dumps(value, ensure_ascii=False, default=str)
        parts.append(f"{html.escape(key)}: <code>{html.escape(shown[:300])}</code>")
    return "<br>".join(parts)


def render_html(
    findings: pd.DataFrame, products: Sequence[Product] = (), *, title: str = "Catalog audit"
) -> str:
    """The report page as one HTML string."""
    by_id = {p.id: p for p in products}
    shown = findings.head(SHOWN)
    wanted = {i for ids in shown["ids"] for i in ids}
    thumbs = {i: thumbnail_uri(by_id[i].image) for i in wanted if i in by_id}
    counts = findings.groupby(["check", "severity"]).size().reset_index(name="findings")
    summary = "".join(
        f"<tr><td>{html.escape(r.check)}</td><td>{html.escape(r.severity)}</td>"
        f"<td>{r.findings}</td></tr>"
        for r in counts.itertuples()
    )
    cards = []
    for row in shown.itertuples():
        items = "".join(_item(by_id.get(i), i, thumbs) for i in row.ids)
        cards.append(
            f'<div class="card {html.escape(row.severity)}"><div class="meta">'
            f"<b>{html.escape(row.check)}</b> · {html.escape(row.severity)} · score "
            f"{row.score:.3f}<br>{html.escape(row.finding)}<br>feed rows: "
            f"{html.escape(', '.join(map(str, row.rows)))}<br>{_evidence(row.evidence)}</div>"
            f'<div class="items">{items}</div></div>'
        )
    more = (
        f"<p>{len(findings) - SHOWN} more findings are in findings.csv.</p>"
        if len(findings) > SHOWN else ""
    )
    empty = "<p>No findings.</p>" if findings.empty else ""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p>{len(findings)} findings.</p><table class="summary"><tr><th>check</th>'
        f"<th>severity</th><th>findings</th></tr>{summary}</table>{empty}{''.join(cards)}{more}"
        "</body></html>"
    )


def write_report(
    findings: pd.DataFrame, folder: str | Path, *, products: Sequence[Product] = ()
) -> dict[str, Path]:
    """Write ``findings.csv``, ``findings.jsonl`` and ``report.html`` into ``folder``."""
    folder = Path(folder)
    paths = write_tables(findings, folder)
    page = folder / "report.html"
    page.write_text(render_html(findings, products), encoding="utf-8")
    paths["html"] = page
    return paths
