"""Hostile images and servers: each becomes a plain warning (or a correct image), never a hang.

Servers listen on 127.0.0.1 only; every wait is bounded; nothing here measures elapsed time.
"""

from __future__ import annotations

import base64
import io
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import multimodal_cat
import multimodal_cat.feeds.images as images_module
from multimodal_cat.feeds.images import ImageLoader


def decode_image(data: bytes, max_side: int = 512):
    return ImageLoader(max_side=max_side).decode(data)


def _png(size=(40, 30), color=(200, 20, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


# --- decoding --------------------------------------------------------------------------------
def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a portrait photo stored sideways
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    assert decode_image(buffer.getvalue()).size == (20, 40)


def test_16_bit_png_keeps_its_grey_levels():
    array = np.full((8, 8), 32768, dtype=np.uint16)
    array[0, 0] = 0
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    image = decode_image(buffer.getvalue())
    assert image.mode == "RGB" and image.getpixel((1, 1)) == (127, 127, 127)
    assert image.getpixel((0, 0)) == (0, 0, 0)


def test_no_file_content_in_warnings(tmp_path):
    (tmp_path / "x.ppm").write_bytes(b"P6\nSECRETTOKEN")  # PIL quotes the "token" it read
    (tmp_path / "y.ppm").write_bytes(b"P5 abcdefgh 12")  # ... and the "number" it could not parse
    for name in ("x.ppm", "y.ppm"):
        image, warning = ImageLoader(tmp_path).load(name)
        assert image is None and "corrupt" in warning
        assert "SECRET" not in warning and "abcdefgh" not in warning


def test_large_images_are_reduced_right_after_decoding(monkeypatch):
    calls = []
    original = Image.Image.reduce
    monkeypatch.setattr(Image.Image, "reduce", lambda self, f, *a: calls.append(f) or original(self, f, *a))
    image = decode_image(_png((3000, 1500)), max_side=100)
    assert image.size == (100, 50) and calls == [30]


def test_data_urls(tmp_path):
    loader = ImageLoader(tmp_path, max_bytes=10_000)
    url = "data:image/png;base64," + base64.b64encode(_png()).decode()
    image, warning = loader.load(url)
    assert warning is None and image.size == (40, 30)
    big = "data:image/png;base64," + "A" * 20_000
    assert "more than the 10,000 bytes" in loader.load(big)[1]
    assert "not valid base64" in loader.load("data:image/png;base64,abc$")[1]
    assert "without a ','" in loader.load("data:image/png;base64")[1]


# --- one opener everywhere -------------------------------------------------------------------
def test_only_the_imaging_module_opens_images():
    package = Path(multimodal_cat.__file__).parent
    openers = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "Image.open(" in path.read_text(encoding="utf-8")
    ]
    assert openers == ["imaging.py"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_training_and_processor_openers_share_the_caps(tmp_path):
    from multimodal_cat.imaging import open_image, try_open_image
    from multimodal_cat.modeling.processing import _image

    os.mkfifo(tmp_path / "fifo.png")
    array = np.full((4, 4), 65535, dtype=np.uint16)
    Image.fromarray(array).save(tmp_path / "deep.png")
    assert try_open_image(str(tmp_path / "fifo.png")) is None  # refused at once, no hang
    assert _image({"image_ref": str(tmp_path / "fifo.png")}) is None
    assert _image({"image_ref": str(tmp_path / "deep.png")}).getpixel((0, 0)) == (255, 255, 255)
    assert try_open_image("/dev/zero") is None
    with pytest.raises(Exception, match="character device"):
        open_image("/dev/zero")


# --- network ---------------------------------------------------------------------------------
class _Drip(BaseHTTPRequestHandler):
    total = 200
    sent: list[int] = []
    stop = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/to-other":
            self.send_response(302)
            port = self.server.server_address[1]
            self.send_header("Location", f"http://127.0.0.2:{port}/good.png")
            self.end_headers()
            return
        if self.path == "/good.png":
            body = _png()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(self.total))
        self.end_headers()
        count = 0
        try:
            for _ in range(self.total):  # one byte every 50 ms: 10 s in all, if nobody hangs up
                if self.stop.wait(0.05):
                    break
                self.wfile.write(b"x")
                self.wfile.flush()
                count += 1
        except OSError:
            pass
        finally:
            type(self).sent.append(count)


@pytest.fixture(scope="module")
def drip_server():
    httpd = ThreadingHTTPServer(("0.0.0.0" if _has_127_0_0_2() else "127.0.0.1", 0), _Drip)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    _Drip.stop.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _has_127_0_0_2() -> bool:
    import socket

    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False


def test_slow_drip_download_is_abandoned_at_the_deadline(drip_server):
    loader = ImageLoader(timeout=0.5, retries=0, allow_private_hosts=True)
    image, warning = loader.load(f"http://127.0.0.1:{drip_server}/drip")
    assert image is None and "longer than 0.5 s (deadline)" in warning
    for _ in range(100):  # the server notices the hang-up at its next write
        if _Drip.sent:
            break
        _Drip.stop.wait(0.05)
    assert _Drip.sent and _Drip.sent[-1] < _Drip.total  # abandoned, not read to the end


def test_loopback_refused_unless_allowed(drip_server):
    image, warning = ImageLoader().load(f"http://127.0.0.1:{drip_server}/good.png")
    assert image is None and "address 127.0.0.1 refused" in warning
    assert "--allow-private-hosts" in warning
    image, warning = ImageLoader(allow_private_hosts=True).load(
        f"http://127.0.0.1:{drip_server}/good.png"
    )
    assert warning is None and image is not None


@pytest.mark.skipif(not _has_127_0_0_2(), reason="needs 127.0.0.2 on the loopback interface")
def test_redirect_is_checked_against_the_address_rules(drip_server, monkeypatch):
    # Treat 127.0.0.1 as if it were a public origin: the redirect to 127.0.0.2 must be refused.
    monkeypatch.setattr(images_module, "_address_allowed", lambda a, private: str(a) == "127.0.0.1")
    image, warning = ImageLoader().load(f"http://127.0.0.1:{drip_server}/to-other")
    assert image is None and "address 127.0.0.2 refused" in warning
