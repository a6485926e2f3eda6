"""The HTTP service end to end: a real uvicorn server on 127.0.0.1, a fake predictor.

Every endpoint, each limit answered with a clear 4xx while the server keeps serving, micro-
batching, the bounded queue, deadlines, graceful shutdown, and the same row as the feed job.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import struct
import threading
import time
import zlib
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from PIL import Image  # noqa: E402

from multimodal_cat.feeds import categorize_feed, read_output  # noqa: E402
from multimodal_cat.feeds.images import ImageLoader  # noqa: E402
from multimodal_cat.feeds.rows import OutputRows  # noqa: E402
from multimodal_cat.mapping.apply import CategoryMapper  # noqa: E402
from multimodal_cat.serving.app import create_app  # noqa: E402
from multimodal_cat.serving.server import running  # noqa: E402
from multimodal_cat.serving.service import Engine, Service  # noqa: E402
from multimodal_cat.serving.settings import ServeSettings  # noqa: E402

GOOD = {"id": "sku-1", "title": "Running shorts"}


def _png(size=(40, 30), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def _bomb_png(width=20_000, height=20_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@contextmanager
def served(predictor, *, mapper=None, names=(), images=None, load=None, catalog=None, **settings):
    """A running service over ``predictor``; yields ``(client, service)``."""

    def engine():
        if load is not None:
            load()
        return Engine(OutputRows(predictor, mapper, names), predictor.taxonomy, "fake-1")

    service = Service(engine, ServeSettings(**settings), images, catalog)
    with running(create_app(service)) as url, httpx.Client(base_url=url, timeout=30) as client:
        if load is None:
            _wait_ready(client)
        yield client, service


def _wait_ready(client: httpx.Client) -> None:
    for _ in range(500):
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.01)
    raise AssertionError("the service never became ready")


def _still_serving(client: httpx.Client) -> None:
    answer = client.post("/v1/categorize", json=GOOD)
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


class _Gate:
    """A predictor wrapper that blocks each batch until released."""

    def __init__(self, inner):
        self.inner, self.taxonomy = inner, inner.taxonomy
        self.entered, self.release = threading.Event(), threading.Event()

    def predict(self, products, **kwargs):
        self.entered.set()
        self.release.wait(30)
        return self.inner.predict(products, **kwargs)


def test_one_product_answers_the_feed_jobs_row(fake_predictor, tmp_path):
    shopify = fake_predictor().taxonomy
    mapper = CategoryMapper.to_targets(shopify, ["google"])
    with served(fake_predictor(), mapper=mapper, names=["google"]) as (client, _):
        answer = client.post("/v1/categorize", json={**GOOD, "brand": "Acme"})
    assert answer.status_code == 200
    row = answer.json()
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps({**GOOD, "brand": "Acme"}) + "\n")
    categorize_feed(feed, fake_predictor(), tmp_path / "out.jsonl", mapper=mapper, map_to=["google"], progress=False)
    (expected,) = read_output(tmp_path / "out.jsonl")
    assert row == expected
    assert row["category_path"] == "Apparel & Accessories > Clothing > Activewear"
    assert row["google_category_path"]  # mapped into Google's tree


def test_a_list_gets_a_list_of_rows_in_order(fake_predictor):
    products = [{"id": str(n), "title": f"Shirt {n}"} for n in range(5)]
    with served(fake_predictor()) as (client, _):
        rows = client.post("/v1/categorize", json=products).json()
        wrapped = client.post("/v1/categorize", json={"products": products[:2]}).json()
    assert [r["id"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert [r["row"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["id"] for r in wrapped] == ["0", "1"]


def test_images_as_multipart_upload_base64_and_data_url(fake_predictor):
    predictor = fake_predictor()
    png = _png()
    with served(predictor) as (client, _):
        upload = client.post("/v1/categorize", data={"title": "Mug"}, files={"image": ("mug.png", png, "image/png")})
        encoded = client.post("/v1/categorize", json={"title": "Mug", "image_base64": base64.b64encode(png).decode()})
        url = client.post("/v1/categorize", json={"image": "data:image/png;base64," + base64.b64encode(png).decode()})
    assert [a.status_code for a in (upload, encoded, url)] == [200, 200, 200]
    assert predictor.saw_images == [True, True, True]
    assert {a.json()["status"] for a in (upload, encoded, url)} == {"ok"}


def test_health_ready_metrics_docs_and_page(fake_predictor):
    loading = threading.Event()
    with served(fake_predictor(), load=lambda: loading.wait(30)) as (client, _):
        assert client.get("/healthz").json() == {"status": "ok"}
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503 and not_ready.json()["ready"] is False
        early = client.post("/v1/categorize", json=GOOD)
        assert early.status_code == 503 and "loading" in early.json()["detail"]
        assert early.headers["Retry-After"] == "1"
        loading.set()
        _wait_ready(client)
        ready = client.get("/readyz").json()
        assert ready["ready"] is True and ready["model"] == "fake-1" and ready["taxonomy"]
        client.post("/v1/categorize", json=GOOD)
        metrics = client.get("/metrics").text
        assert 'multimodal_cat_requests_total{route="/v1/categorize",status="200"} 1.0' in metrics
        assert "multimodal_cat_batch_size_count 1.0" in metrics
        assert "multimodal_cat_queue_depth 0.0" in metrics
        assert 'multimodal_cat_errors_total{reason="503"} 1.0' in metrics
        assert 'multimodal_cat_products_total{status="ok"} 1.0' in metrics
        assert "/v1/categorize" in client.get("/openapi.json").json()["paths"]
        assert client.get("/docs").status_code == 200
        page = client.get("/")
        assert page.status_code == 200 and 'id="title"' in page.text


def test_concurrent_requests_share_a_batch(fake_predictor):
    predictor = fake_predictor()
    gate = _Gate(predictor)
    with served(gate, max_batch=8, window_ms=50) as (client, _):
        results: list[int] = []

        def one(n: int) -> None:
            results.append(client.post("/v1/categorize", json={"title": f"Shirt {n}"}).status_code)

        first = threading.Thread(target=one, args=(0,))
        first.start()
        assert gate.entered.wait(10)  # batch 1 (one product) is in the model...
        others = [threading.Thread(target=one, args=(n,)) for n in range(1, 7)]
        for thread in others:
            thread.start()
        _wait_until(lambda: client.get("/metrics").text.count("multimodal_cat_queue_depth 6.0") == 1)
        gate.release.set()  # ...the six that queued meanwhile form batch 2
        for thread in [first, *others]:
            thread.join(30)
    assert results == [200] * 7
    assert predictor.batches == [1, 6]


def test_without_batching_each_product_is_its_own_call(fake_predictor):
    predictor = fake_predictor()
    with served(predictor, max_batch=1) as (client, _):
        threads = [threading.Thread(target=client.post, args=("/v1/categorize",), kwargs={"json": GOOD}) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert predictor.batches == [1, 1, 1, 1]


def test_a_full_queue_answers_503_with_retry_after(fake_predictor):
    gate = _Gate(fake_predictor())
    with served(gate, max_batch=1, max_queue=2) as (client, _):
        answers: list[int] = []
        threads = [
            threading.Thread(target=lambda: answers.append(client.post("/v1/categorize", json=GOOD).status_code))
            for _ in range(3)
        ]
        threads[0].start()  # one in the model first (a request at the door before it would be refused)
        assert gate.entered.wait(10)
        for thread in threads[1:]:  # two queued: the queue is full
            thread.start()
        _wait_until(lambda: "multimodal_cat_queue_depth 2.0" in client.get("/metrics").text)
        refused = client.post("/v1/categorize", json=GOOD)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert "queue is full" in refused.json()["detail"]
        gate.release.set()
        for thread in threads:
            thread.join(30)
        assert answers == [200, 200, 200]
        _still_serving(client)


def test_a_request_past_its_deadline_is_504_and_the_next_one_is_served(fake_predictor):
    gate = _Gate(fake_predictor())
    with served(gate, request_timeout=0.5) as (client, _):
        late = client.post("/v1/categorize", json=GOOD)
        assert late.status_code == 504 and "0.5 s" in late.json()["detail"]
        gate.release.set()
        _still_serving(client)


@pytest.fixture(scope="module")
def image_server():
    """Serves /good.png, /bomb.png (header claims 400M pixels) and /slow.png (2 s late)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/slow.png":
                time.sleep(2.0)
            body = _bomb_png() if self.path == "/bomb.png" else _png()
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError):  # the service gave up on /slow.png first
                self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_limits_answer_a_clear_4xx_and_the_server_keeps_serving(fake_predictor, image_server):
    key = "s3cret-key"
    with served(fake_predictor(), api_key=key, max_body_bytes=50_000, max_products=3) as (client, _):
        client.headers["X-API-Key"] = key
        cases = {
            "oversize body": (client.post("/v1/categorize", json={"title": "x" * 100, "description": "y" * 60_000}), 413, "more than the 50,000 allowed"),
            "bad JSON": (client.post("/v1/categorize", content=b'{"title": "boots",', headers={"Content-Type": "application/json"}), 400, "not valid JSON"),
            "missing fields": (client.post("/v1/categorize", json={"sku": "1", "colour": "red"}), 422, "expected a title, description, brand or image; found colour, sku"),
            "wrong type": (client.post("/v1/categorize", json={"title": 42}), 422, "expected title to be a string"),
            "too many products": (client.post("/v1/categorize", json=[GOOD] * 4), 422, "at most 3 products"),
            "empty list": (client.post("/v1/categorize", json=[]), 422, "at least one product"),
            "a local path": (client.post("/v1/categorize", json={"title": "x", "image": "/etc/passwd"}), 422, "http(s) or data: URL"),
            "private address": (client.post("/v1/categorize", json={"title": "x", "image": image_server + "/good.png"}), 422, "address 127.0.0.1 refused"),
            "content type": (client.post("/v1/categorize", content=b"title=x", headers={"Content-Type": "text/plain"}), 415, "application/json"),
            "bad option": (client.post("/v1/categorize?on_image_error=maybe", json=GOOD), 422, "on_image_error"),
            "not base64": (client.post("/v1/categorize", json={"title": "x", "image_base64": "%%%"}), 422, "not valid base64"),
            "wrong API key": (client.post("/v1/categorize", json=GOOD, headers={"X-API-Key": "nope"}), 401, "API key is wrong"),
            "no API key": (httpx.post(str(client.base_url) + "/v1/categorize", json=GOOD), 401, "needs an API key"),
        }
        for name, (answer, status, words) in cases.items():
            assert answer.status_code == status, (name, answer.text)
            assert words in answer.json()["detail"], (name, answer.json())
            _still_serving(client)
        bearer = httpx.post(str(client.base_url) + "/v1/categorize", json=GOOD, headers={"Authorization": f"Bearer {key}"})
        assert bearer.status_code == 200


