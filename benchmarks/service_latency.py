"""How fast does ``multimodal-cat serve`` answer, alone and under load, against in-process calls?

The service runs as its own process (``python -m multimodal_cat serve`` on 127.0.0.1); the
client is this process (httpx, async for the load levels), bounded: it sends a fixed number of
requests and stops. Measured, all in one run:

- ``single.<case>``: 500 sequential warm requests, one product each; ``p50_ms``, ``p99_ms``
  against ``inprocess_ms`` (p50 of the same products through the same per-batch step,
  :class:`~multimodal_cat.feeds.rows.OutputRows`, called in this process, image decoding
  included) and their ratio; the two are measured in alternating blocks of 50. Cases: ``zero_shot_title`` (zero-shot into Shopify, real offline
  MiniLM, Flipkart titles) and ``fashion_title_image`` (a fashion checkpoint, title + image sent
  as base64, Myntra test-split products).
- ``load.<clients>`` (8, 32, 64 concurrent clients), with micro-batching (default flags) and
  without (``--max-batch 1``): products/s, p99, errors (any answer but 200, or a failed
  connection) and ``batch_ratio``: products/s over the batch feed job's products/s
  (:func:`~multimodal_cat.feeds.categorize_feed`, batch 64, in this process) on the same
  products in the same run.
- ``overload``: a burst of concurrent requests against a queue of ``--overload-queue``
  products: how many got 503, how fast, and the p99 of those admitted.
- ``memory``: the server's RSS after 1,000 and after 10,000 requests.
- ``ready_s``: seconds from starting the server process to ``/readyz`` answering 200, with a
  warm cache (the second start).

Usage:
    python -m benchmarks.service_latency --fashion-model /tmp/svc_fashion/model
    python -m benchmarks.service_latency --requests 50 --load-requests 200 --memory-requests 1000 --out /tmp/smoke
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
SEED = 0


# --- products --------------------------------------------------------------------------------

def title_products(count: int) -> list[dict[str, str]]:
    """Flipkart titles (general merchandise), a seeded sample."""
    import pandas as pd

    frame = pd.read_csv(DATA / "flipkart" / "products.csv").dropna(subset=["title"])
    frame = frame.sample(n=min(count, len(frame)), random_state=SEED)
    return [{"id": str(i), "title": str(t)} for i, t in zip(frame["id"], frame["title"], strict=True)]


def fashion_products(count: int, skip: int = 300) -> list[dict[str, str]]:
    """Myntra test-split products (``id % 5 == 0``) after the first ``skip`` (earlier runs
    cached those): title + the image file as base64."""
    import pandas as pd

    frame = pd.read_csv(DATA / "fashion" / "styles_with_images.csv")
    frame = frame[frame["id"] % 5 == 0].iloc[skip : skip + count]
    out = []
    for pid, title, image in zip(frame["id"], frame["productDisplayName"], frame["image"], strict=True):
        data = (DATA / "fashion" / image).read_bytes()
        out.append({"id": str(pid), "title": str(title), "image_base64": base64.b64encode(data).decode()})
    return out


class _Fresh:
    """Hands out products in order, each once."""

    def __init__(self, products: list[dict[str, str]]) -> None:
        self.products, self.next = products, 0

    def take(self, count: int) -> list[dict[str, str]]:
        if self.next + count > len(self.products):
            raise ValueError(f"out of fresh products ({len(self.products)})")
        self.next += count
        return self.products[self.next - count : self.next]


# --- the server process ----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``multimodal-cat serve`` in a child process; ``ready_s`` from its start to /readyz 200."""

    def __init__(self, flags: list[str], threads: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "multimodal_cat", "serve", "--port", str(self.port),
                   "--threads", str(threads), *flags]
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)}
        self.log = open(os.devnull, "wb")  # noqa: SIM115 - closed in stop()
        start = time.monotonic()
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=self.log)
        self.ready_s = self._wait_ready(start)

    def _wait_ready(self, start: float, seconds: float = 600) -> float:
        import httpx

        while time.monotonic() - start < seconds:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server never became ready")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


# --- clients ---------------------------------------------------------------------------------

def sequential(url: str, products: list[dict[str, str]], count: int) -> list[float]:
    """Latencies (ms) of ``count`` requests sent one after another (keep-alive)."""
    import httpx

    latencies = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for n in range(count):
            start = time.perf_counter()
            answer = client.post("/v1/categorize", json=products[n % len(products)])
            latencies.append((time.perf_counter() - start) * 1000)
            if answer.status_code != 200:
                raise RuntimeError(f"request {n}: HTTP {answer.status_code}: {answer.text[:200]}")
    return latencies


