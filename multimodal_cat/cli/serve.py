"""``multimodal-cat serve``: categorize products at upload time over HTTP.

Example:
    $ multimodal-cat serve --taxonomy shopify --map-to google --port 8080
    $ multimodal-cat serve --model my-model --review-below 0.8 --api-key-env MMCAT_KEY
    $ curl -s localhost:8080/v1/categorize -H 'Content-Type: application/json' \\
        -d '{"title": "Leather ankle boots"}'

The model loads in the background: ``/healthz`` answers at once, ``/readyz`` once it is
loaded. Exit codes: 0 stopped by Ctrl-C or SIGTERM (in-flight requests finished); 2 a
mistake in the command (or a model that cannot be loaded).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from multimodal_cat.cli.checks import check_folder
from multimodal_cat.cli.errors import UserError
from multimodal_cat.cli.review import add_routing_arguments, build_router
from multimodal_cat.cli.types import probability


def add_parser(subparsers: Any) -> None:
    """Add the ``serve`` sub-command."""
    p = subparsers.add_parser(
        "serve",
        help="serve categorization over HTTP (upload time, Label Studio ML backend)",
        description="An HTTP service: POST /v1/categorize, /healthz, /readyz, /metrics, a page at /, "
        "OpenAPI docs at /docs, and Label Studio's ML backend (/health, /setup, /predict, /webhook).",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", help="trained model folder or hub id")
    which.add_argument("--taxonomy", help="zero-shot into this taxonomy (default: shopify)")
    p.add_argument("--map-to", action="append", default=[], metavar="TAXONOMY",
                   help="also answer the equivalent category in this taxonomy (repeatable)")
    p.add_argument("--min-confidence", type=probability, metavar="P",
                   help="back off to the deepest category on the best one's path whose "
                   "probability reaches P")
    p.add_argument("--image-encoder", metavar="MODEL",
                   help="zero-shot only: an aligned image-text model that reads the images")
    p.add_argument("--text-encoder", metavar="MODEL",
                   help="zero-shot only: the text encoder (default minilm; multilingual-e5-small "
                   "for products in other languages)")
    p.add_argument("--bf16", action="store_true", help="run the model in bfloat16")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads for the model")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    batching = p.add_argument_group("micro-batching")
    batching.add_argument("--max-batch", type=int, default=64,
                          help="most products per model call; 1 turns batching off (default: %(default)s)")
    batching.add_argument("--batch-window-ms", type=float, default=5.0,
                          help="how long a product waits for others to join its batch while more "
                          "requests are on their way; a lone request goes at once (default: %(default)s)")
    batching.add_argument("--max-queue", type=int, default=256,
                          help="most products (and requests) waiting; beyond it the answer is 503 "
                          "with Retry-After, before the body is read (default: %(default)s)")
    limits = p.add_argument_group("limits")
    limits.add_argument("--request-timeout", type=float, default=10.0,
                        help="seconds one request may take, image download included; then 504 "
                        "(default: %(default)s)")
    limits.add_argument("--max-body-bytes", type=int, default=16 * 1024 * 1024,
                        help="largest request body; more is 413 (default: %(default)s)")
    limits.add_argument("--max-products", type=int, default=64,
                        help="most products per request (default: %(default)s)")
    limits.add_argument("--api-key-env", metavar="VAR",
                        help="require the API key held in this environment variable "
                        "(X-API-Key or Authorization: Bearer)")
    limits.add_argument("--on-image-error", choices=("reject", "degrade"), default="reject",
                        help="an image that cannot be used: answer 422 (reject) or categorize from "
                        "the text and mark the row degraded (default: %(default)s)")
    limits.add_argument("--image-timeout", type=float, default=5.0,
                        help="wall-clock seconds per image download (default: %(default)s)")
    limits.add_argument("--max-image-bytes", type=int, default=10 * 1024 * 1024,
                        help="largest image in bytes (default: %(default)s)")
    limits.add_argument("--max-image-pixels", type=int, default=40_000_000,
                        help="largest image, width x height (default: %(default)s)")
    limits.add_argument("--allow-private-hosts", action="store_true",
                        help="also download images from loopback, private and link-local addresses")
    p.add_argument("--index", metavar="INDEX",
                   help="a catalog index (multimodal-cat index build) for POST /v1/similar")
    p.add_argument("--corrections", metavar="FILE",
                   help="Label Studio's webhook appends reviewers' answers to this JSON lines file")
    add_routing_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the exit code."""
    check_folder(args.index, "--index folder")
    try:
        from multimodal_cat.serving.app import create_app
        from multimodal_cat.serving.server import serve
        from multimodal_cat.serving.service import Service
        from multimodal_cat.serving.settings import ServeSettings
    except ImportError as error:
        raise UserError(
            f"serving needs the serve extra ({error.name} is missing): pip install 'multimodal-cat[serve]'"
        ) from None
    from multimodal_cat.feeds.images import ImageLoader

    settings = ServeSettings(**_settings(args))
    images = ImageLoader(
        None, timeout=args.image_timeout, max_bytes=args.max_image_bytes,
        max_pixels=args.max_image_pixels, retries=0, workers=16,
        allow_private_hosts=args.allow_private_hosts,
    )
    catalog = None
    if args.index:
        from multimodal_cat.serving.similar import load_catalog

        catalog = lambda: load_catalog(args.index)  # noqa: E731
    service = Service(lambda: _engine(args), settings, images, catalog)
    serve(create_app(service), args.host, args.port)
    if service.load_error:
        raise UserError(f"the model could not be loaded: {service.load_error}")
    return 0


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise UserError(f"--api-key-env {args.api_key_env}: that environment variable is empty or unset")
    values = {
        "max_batch": args.max_batch, "window_ms": args.batch_window_ms, "max_queue": args.max_queue,
        "request_timeout": args.request_timeout, "max_body_bytes": args.max_body_bytes,
        "max_products": args.max_products, "api_key": api_key, "on_image_error": args.on_image_error,
        "corrections": Path(args.corrections) if args.corrections else None,
    }
    for name in ("max_batch", "max_queue", "max_body_bytes", "max_products"):
        if values[name] < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {values[name]}")
    if args.batch_window_ms < 0 or args.request_timeout <= 0:
        raise UserError("--batch-window-ms must be at least 0 and --request-timeout above 0")
    return values


