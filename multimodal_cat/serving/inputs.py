"""Read products out of a request: JSON (one product or a list) or a multipart form.

A product is a JSON object with any of ``id, title, description, brand, seller_category`` and
an image given as ``image`` (an http(s) URL or a ``data:`` URL) or ``image_base64`` (the
file's bytes in base64); a multipart form has the same fields plus an ``image`` file. Every
value is checked before anything is loaded: text fields must be strings within the feed
job's length caps, an image reference must be an http(s) or ``data:`` URL (never a path on
the server), and each product needs some text or an image. A mistake is a
:class:`~multimodal_cat.serving.limits.RequestError` (400 for a body that is not JSON, 422
for a product that is not as expected) naming the product and the field.

Example:
    >>> records, single = parse_json(b'{"title": "Red sneakers"}', max_products=8)
    >>> single, products_from_records(records)[0].title
    (True, 'Red sneakers')
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from multimodal_cat.feeds.columns import DEFAULT_CAPS
from multimodal_cat.products import Product
from multimodal_cat.serving.limits import RequestError

TEXT_FIELDS = ("id", "title", "description", "brand", "seller_category")
IMAGE_FIELDS = ("image", "image_base64")
IMAGE_PREFIXES = ("http://", "https://", "data:")


def parse_json(body: bytes, *, max_products: int) -> tuple[list[dict[str, Any]], bool]:
    """Checked product records from a JSON body, and whether it held a single product.

    Accepts one object, a list of objects, or ``{"products": [...]}``.
    """
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f" at line {error.lineno}, column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise RequestError(400, f"the body is not valid JSON{where}: expected a product object or a list of them") from None
    single = isinstance(data, dict) and "products" not in data
    if isinstance(data, dict) and "products" in data:
        data = data["products"]
    records = [data] if single else data
    if not isinstance(records, list):
        raise RequestError(422, f"expected a product object or a list of them; found {_kind(data)}")
    return check_records(records, max_products=max_products), single


async def parse_multipart(
    headers: Mapping[str, str], stream: AsyncIterator[bytes], *, max_products: int
) -> list[dict[str, Any]]:
    """One checked product record from a multipart form (text fields and an ``image`` file)."""
    from starlette.datastructures import Headers, UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    try:
        form = await MultiPartParser(Headers(headers), stream, max_files=1).parse()  # type: ignore[arg-type]
    except MultiPartException as error:
        raise RequestError(400, f"the multipart form cannot be read: {error}") from None
    record: dict[str, Any] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key != "image":
                raise RequestError(422, f"expected the image file in the form field 'image'; found a file in {key!r}")
            data = await value.read()
            if data:
                record["image_base64"] = base64.b64encode(data).decode("ascii")
        else:
            record[key] = value
    return check_records([record], max_products=max_products)


def check_records(records: list[Any], *, max_products: int) -> list[dict[str, Any]]:
    """Check each record (see the module's rules); returns them with the image as one ref."""
    if not records:
        raise RequestError(422, "expected at least one product; found an empty list")
    if len(records) > max_products:
        raise RequestError(
            422, f"expected at most {max_products} products per request; found {len(records)}"
        )
    return [_check(record, number) for number, record in enumerate(records, start=1)]


def _check(record: Any, number: int) -> dict[str, Any]:
    where = f"product {number}"
    if not isinstance(record, dict):
        raise RequestError(422, f"{where}: expected an object with a title or an image; found {_kind(record)}")
    clean: dict[str, Any] = {}
    for key in TEXT_FIELDS:
        value = record.get(key)
        if value is None:
            continue
        if key == "id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise RequestError(422, f"{where}: expected {key} to be a string; found {_kind(value)}")
        cap = DEFAULT_CAPS[key]
        if len(value) > cap:
            raise RequestError(422, f"{where}: {key} is {len(value):,} characters, more than the {cap:,} allowed")
        clean[key] = value
    image = image_reference(record, where)
    if image:
        clean["image"] = image
    if not image and not any(clean.get(k, "").strip() for k in ("title", "description", "brand")):
        found = ", ".join(sorted(map(str, record))) or "no fields"
        raise RequestError(
            422,
            f"{where}: expected a title, description, brand or image; found {found}",
        )
    return clean


def image_reference(record: dict[str, Any], where: str) -> str:
    if record.get("image") and record.get("image_base64"):
        raise RequestError(422, f"{where}: expected one of image and image_base64; found both")
    encoded = record.get("image_base64")
    if encoded:
        if not isinstance(encoded, str):
            raise RequestError(422, f"{where}: expected image_base64 to be a string; found {_kind(encoded)}")
        return "data:;base64," + encoded
    image = record.get("image")
    if not image:
        return ""
    if not isinstance(image, str):
        raise RequestError(422, f"{where}: expected image to be a URL string; found {_kind(image)}")
    if not image.lower().startswith(IMAGE_PREFIXES):
        shown = image if len(image) <= 80 else image[:77] + "..."
        raise RequestError(
            422,
            f"{where}: expected image to be an http(s) or data: URL (or the bytes in image_base64); "
            f"found {shown!r}",
        )
    if len(image) > DEFAULT_CAPS["image"] and not image.lower().startswith("data:"):
        raise RequestError(422, f"{where}: the image URL is longer than {DEFAULT_CAPS['image']:,} characters")
    return image


def products_from_records(records: list[dict[str, Any]]) -> list[Product]:
    """The one place request records become products (the library's input rule).

    Images are not loaded here: the service loads them itself, within its limits and the
    request's deadline.
    """
    from multimodal_cat.inputs import to_products

    return to_products(records, load_images=False) if records else []


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), f"a {type(value).__name__}")