async def _load(url: str, products: list[dict[str, str]], clients: int, total: int) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: list[int] = []
    kinds: dict[str, int] = {}
    counter = iter(range(total))
    # idle connections expire on the client first (uvicorn closes them after 5 s): no reuse race
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8,
                          keepalive_expiry=2.0)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            for n in counter:
                start = time.perf_counter()
                try:
                    answer = await client.post("/v1/categorize", json=products[n % len(products)])
                    statuses.append(answer.status_code)
                except httpx.HTTPError as error:
                    statuses.append(0)
                    kinds[type(error).__name__] = kinds.get(type(error).__name__, 0) + 1
                latencies.append((time.perf_counter() - start) * 1000)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - start
    ok = [lat for lat, s in zip(latencies, statuses, strict=True) if s == 200]
    return {
        "requests": total,
        "rps": round(len(ok) / seconds, 1),
        "p50_ms": round(float(np.percentile(ok, 50)), 1) if ok else None,
        "p99_ms": round(float(np.percentile(ok, 99)), 1) if ok else None,
        "errors": total - len(ok),
        "error_kinds": {**kinds, **{f"HTTP {s}": statuses.count(s) for s in set(statuses) - {0, 200}}},
        "seconds": round(seconds, 2),
    }


def load(url: str, products: list[dict[str, str]], clients: int, total: int) -> dict[str, Any]:
    """``total`` requests from ``clients`` concurrent clients, each sending one after another."""
    return asyncio.run(_load(url, products, clients, total))


async def _burst(url: str, products: list[dict[str, str]], size: int) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=size + 8)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        await client.get("/healthz")

        async def one(n: int) -> tuple[int, float]:
            start = time.perf_counter()
            try:
                answer = await client.post("/v1/categorize", json=products[n % len(products)])
                status = answer.status_code
            except httpx.HTTPError:
                status = 0
            return status, (time.perf_counter() - start) * 1000

        done = await asyncio.gather(*(one(n) for n in range(size)))
    admitted = [lat for s, lat in done if s == 200]
    refused = [lat for s, lat in done if s == 503]
    return {
        "burst": size,
        "admitted": len(admitted),
        "refused_503": len(refused),
        "other_errors": size - len(admitted) - len(refused),
        "refused_p50_ms": round(float(np.percentile(refused, 50)), 1) if refused else None,
        "refused_p99_ms": round(float(np.percentile(refused, 99)), 1) if refused else None,
        "refused_max_ms": round(max(refused), 1) if refused else None,
        "admitted_p99_ms": round(float(np.percentile(admitted, 99)), 1) if admitted else None,
    }


# --- in-process baselines --------------------------------------------------------------------

def build_rows(flags: dict[str, Any], threads: int) -> Any:
    """The per-batch step with the predictor the server builds from the same flags."""
    import torch

    from multimodal_cat.feeds.rows import OutputRows
    from multimodal_cat.predictors.build import build_predictor

    torch.set_num_threads(threads)
    return OutputRows(build_predictor(num_threads=threads, **flags))


def inprocess(rows: Any, products: list[dict[str, str]], count: int) -> list[float]:
    """Latencies (ms) of one product at a time through the same step, no HTTP, no queue."""
    from multimodal_cat.feeds.images import ImageLoader
    from multimodal_cat.feeds.rows import RowItem, start_item
    from multimodal_cat.serving.inputs import check_records, products_from_records

    loader = ImageLoader(None, retries=0)
    latencies = []
    try:
        for n in range(count):
            start = time.perf_counter()
            records = check_records([products[n % len(products)]], max_products=1)
            (product,) = products_from_records(records)
            (row,) = rows([start_item(RowItem(1), product, loader)])
            latencies.append((time.perf_counter() - start) * 1000)
            if row["status"] != "ok":
                raise RuntimeError(f"in-process row {n}: {row['status']} {row['error']}")
    finally:
        loader.close()
    return latencies


def feed_job_rate(rows: Any, products: list[dict[str, str]], folder: Path) -> dict[str, Any]:
    """Products/s of the batch feed job (batch 64) over the same products."""
    from multimodal_cat.feeds import categorize_feed

    feed = folder / "load-feed.jsonl"
    feed.write_text("".join(json.dumps(p) + "\n" for p in products))
    out = folder / "load-out.jsonl"
    out.unlink(missing_ok=True)
    summary = categorize_feed(feed, rows.predictor, out, batch_size=64, progress=False)
    return {"products": summary.rows, "seconds": round(summary.seconds, 2),
            "products_per_s": round(summary.rows / summary.seconds, 1)}


