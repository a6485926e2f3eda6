"""``POST /v1/similar``: products of a catalog index like a photo, a title or a catalog id.

The index (``multimodal-cat serve --index INDEX``, built by ``multimodal-cat index build``) and
its encoders are loaded once, beside the model; each query runs
:func:`multimodal_cat.catalog.similar` in a worker thread. A photo comes as an http(s) or
``data:`` URL (through the feed job's URL rules, like ``/v1/categorize``) or as ``image_base64``.

Example:
    $ curl -s localhost:8080/v1/similar -H 'Content-Type: application/json' \\
        -d '{"title": "red running shoes", "k": 5, "within": "Footwear"}'
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from multimodal_cat.serving.inputs import image_reference
from multimodal_cat.serving.limits import RequestError, check_api_key, read_body

if TYPE_CHECKING:
    from multimodal_cat.serving.service import Service

MAX_K = 100


def load_catalog(folder: str) -> tuple[Any, Any]:
    """The saved index in ``folder`` and the encoders it records (loaded once)."""
    from multimodal_cat.catalog.embed import CatalogEncoders
    from multimodal_cat.catalog.index import CatalogIndex

    index = CatalogIndex.load(folder)
    return index, CatalogEncoders.from_specs(index.specs) if index.specs else None


def add_similar_route(app: FastAPI, service: Service) -> None:
    """Add ``POST /v1/similar`` (404 with a plain reason when no index is loaded)."""

    @app.post("/v1/similar", tags=["similar"])
    async def similar_products(request: Request) -> JSONResponse:
        """The ``k`` products of the catalog index most like ``title``, ``image`` or ``id``."""
        check_api_key(request.headers, service.settings.api_key)
        if service.catalog is None:
            raise RequestError(404, "no catalog index is loaded: start the service with --index INDEX")
        body = await read_body(request.stream(), request.headers.get("content-length"),
                               service.settings.max_body_bytes)
        query = _query(body)
        image = await _image(service, query.pop("image_ref"))
        index, encoders = service.catalog
        return JSONResponse(await asyncio.to_thread(_search, index, encoders, image=image, **query))


def _query(body: bytes) -> dict[str, Any]:
    """``title``, ``id``, ``k``, ``within`` and the image reference of a JSON query."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError(400, "the body is not valid JSON: expected a query object") from None
    if not isinstance(data, dict):
        raise RequestError(422, f"expected a query object; found {type(data).__name__}")
    query = {"title": data.get("title"), "id": data.get("id"), "within": data.get("within"),
             "k": data.get("k", 10), "image_ref": image_reference(data, "the query")}
    if not (query["title"] or query["id"] is not None or query["image_ref"]):
        raise RequestError(422, "expected a title, an image (URL or image_base64) or an id to search by")
    for name in ("title", "within"):
        if query[name] is not None and not isinstance(query[name], str):
            raise RequestError(422, f"expected {name} to be a string; found {type(query[name]).__name__}")
    k = query["k"]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise RequestError(422, f"expected k to be a whole number from 1 to {MAX_K}; found {k!r}")
    return query


async def _image(service: Service, ref: str) -> Any:
    """The query photo, fetched within the service's image rules; ``None`` without one."""
    if not ref:
        return None
    image, problem = await asyncio.to_thread(lambda: service.images.submit(ref).result())
    if problem:
        raise RequestError(422, f"the query image cannot be used: {problem}")
    return image


def _search(index: Any, encoders: Any, **query: Any) -> list[dict[str, Any]]:
    from multimodal_cat.catalog.index import CatalogIndexError
    from multimodal_cat.catalog.similar import QueryImageError, similar

    try:
        frame = similar(index, encoders=encoders, **query)
    except (CatalogIndexError, QueryImageError) as error:
        raise RequestError(422, str(error)) from None
    return json.loads(frame.to_json(orient="records"))
