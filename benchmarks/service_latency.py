"""How fast does ``multimodal-cat serve`` answer, alone and under load, against in-process calls?

The service runs as its own process (``python -m multimodal_cat serve`` on 127.0.0.1); the
client is this process: a lean asyncio HTTP/1.1 keep-alive client (:class:`Connection`, so the
client's own CPU, on the same small machine, takes as little as it can from the server),
bounded: it sends a fixed number of requests and stops. Measured, all in one run:

- ``single.<case>``: 500 sequential warm requests, one product each; ``p50_ms``, ``p99_ms``
  against ``inprocess_ms`` (p50 of the same products through the same per-batch step,
  :class:`~multimodal_cat.feeds.rows.OutputRows`, called in this process, request checking and
  image decoding included) and their ratio; the two are measured in alternating blocks of 50.
  Cases: ``zero_shot_title`` (zero-shot into Shopify, real offline MiniLM, Flipkart titles) and
  ``fashion_title_image`` (a fashion checkpoint, title + image sent as base64, Myntra
  test-split products, ``id % 5 == 0``, none of them trained on).
- ``load.<clients>`` (8, 32, 64 concurrent clients), with micro-batching (default flags) and
  without (``--max-batch 1``): products/s, p50, p99, errors (any answer but 200, or a failed
  connection) and ``batch_ratio``: products/s over the batch feed job's products/s
  (:func:`~multimodal_cat.feeds.categorize_feed`, batch 64, in this process) on the same
  products, measured just before and just after the two servers (their mean). When those two
  feed-job rates differ by more than ``--disturbed`` (the machine's load changed under the
  level), the level is measured again (at most ``--attempts`` times) and the steadiest attempt
  is reported; every attempt is kept under ``attempts``.
- ``overload``: a burst of concurrent requests (connections opened first) against a queue of
  ``--overload-queue`` products: how many got 503, how fast, and the p99 of those admitted.
- ``memory``: the server's RSS after 1,000 and after 10,000 requests (all different titles).
- ``ready_s``: seconds from starting the server process to ``/readyz`` answering 200, with a
  warm cache (the category vectors from an earlier start).

Footing: **cold on both sides, on the same products**. Every consumer (each server process,
each in-process measurement, each feed-job run) gets its own copy of one warm-start embedding
cache (the category vectors, filled by a first server start), and no consumer sees a product
twice, so every product's embedding is computed by the side being measured, the way a new
upload's is. Load averages are recorded before and after each part.

Usage:
    python -m benchmarks.service_latency --fashion-model /tmp/svc_train/model
    python -m benchmarks.service_latency --requests 50 --load-requests 200 --memory-requests 1000 --out /tmp/smoke
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import shutil
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
BLOCK = 50  # sequential requests per alternating block (service, then in-process)


# --- products --------------------------------------------------------------------------------

def title_products(count: int) -> list[dict[str, str]]:
    """Flipkart titles (general merchandise), distinct titles only, in a seeded order."""
    import pandas as pd

    frame = pd.read_csv(DATA / "flipkart" / "products.csv").dropna(subset=["title"])
    frame = frame.drop_duplicates("title").sample(frac=1.0, random_state=SEED).iloc[:count]
    return [{"id": str(i), "title": str(t)} for i, t in zip(frame["id"], frame["title"], strict=True)]


def fashion_products(count: int) -> list[dict[str, str]]:
    """Myntra test-split products (``id % 5 == 0``, never trained on), distinct images and
    titles: title + the image file as base64."""
    import pandas as pd

    frame = pd.read_csv(DATA / "fashion" / "styles_with_images.csv")
    frame = frame[frame["id"] % 5 == 0].drop_duplicates("productDisplayName").iloc[:count]
    out = []
    for pid, title, image in zip(frame["id"], frame["productDisplayName"], frame["image"], strict=True):
        data = (DATA / "fashion" / image).read_bytes()
        out.append({"id": str(pid), "title": str(title), "image_base64": base64.b64encode(data).decode()})
    return out


class Pool:
    """Hands out products in order, each once (per consumer: see the module's footing)."""

    def __init__(self, products: list[dict[str, str]]) -> None:
        self.products, self.next = products, 0

    def take(self, count: int) -> list[dict[str, str]]:
        if self.next + count > len(self.products):
            raise ValueError(f"out of distinct products ({len(self.products)})")
        self.next += count
        return self.products[self.next - count : self.next]


class Caches:
    """A warm-start embedding cache and fresh copies of it, one per consumer."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / "base"
        self.count = 0

    def fresh(self, name: str) -> Path:
        self.count += 1
        target = self.root / f"{self.count:02d}-{name}"
        if self.base.exists():
            shutil.copytree(self.base, target)
        else:
            target.mkdir(parents=True)
        return target


# --- the server process ----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``multimodal-cat serve`` in a child process, with its own embedding cache folder when
    ``cache`` is given; ``ready_s`` from its start to /readyz 200."""

    def __init__(self, flags: list[str], threads: int, cache: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "multimodal_cat", "serve", "--port", str(self.port),
                   "--threads", str(threads), *flags]
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)}
        if cache is not None:
            env["MULTIMODAL_CAT_CACHE"] = str(cache)
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

    def cpu_s(self) -> float:
        """CPU seconds the server process has used (all its threads, user + system)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


# --- clients ---------------------------------------------------------------------------------

class Connection:
    """One HTTP/1.1 keep-alive connection that POSTs JSON bodies (reconnects when closed)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes) -> int:
        """The answer's status (0: the connection failed)."""
        try:
            if self.writer is None:
                await self.open()
            assert self.reader is not None and self.writer is not None
            self.writer.write(
                b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self.host.encode(), len(body), body)
            )
            head = await self.reader.readuntil(b"\r\n\r\n")
            lower = head.lower()
            at = lower.index(b"content-length:") + 15
            await self.reader.readexactly(int(lower[at : lower.index(b"\r\n", at)]))
            if b"connection: close" in lower:
                self.close()
            return int(head[9:12])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            return 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def bodies(products: list[dict[str, str]]) -> list[bytes]:
    return [json.dumps(p).encode() for p in products]