def test_pixel_bombs_and_slow_urls_are_refused(fake_predictor, image_server):
    images = ImageLoader(None, timeout=0.5, retries=0, max_pixels=1_000_000, allow_private_hosts=True)
    with served(fake_predictor(), images=images) as (client, _):
        bomb = client.post("/v1/categorize", json={"title": "x", "image": image_server + "/bomb.png"})
        assert bomb.status_code == 422 and "decompression bomb" in bomb.json()["detail"]
        uploaded = client.post("/v1/categorize", data={"title": "x"}, files={"image": ("b.png", _bomb_png(), "image/png")})
        assert uploaded.status_code == 422 and "decompression bomb" in uploaded.json()["detail"]
        slow = client.post("/v1/categorize", json={"title": "x", "image": image_server + "/slow.png"})
        assert slow.status_code == 422 and "longer than 0.5 s" in slow.json()["detail"]
        good = client.post("/v1/categorize", json={"title": "x", "image": image_server + "/good.png"})
        assert good.status_code == 200 and good.json()["status"] == "ok"


def test_degrade_mode_categorizes_from_the_text_as_the_feed_job_does(fake_predictor, image_server):
    with served(fake_predictor()) as (client, _):
        answer = client.post("/v1/categorize?on_image_error=degrade", json={"title": "x", "image": image_server + "/good.png"})
    row = answer.json()
    assert answer.status_code == 200 and row["status"] == "degraded"
    assert "refused" in row["warnings"][0] and row["warnings"][0].endswith("predicted from text only")