def paired(rows: Any, url: str, products: list[dict[str, str]], count: int, block: int = 50) -> dict[str, Any]:
    """Service and in-process latencies measured in alternating blocks of ``block`` requests,
    so a change in the machine's load hits both. The predictors cache each product's embeddings,
    so every request is a product neither side has seen: the even ones in-process, the odd ones
    through the service (``products`` holds at least ``2 * count``)."""
    if len(products) < 2 * count:
        raise ValueError(f"expected at least {2 * count} products; found {len(products)}")
    served: list[float] = []
    local: list[float] = []
    for start in range(0, 2 * count, 2 * block):
        chunk = products[start : start + 2 * block]
        local += inprocess(rows, chunk[0::2], len(chunk[0::2]))
        served += sequential(url, chunk[1::2], len(chunk[1::2]))
    return _single(served, local)


def _single(server_lat: list[float], local_lat: list[float]) -> dict[str, Any]:
    p50, inproc = float(np.percentile(server_lat, 50)), float(np.percentile(local_lat, 50))
    return {
        "requests": len(server_lat),
        "p50_ms": round(p50, 2),
        "p99_ms": round(float(np.percentile(server_lat, 99)), 2),
        "inprocess_ms": round(inproc, 2),
        "inprocess_p99_ms": round(float(np.percentile(local_lat, 99)), 2),
        "p50_ratio": round(p50 / inproc, 3),
    }


# --- the run ---------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict[str, Any]:
    """The parts asked for; a fashion-only run updates the results file's other figures."""
    load_before = list(os.getloadavg())
    out = Path(args.out).with_suffix(".json")
    result: dict[str, Any] = {"single": {}, "load": {"batching": {}, "no_batching": {}}}
    if "zero_shot" not in args.parts and out.exists():
        result = json.loads(out.read_text())
    if "zero_shot" in args.parts:
        zero_shot_part(args, result)
    if "fashion" in args.parts and args.fashion_model:
        fashion_part(args, result)
    runs = result.pop("runs", [])
    meta = _meta(args, load_before)
    result.update(meta)
    result["runs"] = [*runs, {"parts": args.parts, **meta}]
    return result