async def _sequential(url: str, payloads: list[bytes]) -> list[float]:
    connection = Connection(url)
    await connection.open()  # opened before the clock starts
    latencies = []
    try:
        for n, body in enumerate(payloads):
            start = time.perf_counter()
            status = await connection.post("/v1/categorize", body)
            latencies.append((time.perf_counter() - start) * 1000)
            if status != 200:
                raise RuntimeError(f"request {n}: HTTP {status}")
    finally:
        connection.close()
    return latencies


def sequential(url: str, products: list[dict[str, str]]) -> list[float]:
    """Latencies (ms) of one request per product, sent one after another (keep-alive)."""
    return asyncio.run(_sequential(url, bodies(products)))


async def _load(url: str, payloads: list[bytes], clients: int) -> dict[str, Any]:
    connections = [Connection(url) for _ in range(clients)]
    await asyncio.gather(*(c.open() for c in connections))
    latencies: list[float] = []
    statuses: list[int] = []
    counter = iter(range(len(payloads)))

    async def worker(connection: Connection) -> None:
        for n in counter:
            start = time.perf_counter()
            statuses.append(await connection.post("/v1/categorize", payloads[n]))
            latencies.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    seconds = time.perf_counter() - start
    for connection in connections:
        connection.close()
    ok = [lat for lat, status in zip(latencies, statuses, strict=True) if status == 200]
    return {
        "requests": len(payloads),
        "rps": round(len(ok) / seconds, 1),
        "p50_ms": _pct(ok, 50),
        "p99_ms": _pct(ok, 99),
        "errors": len(payloads) - len(ok),
        "error_kinds": {f"HTTP {s}" if s else "connection failed": statuses.count(s) for s in set(statuses) - {200}},
        "seconds": round(seconds, 2),
    }


def load(url: str, products: list[dict[str, str]], clients: int) -> dict[str, Any]:
    """One request per product from ``clients`` concurrent clients, each one after another."""
    return asyncio.run(_load(url, bodies(products), clients))


async def _burst(url: str, payloads: list[bytes]) -> dict[str, Any]:
    connections = [Connection(url) for _ in payloads]
    await asyncio.gather(*(c.open() for c in connections))  # connected before the burst

    async def one(connection: Connection, body: bytes) -> tuple[int, float]:
        start = time.perf_counter()
        status = await connection.post("/v1/categorize", body)
        return status, (time.perf_counter() - start) * 1000

    done = await asyncio.gather(*(one(c, b) for c, b in zip(connections, payloads, strict=True)))
    for connection in connections:
        connection.close()
    admitted = [lat for s, lat in done if s == 200]
    refused = [lat for s, lat in done if s == 503]
    return {
        "burst": len(payloads),
        "admitted": len(admitted),
        "refused_503": len(refused),
        "other_errors": len(payloads) - len(admitted) - len(refused),
        "refused_p50_ms": _pct(refused, 50),
        "refused_p99_ms": _pct(refused, 99),
        "refused_max_ms": round(max(refused), 1) if refused else None,
        "admitted_p50_ms": _pct(admitted, 50),
        "admitted_p99_ms": _pct(admitted, 99),
    }


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


