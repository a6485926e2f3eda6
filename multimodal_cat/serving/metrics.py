"""Prometheus metrics of one service: requests, latency, batch sizes, queue depth, errors.

Each app has its own registry, so several services (tests, benchmarks) can live in one
process. ``GET /metrics`` serves :meth:`ServiceMetrics.render`.

Example:
    >>> metrics = ServiceMetrics()
    >>> metrics.batch_size.observe(4)
    >>> b"multimodal_cat_batch_size_count 1.0" in metrics.render()
    True
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    """The service's counters, histograms and gauges, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "multimodal_cat_requests", "HTTP requests answered", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "multimodal_cat_request_seconds", "Time to answer a request", ["route"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.batch_size = Histogram(
            "multimodal_cat_batch_size", "Products per predictor call", buckets=BATCH_BUCKETS, registry=r
        )
        self.queue_depth = Gauge(
            "multimodal_cat_queue_depth", "Products waiting for a batch", registry=r
        )
        self.products = Counter(
            "multimodal_cat_products", "Products categorized, by row status", ["status"], registry=r
        )
        self.errors = Counter(
            "multimodal_cat_errors", "Refused or failed requests, by reason", ["reason"], registry=r
        )
        self.ready = Gauge("multimodal_cat_ready", "1 once the model is loaded", registry=r)

    def track_queue(self, depth: Callable[[], int]) -> None:
        """Read the queue depth from ``depth`` at each scrape."""
        self.queue_depth.set_function(depth)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