def test_shutdown_finishes_in_flight_requests(fake_predictor):
    gate = _Gate(fake_predictor())
    service = Service(lambda: Engine(OutputRows(gate), gate.taxonomy, "fake"), ServeSettings())
    answers: list[httpx.Response] = []
    with running(create_app(service)) as url:
        _wait_ready(httpx.Client(base_url=url))
        thread = threading.Thread(target=lambda: answers.append(httpx.post(url + "/v1/categorize", json=GOOD, timeout=30)))
        thread.start()
        assert gate.entered.wait(10)
        threading.Timer(0.3, gate.release.set).start()
    # leaving `running` shut the server down while the request was in the model
    thread.join(30)
    assert answers and answers[0].status_code == 200 and answers[0].json()["status"] == "ok"


def _wait_until(condition, seconds: float = 10.0) -> None:
    stop = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > stop:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_similar_products_from_a_loaded_catalog_index(fake_predictor, tmp_path):
    """/v1/similar answers from the index loaded beside the model; bad queries are 4xx."""
    from multimodal_cat.catalog import build_index
    from multimodal_cat.catalog.embed import CatalogEncoders
    from multimodal_cat.encoders import EmbeddingCache
    from tests.catalog_helpers import ColourEncoder, WordsEncoder

    words = WordsEncoder()
    words.max_length = 64  # recorded in the index's encoder specs
    encoders = CatalogEncoders(words, ColourEncoder(), cache=EmbeddingCache(tmp_path / "c"))
    products = [{"id": "b1", "title": "red leather boots", "kind": "Apparel > Shoes"},
                {"id": "s1", "title": "blue linen shirt", "kind": "Apparel > Shirts"},
                {"id": "m1", "title": "black ceramic mug", "kind": "Home > Mugs"}]
    index = build_index(products, encoders, category="kind").index
    with served(fake_predictor(), catalog=lambda: (index, encoders)) as (client, _):
        found = client.post("/v1/similar", json={"title": "red boots", "k": 2})
        assert found.status_code == 200 and found.json()[0]["id"] == "b1"
        within = client.post("/v1/similar", json={"id": "b1", "k": 2, "within": "Apparel"}).json()
        assert [hit["id"] for hit in within] == ["s1"]  # the query itself is left out
        assert client.post("/v1/similar", json={"k": 2}).status_code == 422  # nothing to search by
        assert client.post("/v1/similar", json={"title": "x", "within": "Garden"}).status_code == 422
        assert client.post("/v1/similar", json={"title": "x", "k": 0}).status_code == 422
        assert client.post("/v1/similar", content=b"{oops").status_code == 400
        _still_serving(client)