# --- in-process baselines --------------------------------------------------------------------

def use_cache(folder: Path) -> None:
    """Point this process's embedding cache at ``folder`` (read when a cache is opened)."""
    os.environ["MULTIMODAL_CAT_CACHE"] = str(folder)


def build_rows(flags: dict[str, Any], threads: int) -> Any:
    """The per-batch step with the predictor the server builds from the same flags."""
    import torch

    from multimodal_cat.feeds.rows import OutputRows
    from multimodal_cat.predictors.build import build_predictor

    torch.set_num_threads(threads)
    limit_threads(threads)
    return OutputRows(build_predictor(num_threads=threads, **flags))


def limit_threads(threads: int) -> None:
    """Give this process's BLAS/OpenMP pools ``threads`` threads, as ``OMP_NUM_THREADS`` gives
    the server's: left at the core count, numpy's scoring spun idle threads that doubled the
    in-process CPU time per product (41 ms against the server's 19 in an earlier run)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)


def inprocess(rows: Any, products: list[dict[str, str]]) -> list[float]:
    """Latencies (ms) of one product at a time through the same step, no HTTP, no queue:
    the request's JSON read and checked, the row built and written as JSON, as the service does."""
    from multimodal_cat.feeds.images import ImageLoader
    from multimodal_cat.feeds.rows import RowItem, start_item
    from multimodal_cat.serving.inputs import parse_json, products_from_records

    loader = ImageLoader(None, retries=0)
    latencies = []
    try:
        for n, body in enumerate(bodies(products)):
            start = time.perf_counter()
            records, _ = parse_json(body, max_products=1)
            (product,) = products_from_records(records)
            (row,) = rows([start_item(RowItem(1), product, loader)])
            json.dumps(row)
            latencies.append((time.perf_counter() - start) * 1000)
            if row["status"] != "ok":
                raise RuntimeError(f"in-process row {n}: {row['status']} {row['error']}")
    finally:
        loader.close()
    return latencies


def feed_job_rate(rows: Any, products: list[dict[str, str]], folder: Path, cache: Path) -> dict[str, Any]:
    """Products/s of the batch feed job (batch 64) over ``products``, cold (cache ``cache``)."""
    from multimodal_cat.feeds import categorize_feed

    use_cache(cache)
    cpu = time.process_time()
    feed = folder / "load-feed.jsonl"
    feed.write_text("".join(json.dumps(p) + "\n" for p in products))
    out = folder / "load-out.jsonl"
    out.unlink(missing_ok=True)
    summary = categorize_feed(feed, rows.predictor, out, batch_size=64, progress=False)
    return {"products": summary.rows, "seconds": round(summary.seconds, 2),
            "products_per_s": round(summary.rows / summary.seconds, 1),
            "cpu_ms_per_product": round((time.process_time() - cpu) / summary.rows * 1000, 2)}


def paired(rows: Any, server: Server, products: list[dict[str, str]]) -> dict[str, Any]:
    """Service and in-process latencies on the same products, in alternating blocks of
    ``BLOCK``, so a change in the machine's load hits both (each side has its own cache).
    CPU time too (the server process's; this process's for the in-process calls), which the
    machine's load does not stretch as it stretches wall time."""
    served: list[float] = []
    local: list[float] = []
    cpu = {"server": 0.0, "inprocess": 0.0}
    loads = [os.getloadavg()[0]]
    for start in range(0, len(products), BLOCK):
        chunk = products[start : start + BLOCK]
        before = server.cpu_s()
        served += sequential(server.url, chunk)
        cpu["server"] += server.cpu_s() - before
        before = time.process_time()
        local += inprocess(rows, chunk)
        cpu["inprocess"] += time.process_time() - before
        loads.append(os.getloadavg()[0])
    p50, inproc = float(np.percentile(served, 50)), float(np.percentile(local, 50))
    return {
        "server_cpu_ms": round(cpu["server"] / len(served) * 1000, 2),
        "inprocess_cpu_ms": round(cpu["inprocess"] / len(local) * 1000, 2),
        "cpu_ratio": round(cpu["server"] / cpu["inprocess"], 3),
        "requests": len(served),
        "p50_ms": round(p50, 2),
        "p99_ms": round(float(np.percentile(served, 99)), 2),
        "inprocess_ms": round(inproc, 2),
        "inprocess_p99_ms": round(float(np.percentile(local, 99)), 2),
        "p50_ratio": round(p50 / inproc, 3),
        "load_average_1m": [round(x, 2) for x in (min(loads), max(loads))],
    }


