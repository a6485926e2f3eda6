"""The HTTP routes: categorize, health, readiness, metrics, the page, the Label Studio backend.

``POST /v1/categorize`` takes one product or a list (JSON, or a multipart form with an image
file) and answers the feed job's output row for each (category, confidence, alternatives,
tags, mapped categories, ``needs_review`` when routing is on, warnings, error). ``GET
/healthz`` says the process is up, ``GET /readyz`` that the model is loaded, ``GET /metrics``
serves Prometheus metrics, ``GET /`` a page to try it, ``/docs`` the OpenAPI documentation,
``POST /v1/similar`` the products of a catalog index like a query (:mod:`.similar`);
``/health``, ``/setup``, ``/predict`` and ``/webhook`` are Label Studio's ML backend
(:mod:`.labelstudio`).

Example:
    >>> from multimodal_cat.feeds.rows import OutputRows
    >>> from multimodal_cat.predictors import DryRunPredictor
    >>> app = create_app(Service(lambda: Engine(OutputRows(DryRunPredictor()), None, "dry-run")))
    >>> sorted(app.openapi()["paths"])
    ['/health', '/healthz', '/metrics', '/predict', '/readyz', '/setup', '/v1/categorize', '/v1/similar', '/webhook']
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from multimodal_cat import __version__
from multimodal_cat.serving.admission import ADMITTED_PATHS, AdmissionMiddleware
from multimodal_cat.serving.inputs import parse_json, parse_multipart
from multimodal_cat.serving.limits import RequestError, check_api_key, read_body
from multimodal_cat.serving.service import Engine, Service
from multimodal_cat.serving.settings import ON_IMAGE_ERROR
from multimodal_cat.serving.similar import add_similar_route

__all__ = ["Engine", "Service", "create_app"]

PAGE = Path(__file__).parent / "page" / "index.html"
_PRODUCT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "brand": {"type": "string"},
        "seller_category": {"type": "string"},
        "image": {"type": "string", "description": "http(s) URL or data: URL"},
        "image_base64": {"type": "string", "description": "the image file's bytes, base64"},
    },
    "example": {"id": "sku-1", "title": "Women's leather ankle boots"},
}
_CATEGORIZE_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [_PRODUCT_SCHEMA, {"type": "array", "items": _PRODUCT_SCHEMA}]}
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        **{k: {"type": "string"} for k in ("id", "title", "description", "brand")},
                        "image": {"type": "string", "format": "binary"},
                    },
                }
            },
        },
    }
}


def create_app(service: Service) -> FastAPI:
    """The FastAPI app serving ``service`` (start it with uvicorn, see :mod:`.server`).

    Example:
        >>> app = create_app(service)  # doctest: +SKIP
        >>> uvicorn.run(app, host="127.0.0.1", port=8080)  # doctest: +SKIP
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="multimodal-cat",
        version=__version__,
        description="Categorize products at upload time (image and/or text).",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_exception_handler(RequestError, _refusal)  # type: ignore[arg-type]
    app.add_middleware(AdmissionMiddleware)  # inside _Measure, which counts its 503s too
    app.add_middleware(_Measure)
    _add_routes(app, service)
    add_similar_route(app, service)
    from multimodal_cat.serving.labelstudio import router

    app.include_router(router)
    return app


def _add_routes(app: FastAPI, service: Service) -> None:
    @app.post("/v1/categorize", openapi_extra=_CATEGORIZE_DOC, tags=["categorize"])
    async def categorize(request: Request, on_image_error: str | None = None) -> Any:
        """Categorize one product (answer: its row) or a list (answer: a list of rows)."""
        check_api_key(request.headers, service.settings.api_key)
        if on_image_error is not None and on_image_error not in ON_IMAGE_ERROR:
            raise RequestError(
                422, f"on_image_error must be one of {', '.join(ON_IMAGE_ERROR)}; found {on_image_error!r}"
            )
        service.require_engine()  # a full service was refused before this (AdmissionMiddleware)
        records, single = await _records(request, service.settings.max_body_bytes, service.settings.max_products)
        answered = await service.categorize(records, on_image_error=on_image_error)
        rows = [row for _, row in answered]
        return JSONResponse(rows[0] if single else rows)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, Any]:
        """The process is up (the model may still be loading)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """200 once the model is loaded and the service takes requests; 503 before."""
        engine = service.engine
        if engine is None:
            status = 500 if service.load_error else 503
            body = {"ready": False, "error": service.load_error or "the model is loading"}
            return JSONResponse(body, status_code=status)
        taxonomy = getattr(engine.taxonomy, "name", "")
        return JSONResponse(
            {"ready": True, "model": engine.version, "taxonomy": taxonomy,
             "map_to": engine.rows.names, "ready_s": round(service.ready_s or 0.0, 3)}
        )

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        """Prometheus metrics: requests, latency, batch sizes, queue depth, errors."""
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE, media_type="text/html")


async def _records(request: Request, max_bytes: int, max_products: int) -> tuple[list[dict[str, Any]], bool]:
    body = await read_body(request.stream(), request.headers.get("content-length"), max_bytes)
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind == "multipart/form-data":

        async def once() -> AsyncIterator[bytes]:
            yield body

        return await parse_multipart(request.headers, once(), max_products=max_products), True
    if kind not in ("application/json", "text/json", ""):
        raise RequestError(
            415, f"expected application/json or multipart/form-data; found {kind!r}"
        )
    return parse_json(body, max_products=max_products)


async def _refusal(request: Request, error: RequestError) -> JSONResponse:
    request.app.state.service.metrics.errors.labels(str(error.status)).inc()
    return JSONResponse({"detail": str(error)}, status_code=error.status, headers=error.headers)


class _Measure:
    """Counts each request and times it, by route and status (a plain ASGI middleware: cheaper
    per request than Starlette's ``BaseHTTPMiddleware``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route is None:  # refused before routing, or no such route
                route = scope["path"] if scope["path"] in ADMITTED_PATHS else "other"
            metrics = scope["app"].state.service.metrics
            metrics.requests.labels(route, str(status[0])).inc()
            metrics.latency.labels(route).observe(time.perf_counter() - start)