def _engine(args: argparse.Namespace) -> Any:
    """Load the predictor, mapper and router once (runs in the service's loading thread)."""
    from multimodal_cat.cli.categorize import _build_predictor
    from multimodal_cat.feeds.output_row import matches
    from multimodal_cat.feeds.rows import OutputRows
    from multimodal_cat.serving.service import Engine

    args.dry_run, args.adapt, args.column = False, False, []
    predictor, mapper = _build_predictor(args)
    router = build_router(args, predictor)
    targets = mapper.target_names if mapper else []
    names = list(args.map_to) + [
        n for n in targets if not any(matches(n, wanted) for wanted in args.map_to)
    ]
    rows = OutputRows(predictor, mapper, names, min_confidence=args.min_confidence, router=router)
    _warm_up(rows)
    version = f"{Path(args.model).name}" if args.model else f"zero-shot:{predictor.taxonomy.name}"
    print(f"multimodal-cat: model {version} loaded", file=sys.stderr)
    return Engine(rows, predictor.taxonomy, version)


def _warm_up(rows: Any) -> None:
    """One prediction before ``/readyz`` turns green: a zero-shot predictor builds its category
    index on first use, which would otherwise land on the first request."""
    from multimodal_cat.feeds.rows import RowItem, start_item
    from multimodal_cat.products import Product

    rows.predict([start_item(RowItem(0), Product(title="warm-up product"), None)])