def test_similar_without_an_index_is_404(fake_predictor):
    with served(fake_predictor()) as (client, _):
        answer = client.post("/v1/similar", json={"title": "red boots"})
        assert answer.status_code == 404 and "--index" in answer.json()["detail"]


def test_a_lone_request_is_not_held_for_the_batching_window(fake_predictor):
    """A minute-long window: a request with nobody else on the way goes to the model at once
    (before the fix it waited the window out and got 504 after the 10 s request timeout)."""
    predictor = fake_predictor()
    with served(predictor, window_ms=60_000) as (client, _):
        for n in range(3):
            answer = client.post("/v1/categorize", json={"title": f"Shirt {n}"})
            assert answer.status_code == 200 and answer.json()["status"] == "ok"
    assert predictor.batches == [1, 1, 1]


def test_a_full_service_answers_503_before_reading_the_body(fake_predictor):
    """Admission is the first thing a request meets, and it counts every request in progress,
    not only queued products: two requests still sending their bodies fill a queue of 2
    (before the fix, whose check read the batch queue alone, a third was let in), and the
    third, whose body never comes either, is answered 503 at once."""
    import socket
    from urllib.parse import urlsplit

    partial = (
        b"POST /v1/categorize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{not json"  # 9 of the 1000 bytes promised
    )
    with served(fake_predictor(), max_queue=2) as (client, service):
        where = urlsplit(str(client.base_url))
        sockets = [socket.create_connection((where.hostname, where.port), timeout=20) for _ in range(3)]
        try:
            for sock in sockets[:2]:
                sock.sendall(partial)
            _wait_until(lambda: service.door.inside == 2)
            sockets[2].sendall(partial)
            head = sockets[2].recv(4096).decode()
        finally:
            for sock in sockets:
                sock.close()
        assert head.startswith("HTTP/1.1 503") and "retry-after: 1" in head.lower()
        assert "queue is full (2 requests waiting, at most 2)" in head
        _wait_until(lambda: service.door.inside == 0)
        metrics = client.get("/metrics").text
        assert 'multimodal_cat_requests_total{route="/v1/categorize",status="503"} 1.0' in metrics
        _still_serving(client)