# --- the run ---------------------------------------------------------------------------------

PARTS = ("zero_shot", "overload", "memory", "fashion")
ZERO_SHOT = ["--taxonomy", "shopify"]  # the zero-shot server's flags


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The parts asked for; the results file's other parts are kept (each run is listed under
    ``runs``, with its commit, date and load averages)."""
    load_before = list(os.getloadavg())
    out = Path(args.out).with_suffix(".json")
    result: dict[str, Any] = {"single": {}, "load": {"batching": {}, "no_batching": {}}}
    if set(args.parts) != set(PARTS) and out.exists():
        result = json.loads(out.read_text())
    caches = Caches(Path(tempfile.mkdtemp(prefix="service-latency-caches-")))
    try:
        if {"zero_shot", "overload", "memory"} & set(args.parts):
            zero_shot_part(args, result, caches)
        if "fashion" in args.parts and args.fashion_model:
            fashion_part(args, result, caches)
    finally:
        shutil.rmtree(caches.root, ignore_errors=True)
    runs = result.pop("runs", [])
    meta = _meta(args, load_before)
    result.update(meta)
    result["runs"] = [*runs, {"parts": args.parts, **meta}]
    return result


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def zero_shot_part(args: argparse.Namespace, result: dict[str, Any], caches: Caches) -> None:
    """Zero-shot into Shopify, titles: single, load and ready time; overload; memory."""
    pool = Pool(title_products(100_000))
    print(f"zero-shot: {len(pool.products)} distinct titles; warm-start cache", file=sys.stderr)
    Server(ZERO_SHOT, args.threads, caches.base).stop()  # fills the category vectors
    if "zero_shot" in args.parts:
        single_and_load(args, result, caches, pool)
    warm = pool.take(20)
    if "overload" in args.parts:
        overload(args, result, caches, pool, warm)
    if "memory" in args.parts:
        memory(args, result, caches)


def single_and_load(args: argparse.Namespace, result: dict[str, Any], caches: Caches, pool: Pool) -> None:
    """Single requests against in-process calls, then each load level against the feed job."""
    folder = Path(tempfile.mkdtemp(prefix="service-latency-"))

    use_cache(caches.fresh("inprocess"))
    rows = build_rows({"taxonomy": "shopify"}, args.threads)
    batching = Server(ZERO_SHOT, args.threads, caches.fresh("batching"))
    result["ready_s"] = round(batching.ready_s, 2)
    plain = Server([*ZERO_SHOT, "--max-batch", "1"], args.threads, caches.fresh("no-batching"))
    try:
        warm = pool.take(20)
        inprocess(rows, warm)
        sequential(batching.url, warm)
        sequential(plain.url, warm)
        print("  single requests", file=sys.stderr)
        result["single"]["zero_shot_title"] = paired(rows, batching, pool.take(args.requests))
        result["feed_job"] = {}
        for clients in args.clients:
            best = None
            attempts = []
            for _ in range(args.attempts):
                attempt = load_level(args, rows, (batching, plain), pool.take(args.load_requests),
                                     clients, folder, caches)
                attempts.append(attempt)
                if best is None or attempt["feed_spread"] < best["feed_spread"]:
                    best = attempt
                print(f"  {clients} clients: {json.dumps(attempt)}", file=sys.stderr)
                if attempt["feed_spread"] <= args.disturbed:
                    break
            assert best is not None
            result["feed_job"][str(clients)] = {**best["feed_job"], "attempts": len(attempts)}
            for mode in ("batching", "no_batching"):
                result["load"][mode][str(clients)] = best[mode]
            result.setdefault("attempts", {})[str(clients)] = attempts
    finally:
        batching.stop()
        plain.stop()
    del rows


def overload(args: argparse.Namespace, result: dict[str, Any], caches: Caches, pool: Pool,
             warm: list[dict[str, str]]) -> None:
    """A burst beyond the queue: how fast the refusals come, how the admitted fare."""
    print("zero-shot server, overload", file=sys.stderr)
    server = Server([*ZERO_SHOT, "--max-queue", str(args.overload_queue)], args.threads, caches.fresh("overload"))
    try:
        sequential(server.url, warm)
        payloads = bodies(pool.take(args.overload_burst))
        before = _loadavg()
        result["overload"] = {"max_queue": args.overload_queue, "max_batch": 64,
                              **asyncio.run(_burst(server.url, payloads)),
                              "load_average": [before, _loadavg()]}
    finally:
        server.stop()


def memory(args: argparse.Namespace, result: dict[str, Any], caches: Caches) -> None:
    """The server's RSS after 1,000 requests and after ``--memory-requests``."""
    print("zero-shot server, memory", file=sys.stderr)
    titles = title_products(100_000)  # a server of its own: these are new to it
    server = Server(ZERO_SHOT, args.threads, caches.fresh("memory"))
    try:
        before = server.rss_mb()
        first = load(server.url, titles[:1000], 32)
        rss_1k = server.rss_mb()
        rest = load(server.url, [titles[n % len(titles)] for n in range(1000, args.memory_requests)], 32)
        rss_all = server.rss_mb()
        result["memory"] = {"rss_mb_ready": round(before, 1), "rss_mb_after_1000": round(rss_1k, 1),
                            "requests": args.memory_requests, "distinct_titles": min(len(titles), args.memory_requests),
                            "rss_mb_after_all": round(rss_all, 1),
                            "ratio": round(rss_all / rss_1k, 3), "errors": first["errors"] + rest["errors"]}
    finally:
        server.stop()