def zero_shot_part(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Zero-shot into Shopify, titles: single, load, memory, overload, ready time.

    The batching and the non-batching servers run side by side and each load level is measured
    on one, then the other, right after the feed job's own rate: a change in the machine's
    load during the run then hits all three alike.
    """
    folder = Path(tempfile.mkdtemp(prefix="service-latency-"))
    titles = title_products(20_000)
    earlier = {p["id"] for p in title_products(2000)}  # what earlier runs sent (cached)
    fresh = _Fresh([p for p in titles if p["id"] not in earlier])  # never seen: embeddings are cached
    zero_shot = ["--taxonomy", "shopify"]

    print("zero-shot: in-process baseline, servers", file=sys.stderr)
    rows = build_rows({"taxonomy": "shopify"}, args.threads)
    inprocess(rows, fresh.take(20), 20)  # warm
    Server(zero_shot, args.threads).stop()  # first start fills the caches
    batching = Server(zero_shot, args.threads)
    result["ready_s"] = round(batching.ready_s, 2)
    plain = Server([*zero_shot, "--max-batch", "1"], args.threads)
    try:
        sequential(batching.url, fresh.take(20), 20)  # warm
        sequential(plain.url, fresh.take(20), 20)
        singles = fresh.take(2 * args.requests)
        result["single"]["zero_shot_title"] = paired(rows, batching.url, singles, args.requests)
        result["feed_job"] = {}
        for clients in args.clients:
            feed = feed_job_rate(rows, fresh.take(args.load_requests), folder)
            result["feed_job"][str(clients)] = feed
            for mode, server in (("batching", batching), ("no_batching", plain)):
                level = load(server.url, fresh.take(args.load_requests), clients, args.load_requests)
                level["batch_ratio"] = round(level["rps"] / feed["products_per_s"], 3)
                result["load"][mode][str(clients)] = level
                print(f"  {clients} clients, {mode}: {level} (feed job {feed})", file=sys.stderr)
    finally:
        batching.stop()
        plain.stop()
    del rows

    print("zero-shot server, overload", file=sys.stderr)
    queue = args.overload_queue
    server = Server([*zero_shot, "--max-queue", str(queue)], args.threads)
    try:
        sequential(server.url, fresh.take(10), 10)
        burst = fresh.take(args.overload_burst)
        result["overload"] = {"max_queue": queue, **asyncio.run(_burst(server.url, burst, args.overload_burst))}
    finally:
        server.stop()

    print("zero-shot server, memory", file=sys.stderr)
    server = Server(zero_shot, args.threads)
    try:
        before = server.rss_mb()
        first = load(server.url, titles, 32, 1000)  # memory: repeats are fine
        rss_1k = server.rss_mb()
        rest = load(server.url, titles, 32, args.memory_requests - 1000)
        rss_all = server.rss_mb()
        result["memory"] = {"rss_mb_ready": round(before, 1), "rss_mb_after_1000": round(rss_1k, 1),
                            "requests": args.memory_requests, "rss_mb_after_all": round(rss_all, 1),
                            "ratio": round(rss_all / rss_1k, 3), "errors": first["errors"] + rest["errors"]}
    finally:
        server.stop()


def fashion_part(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """A fashion checkpoint, title + image (base64): single requests against in-process."""
    print("fashion checkpoint: in-process baseline, then server", file=sys.stderr)
    fresh = _Fresh(fashion_products(2 * args.requests + 20))
    rows = build_rows({"model": args.fashion_model}, args.threads)
    inprocess(rows, fresh.take(10), 10)
    server = Server(["--model", args.fashion_model], args.threads)
    try:
        sequential(server.url, fresh.take(10), 10)
        singles = fresh.take(2 * args.requests)
        result["single"]["fashion_title_image"] = paired(rows, server.url, singles, args.requests)
    finally:
        server.stop()


def _meta(args: argparse.Namespace, load_before: list[float]) -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return {
        "command": "python -m benchmarks.service_latency " + " ".join(args.argv),
        "git_commit": commit,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seeds": {"product_sample": SEED},
        "cache": args.cache,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch_threads": args.threads},
        "settings": {"requests": args.requests, "load_requests": args.load_requests,
                     "clients": args.clients, "server_flags": "defaults (--max-batch 64 --batch-window-ms 5 "
                     "--max-queue 256); no batching: --max-batch 1",
                     "fashion_model": args.fashion_model},
    }


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Service latency (`multimodal-cat serve`)",
        "",
        f"`{r['command']}` at commit `{r['git_commit'][:12]}`, {r['date']}, load average "
        f"{r['load_average_before']} -> {r['load_average_after']}, {r['machine']['cpus']} CPUs, "
        f"torch threads {r['machine']['torch_threads']}. Server: its own process on 127.0.0.1; "
        "client: this process.",
        "",
        "## One product per request, sequential (warm)",
        "",
        "| case | requests | p50 ms | p99 ms | in-process p50 ms | p50 ratio |",
        "|---|---|---|---|---|---|",
    ]
    for case, s in r["single"].items():
        lines.append(f"| {case} | {s['requests']} | {s['p50_ms']} | {s['p99_ms']} | {s['inprocess_ms']} | {s['p50_ratio']} |")
    lines += [
        "",
        "## Concurrent clients (zero-shot, titles), against the feed job (batch 64) measured just before",
        "",
        "| clients | batching | products/s | p50 ms | p99 ms | errors | feed job products/s | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for clients in r["load"]["batching"]:
        feed = r["feed_job"][clients]
        for mode in ("batching", "no_batching"):
            level = r["load"][mode][clients]
            lines.append(f"| {clients} | {'on' if mode == 'batching' else 'off'} | {level['rps']} | "
                         f"{level['p50_ms']} | {level['p99_ms']} | {level['errors']} | "
                         f"{feed['products_per_s']} | {level['batch_ratio']} |")
    o, m = r["overload"], r["memory"]
    lines += [
        "",
        f"## Overload: a burst of {o['burst']} requests, queue of {o['max_queue']}",
        "",
        f"{o['admitted']} admitted (p99 {o['admitted_p99_ms']} ms), {o['refused_503']} answered 503 "
        f"(p50 {o['refused_p50_ms']} ms, p99 {o['refused_p99_ms']} ms, max {o['refused_max_ms']} ms), "
        f"{o['other_errors']} other errors.",
        "",
        "## Memory and start",
        "",
        f"Server RSS {m['rss_mb_ready']} MB when ready, {m['rss_mb_after_1000']} MB after 1,000 "
        f"requests, {m['rss_mb_after_all']} MB after {m['requests']:,} (ratio {m['ratio']}, "
        f"{m['errors']} errors). Ready {r['ready_s']} s after the process started (warm cache).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion-model", help="a fashion checkpoint for the title + image case")
    parser.add_argument("--parts", nargs="+", choices=("zero_shot", "fashion"), default=["zero_shot", "fashion"],
                        help="what to measure (fashion alone updates an existing results file)")
    parser.add_argument("--requests", type=int, default=500, help="sequential requests per case")
    parser.add_argument("--load-requests", type=int, default=1000, help="requests per load level")
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--memory-requests", type=int, default=10_000)
    parser.add_argument("--overload-queue", type=int, default=32)
    parser.add_argument("--overload-burst", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (server and in-process)")
    parser.add_argument("--out", default=str(RESULTS / "service_latency"), help="output stem")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "multimodal-cat-service-cache"),
                        help="embedding cache folder for this benchmark (server and in-process)")
    args = parser.parse_args(argv)
    os.environ["MULTIMODAL_CAT_CACHE"] = args.cache  # a cache of its own, inherited by the servers
    args.argv = list(argv if argv is not None else sys.argv[1:])
    result = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