def test_freed_memory_goes_back_to_the_os_every_so_many_products(fake_predictor, monkeypatch):
    """A long-running service trims the heap as the feed job does (its RSS crept up without)."""
    from multimodal_cat.serving import service as service_module

    trims: list[int] = []
    monkeypatch.setattr(service_module, "TRIM_EVERY_PRODUCTS", 5)
    monkeypatch.setattr(service_module, "release_freed_memory", lambda: trims.append(1) or True)
    with served(fake_predictor()) as (client, _):
        for n in range(4):  # 4 + 4 + 4 products: a trim after the 2nd and after the 3rd request
            answer = client.post("/v1/categorize", json=[{"title": f"Shirt {n}-{k}"} for k in range(4)])
            assert answer.status_code == 200
            assert len(trims) == [0, 1, 1, 2][n]


def test_in_a_burst_refusals_go_out_before_admitted_requests_are_read(fake_predictor):
    """Two requests arrive together at a door with room for one: the refused one's 503 is
    sent before the admitted one's body is even read (it used to wait behind that parsing)."""
    import asyncio

    predictor = fake_predictor()
    service = Service(lambda: Engine(OutputRows(predictor), predictor.taxonomy, "fake"), ServeSettings(max_queue=1))
    app = create_app(service)
    events: list[str] = []

    def scope() -> dict:
        return {"type": "http", "method": "POST", "path": "/v1/categorize", "raw_path": b"/v1/categorize",
                "query_string": b"", "headers": [(b"content-type", b"application/json")],
                "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
                "root_path": "", "state": {}}

    async def receive() -> dict:
        events.append("admitted: body read")
        return {"type": "http.request", "body": json.dumps(GOOD).encode(), "more_body": False}

    def sender(name: str):
        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                events.append(f"{name}: {message['status']}")
        return send

    async def main() -> None:
        await service.start()
        while service.engine is None:
            await asyncio.sleep(0.01)
        await asyncio.gather(app(scope(), receive, sender("admitted")), app(scope(), receive, sender("refused")))
        await service.stop()

    asyncio.run(main())
    assert events == ["refused: 503", "admitted: body read", "admitted: 200"]


def test_a_text_only_model_fetches_no_photo_and_refuses_no_product_for_one(image_server):
    from multimodal_cat.predictors.zero_shot import NO_TEXT, ZeroShotCategorizer
    from multimodal_cat.taxonomy import Taxonomy
    from tests.test_align_engine import BagOfWordsEncoder

    tree = Taxonomy.from_paths(["Apparel > Shirts", "Footwear > Shoes"])
    text_only = ZeroShotCategorizer(tree, BagOfWordsEncoder(), cache=False, tags=False)
    with served(text_only) as (client, _):
        refused_photo = {"title": "red shirt", "image": image_server + "/good.png"}  # a private address
        answer = client.post("/v1/categorize?on_image_error=reject", json=refused_photo)
        assert answer.status_code == 200 and answer.json()["status"] == "ok"
        alone = client.post("/v1/categorize", json={"image": image_server + "/good.png"})
        assert alone.status_code == 200
        assert (alone.json()["status"], alone.json()["error"]) == ("error", NO_TEXT)