def load_level(args: argparse.Namespace, rows: Any, servers: tuple[Server, Server],
               products: list[dict[str, str]], clients: int, folder: Path, caches: Caches) -> dict[str, Any]:
    """The feed job, both servers, the feed job again, all on ``products`` (each cold)."""
    loads = [_loadavg()]
    before = feed_job_rate(rows, products, folder, caches.fresh("feed"))
    levels = {}
    for mode, server in zip(("batching", "no_batching"), servers, strict=True):
        cpu = server.cpu_s()
        levels[mode] = load(server.url, products, clients)
        levels[mode]["server_cpu_ms_per_product"] = round((server.cpu_s() - cpu) / len(products) * 1000, 2)
        loads.append(_loadavg())
    after = feed_job_rate(rows, products, folder, caches.fresh("feed"))
    loads.append(_loadavg())
    rate = (before["products_per_s"] + after["products_per_s"]) / 2
    for level in levels.values():
        level["batch_ratio"] = round(level["rps"] / rate, 3)
    spread = abs(before["products_per_s"] - after["products_per_s"]) / rate
    return {"feed_job": {"products": len(products), "products_per_s": round(rate, 1),
                         "before": before["products_per_s"], "after": after["products_per_s"],
                         "cpu_ms_per_product": round((before["cpu_ms_per_product"] + after["cpu_ms_per_product"]) / 2, 2)},
            "feed_spread": round(spread, 3), **levels, "load_average_1m": [x[0] for x in loads]}


def fashion_part(args: argparse.Namespace, result: dict[str, Any], caches: Caches) -> None:
    """A fashion checkpoint, title + image (base64): single requests against in-process."""
    print("fashion checkpoint: in-process baseline and server", file=sys.stderr)
    pool = Pool(fashion_products(args.requests + 20))
    use_cache(caches.fresh("fashion-inprocess"))
    rows = build_rows({"model": args.fashion_model}, args.threads)
    server = Server(["--model", args.fashion_model], args.threads, caches.fresh("fashion-server"))
    try:
        warm = pool.take(20)
        inprocess(rows, warm)
        sequential(server.url, warm)
        result["single"]["fashion_title_image"] = paired(rows, server, pool.take(args.requests))
    finally:
        server.stop()


