"""Label Studio's ML backend: live pre-annotations in the review project's taxonomy control.

Connect the running service to a project made with ``multimodal-cat review config`` (Settings
> Model > Connect Model, URL of the service). Label Studio then calls:

- ``GET /health``: the backend is up;
- ``POST /setup``: a project connects; the answer names the model version;
- ``POST /predict``: ``{"tasks": [...]}``, one or more tasks; the answer has one prediction
  per task in the ``<Taxonomy>`` control's format, the same one
  :func:`multimodal_cat.review.labelstudio.to_task` writes for imported pre-annotations. The
  tasks' products go through the same micro-batch queue as ``/v1/categorize``, so many
  reviewers opening tasks at once share predictor calls;
- ``POST /webhook``: Label Studio's events; a new or updated annotation is appended to the
  corrections file (``--corrections``) as a
  :class:`~multimodal_cat.review.corrections.Correction`, read the way
  :func:`~multimodal_cat.review.labelstudio.read_export` reads an export.

Images that Label Studio stores itself (``/data/upload/...``) cannot be fetched by the
service: those tasks are categorized from their text.

Example:
    >>> task = {"id": 3, "data": {"id": "sku-1", "title": "Red sneakers", "image": "/data/upload/1.png"}}
    >>> task_record(task)
    {'id': 'sku-1', 'title': 'Red sneakers'}
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from fastapi import APIRouter, Request

from multimodal_cat.review.corrections import CorrectionError, write_corrections
from multimodal_cat.review.labelstudio import read_export, to_task
from multimodal_cat.serving.inputs import IMAGE_PREFIXES, TEXT_FIELDS, check_records
from multimodal_cat.serving.limits import RequestError, check_api_key, read_body
from multimodal_cat.serving.service import Service

router = APIRouter(tags=["label studio ML backend"])
ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")
_write_lock = threading.Lock()


def task_record(task: dict[str, Any]) -> dict[str, Any]:
    """The product record of a Label Studio task (its ``data``); an image that is not an
    http(s) or ``data:`` URL is left out."""
    data = task.get("data") if isinstance(task, dict) else None
    data = data if isinstance(data, dict) else {}
    record = {k: str(data[k]) for k in TEXT_FIELDS if data.get(k) not in (None, "")}
    image = data.get("image")
    if isinstance(image, str) and image.lower().startswith(IMAGE_PREFIXES):
        record["image"] = image
    return record


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Label Studio's health check."""
    service: Service = request.app.state.service
    return {"status": "UP", "model_class": "multimodal_cat", "ready": service.engine is not None}


@router.post("/setup")
async def setup(request: Request) -> dict[str, Any]:
    """A project connects; answers the model version its predictions carry."""
    service: Service = request.app.state.service
    check_api_key(request.headers, service.settings.api_key)
    await _json(request, service)
    return {"model_version": service.require_engine().version}


@router.post("/predict")
async def predict(request: Request) -> dict[str, Any]:
    """One pre-annotation per task, in the order of ``tasks``."""
    service: Service = request.app.state.service
    check_api_key(request.headers, service.settings.api_key)
    body = await _json(request, service)
    tasks = body.get("tasks")
    if not isinstance(tasks, list):
        raise RequestError(422, "expected {\"tasks\": [...]} (Label Studio's predict request); found no task list")
    engine = service.require_engine()
    usable: list[int] = []
    records: list[dict[str, Any]] = []
    for number, task in enumerate(tasks):
        try:
            records += check_records([task_record(task)], max_products=1)
            usable.append(number)
        except RequestError:
            continue  # nothing to categorize: this task gets an empty prediction
    results: list[dict[str, Any]] = [{"result": [], "score": 0.0, "model_version": engine.version} for _ in tasks]
    for start in range(0, len(records), service.settings.max_products):
        chunk = records[start : start + service.settings.max_products]
        answered = await service.categorize(chunk, on_image_error="degrade")
        for number, (item, _row) in zip(usable[start:], answered, strict=False):
            if item.prediction is not None and item.product is not None:
                predicted = to_task(item.product, item.prediction)["predictions"][0]
                results[number] = {**predicted, "model_version": engine.version}
    return {"results": results}


@router.post("/webhook")
async def webhook(request: Request) -> dict[str, Any]:
    """Label Studio's events: a new or updated annotation becomes a correction line."""
    service: Service = request.app.state.service
    check_api_key(request.headers, service.settings.api_key)
    body = await _json(request, service)
    action = body.get("action")
    if action not in ANNOTATION_EVENTS:
        return {"status": "ignored", "action": action}
    if service.settings.corrections is None:
        return {"status": "ignored", "reason": "the service was started without --corrections"}
    task, annotation = body.get("task"), body.get("annotation")
    if not isinstance(task, dict) or not isinstance(annotation, dict):
        raise RequestError(422, f"expected the task and the annotation in a {action} event; found neither")
    engine = service.require_engine()
    try:
        corrections = read_export([{**task, "annotations": [annotation]}], engine.taxonomy)
    except CorrectionError as error:
        raise RequestError(422, str(error)) from None
    await asyncio.to_thread(_append, corrections, service)
    return {"status": "ok", "corrections": len(corrections)}


def _append(corrections: list[Any], service: Service) -> None:
    with _write_lock:
        write_corrections(corrections, service.settings.corrections)  # type: ignore[arg-type]


async def _json(request: Request, service: Service) -> dict[str, Any]:
    body = await read_body(request.stream(), request.headers.get("content-length"), service.settings.max_body_bytes)
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError(400, "the body is not valid JSON: expected Label Studio's JSON request") from None
    if not isinstance(data, dict):
        raise RequestError(422, f"expected a JSON object; found {type(data).__name__}")
    return data
