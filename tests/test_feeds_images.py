"""Image loading: every bad image or URL becomes a warning, never an exception."""

from __future__ import annotations

import io
import struct
import threading
import time
import warnings
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from multimodal_cat.feeds.images import ImageLoader


def _png(size=(40, 30), color=(200, 20, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(size=(64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 50).convert("RGB").save(buffer, format="JPEG")
    return buffer.getvalue()


def _bomb_png(width=100_000, height=100_000) -> bytes:
    """A PNG header claiming huge dimensions (no pixel data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class _Handler(BaseHTTPRequestHandler):
    flaky_hits = 0

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, body: bytes, content_type="image/png", length=True):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/good.png":
            self._send(_png())
        elif self.path == "/slow.png":
            time.sleep(1.0)
            self._send(_png())
        elif self.path == "/big.png":
            self._send(b"\0" * 300_000)
        elif self.path == "/big-unsized.png":
            self._send(b"\0" * 300_000, length=False)
            self.close_connection = True
        elif self.path == "/redirect-good":
            self.send_response(302)
            self.send_header("Location", "/good.png")
            self.end_headers()
        elif self.path == "/redirect-ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/secret.png")
            self.end_headers()
        elif self.path == "/page.html":
            self._send(b"<html>not an image</html>", "text/html")
        elif self.path == "/flaky.png":
            type(self).flaky_hits += 1
            if type(self).flaky_hits == 1:
                self.send_error(503)
            else:
                self._send(_png())
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def loader(tmp_path):
    return ImageLoader(
        tmp_path, timeout=0.3, max_bytes=100_000, retries=1, max_side=32, allow_private_hosts=True
    )


def test_local_image_loads_and_is_shrunk(tmp_path, loader):
    (tmp_path / "a.png").write_bytes(_png((80, 40)))
    image, warning = loader.load("a.png")
    assert warning is None and image.mode == "RGB" and image.size == (32, 16)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file"),
        (b"this is plain text, not a picture", "not an image"),
        (_png()[:60], "corrupt"),
        (_jpeg()[:1200], "truncated"),
        (_bomb_png(), "decompression bomb"),
    ],
    ids=["empty", "text", "corrupt-png", "truncated-jpeg", "bomb-header"],
)
def test_bad_local_files_become_warnings(tmp_path, loader, content, expected):
    (tmp_path / "bad.img").write_bytes(content)
    image, warning = loader.load("bad.img")
    assert image is None
    assert warning.startswith("image bad.img: ") and expected in warning


def test_pixel_limit_on_a_real_image(tmp_path):
    (tmp_path / "wide.png").write_bytes(_png((400, 300)))
    image, warning = ImageLoader(tmp_path, max_pixels=10_000).load("wide.png")
    assert image is None and "400x300 pixels, more than the 10,000 allowed" in warning


def test_pil_global_state_untouched(tmp_path, loader):
    before = (Image.MAX_IMAGE_PIXELS, list(warnings.filters))
    # 4e8 pixels: PIL only warns (no error), so the loader must catch the warning itself
    (tmp_path / "bomb.png").write_bytes(_bomb_png(20_000, 20_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a leaked DecompressionBombWarning would fail here
        image, warning = loader.load("bomb.png")
    assert image is None and "decompression bomb" in warning
    assert (Image.MAX_IMAGE_PIXELS, list(warnings.filters)) == before


def test_missing_file_and_folder(tmp_path, loader):
    assert loader.load("absent.png") == (None, "image absent.png: file not found")
    (tmp_path / "dir").mkdir()
    assert "folder" in loader.load("dir")[1]


def test_oversize_local_file(tmp_path, loader):
    (tmp_path / "big.png").write_bytes(b"\0" * 200_000)
    assert "more than the 100,000 allowed" in loader.load("big.png")[1]


def test_http_good_and_concurrent(server, loader):
    futures = [loader.submit(f"{server}/good.png") for _ in range(6)]
    results = [f.result() for f in futures]
    loader.close()
    assert all(image is not None and warning is None for image, warning in results)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/missing.png", "HTTP 404"),
        ("/slow.png", "longer than 0.3 s (deadline) (after 2 attempts)"),
        ("/big.png", "download is 300,000 bytes"),
        ("/big-unsized.png", "exceeds the 100,000 bytes allowed"),
        ("/page.html", "not an image"),
        ("/redirect-ftp", "redirect to a refused URL scheme 'ftp'"),
    ],
)
def test_http_failures_become_warnings(server, loader, path, expected):
    image, warning = loader.load(f"{server}{path}")
    assert image is None and expected in warning


def test_http_redirect_followed(server, loader):
    image, warning = loader.load(f"{server}/redirect-good")
    assert warning is None and image is not None


def test_http_retry_after_503(server, loader):
    image, warning = loader.load(f"{server}/flaky.png")
    assert warning is None and image is not None


def test_other_schemes_refused_unless_allowed(tmp_path, loader):
    (tmp_path / "a.png").write_bytes(_png())
    url = (tmp_path / "a.png").as_uri()
    assert "--allow-scheme file" in loader.load(url)[1]
    assert "URL scheme 'ftp' refused" in loader.load("ftp://example.com/a.png")[1]
    image, warning = ImageLoader(tmp_path, allow_schemes={"file"}).load(url)
    assert warning is None and image is not None