def _meta(args: argparse.Namespace, load_before: list[float]) -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return {
        "command": "python -m benchmarks.service_latency " + " ".join(args.argv),
        "git_commit": commit,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seeds": {"product_order": SEED},
        "footing": "cold on both sides on the same products: each consumer has its own copy of a "
                   "warm-start cache (category vectors only) and sees each product once",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": _loadavg(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch_threads": args.threads},
        "settings": {"requests": args.requests, "load_requests": args.load_requests,
                     "clients": args.clients, "attempts": args.attempts, "disturbed": args.disturbed,
                     "server_flags": "defaults (--max-batch 64 --batch-window-ms 5 --max-queue 256); "
                     "no batching: --max-batch 1", "fashion_model": args.fashion_model},
    }


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Service latency (`multimodal-cat serve`)",
        "",
        f"`{r['command']}` at commit `{r['git_commit'][:12]}`, {r['date']}, load average "
        f"{r['load_average_before']} -> {r['load_average_after']}, {r['machine']['cpus']} CPUs, "
        f"torch threads {r['machine']['torch_threads']}. Server: its own process on 127.0.0.1; "
        f"client: this process. Footing: {r['footing']}.",
        "",
        "## One product per request, sequential (warm process, cold products)",
        "",
        "| case | requests | p50 ms | p99 ms | in-process p50 ms | p50 ratio | CPU ms: server, in-process (ratio) | load avg (1 min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case, s in r["single"].items():
        lines.append(f"| {case} | {s['requests']} | {s['p50_ms']} | {s['p99_ms']} | {s['inprocess_ms']} | "
                     f"{s['p50_ratio']} | {s.get('server_cpu_ms')}, {s.get('inprocess_cpu_ms')} ({s.get('cpu_ratio')}) | "
                     f"{s.get('load_average_1m', '')} |")
    lines += [
        "",
        "## Concurrent clients (zero-shot, titles), against the feed job (batch 64) on the same products",
        "",
        "| clients | batching | products/s | p50 ms | p99 ms | errors | server CPU ms/product | feed job products/s (before, after) | feed job CPU ms/product | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for clients in r["load"]["batching"]:
        feed = r["feed_job"][clients]
        for mode in ("batching", "no_batching"):
            level = r["load"][mode][clients]
            lines.append(f"| {clients} | {'on' if mode == 'batching' else 'off'} | {level['rps']} | "
                         f"{level['p50_ms']} | {level['p99_ms']} | {level['errors']} | "
                         f"{level.get('server_cpu_ms_per_product')} | "
                         f"{feed['products_per_s']} ({feed.get('before')}, {feed.get('after')}) | "
                         f"{feed.get('cpu_ms_per_product')} | {level['batch_ratio']} |")
    o, m = r["overload"], r["memory"]
    lines += [
        "",
        f"## Overload: a burst of {o['burst']} requests, queue of {o['max_queue']} (+ a batch of {o.get('max_batch', 64)})",
        "",
        f"{o['admitted']} admitted (p50 {o.get('admitted_p50_ms')} ms, p99 {o['admitted_p99_ms']} ms), "
        f"{o['refused_503']} answered 503 (p50 {o['refused_p50_ms']} ms, p99 {o['refused_p99_ms']} ms, "
        f"max {o['refused_max_ms']} ms), {o['other_errors']} other errors.",
        "",
        "## Memory and start",
        "",
        f"Server RSS {m['rss_mb_ready']} MB when ready, {m['rss_mb_after_1000']} MB after 1,000 "
        f"requests, {m['rss_mb_after_all']} MB after {m['requests']:,} (ratio {m['ratio']}, "
        f"{m['errors']} errors). Ready {r['ready_s']} s after the process started (warm cache).",
        "",
        "## Runs behind these figures",
        "",
        "| parts | commit | date | load average before -> after |",
        "|---|---|---|---|",
        *(f"| {', '.join(x['parts'])} | `{x['git_commit'][:8]}` | {x['date']} | "
          f"{x['load_average_before']} -> {x['load_average_after']} |" for x in r.get("runs", [])),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion-model", help="a fashion checkpoint for the title + image case")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="what to measure (zero_shot: single requests, load, ready time); "
                        "fewer than all update an existing results file")
    parser.add_argument("--requests", type=int, default=500, help="sequential requests per case")
    parser.add_argument("--load-requests", type=int, default=1000, help="requests per load level")
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--attempts", type=int, default=3, help="most tries of a disturbed load level")
    parser.add_argument("--disturbed", type=float, default=0.25,
                        help="a load level whose feed-job rates before and after differ by more "
                        "than this fraction is measured again")
    parser.add_argument("--memory-requests", type=int, default=10_000)
    parser.add_argument("--overload-queue", type=int, default=32)
    parser.add_argument("--overload-burst", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (server and in-process alike)")
    parser.add_argument("--out", default=str(RESULTS / "service_latency"), help="output stem")
    args = parser.parse_args(argv)
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
