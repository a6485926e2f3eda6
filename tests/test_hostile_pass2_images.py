"""Hostile pass two, images: every URL scheme goes through the address guard BEFORE connecting,
the deadline holds for FTP too, image options are validated, and `data:` URLs are not cut at the
image column's 4,096 characters (issue 22, items 12 and 14, small items).

Servers listen on 127.0.0.1 only; every wait is bounded; nothing here measures elapsed time.
"""

from __future__ import annotations

import base64
import io
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

from multimodal_cat.cli.main import main
from multimodal_cat.feeds.columns import ColumnMap, row_to_product
from multimodal_cat.feeds.images import ImageLoader, ImageOptionError


def _png(size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 20, 20)).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeFTP:
    """A minimal FTP server on 127.0.0.1: records connections and commands, answers each after `delay`."""

    def __init__(self, delay: float = 0.0, payload: bytes = b"") -> None:
        self.delay, self.payload = delay, payload
        self.connections, self.lines = 0, []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self.server.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        def say(text: str) -> None:
            time.sleep(self.delay)
            conn.sendall(text.encode() + b"\r\n")

        data = None
        try:
            say("220 hello")
            for raw in conn.makefile("rb"):
                line = raw.decode().strip()
                self.lines.append(line)
                command = line.split(" ")[0].upper()
                if command == "PASV":
                    data = socket.create_server(("127.0.0.1", 0))
                    port = data.getsockname()[1]
                    say(f"227 Entering Passive Mode (127,0,0,1,{port // 256},{port % 256})")
                elif command == "RETR":
                    say("150 sending")
                    client, _ = data.accept()
                    client.sendall(self.payload)
                    client.close()
                    say("226 done")
                else:
                    say({"USER": "331 password", "PASS": "230 in", "TYPE": "200 ok",
                         "CWD": "250 ok", "QUIT": "221 bye"}.get(command, "502 no"))
        except OSError:
            pass
        finally:
            conn.close()


@pytest.fixture
def listener():
    server = socket.create_server(("127.0.0.1", 0), backlog=8)
    server.setblocking(False)
    yield server
    server.close()


def test_loopback_http_is_refused_before_any_handshake(listener):
    port = listener.getsockname()[1]
    image, warning = ImageLoader(retries=0).load(f"http://127.0.0.1:{port}/a.png")
    assert image is None and "address 127.0.0.1 refused" in warning
    with pytest.raises(BlockingIOError):  # nothing ever connected
        listener.accept()


def test_an_open_port_reads_the_same_as_a_closed_one(listener):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed = probe.getsockname()[1]
    loader = ImageLoader(retries=0)
    _, on_open = loader.load(f"http://127.0.0.1:{listener.getsockname()[1]}/a.png")
    _, on_closed = loader.load(f"http://127.0.0.1:{closed}/a.png")
    assert on_open.split(": ", 1)[1] == on_closed.split(": ", 1)[1]


def test_ftp_goes_through_the_address_guard():
    server = FakeFTP(payload=_png())
    try:
        url = f"ftp://127.0.0.1:{server.port}/a.png"
        image, warning = ImageLoader(allow_schemes={"ftp"}, retries=0).load(url)
        assert image is None and "address 127.0.0.1 refused" in warning
        assert server.connections == 0 and server.lines == []  # no USER / PASS / RETR sent
        image, warning = ImageLoader(allow_schemes={"ftp"}, retries=0, allow_private_hosts=True).load(url)
        assert warning is None and image.size == (40, 30)
    finally:
        server.close()


def test_ftp_download_is_cut_at_the_deadline():
    server = FakeFTP(delay=0.3, payload=_png())  # each answer in time, the whole far too slow
    try:
        loader = ImageLoader(allow_schemes={"ftp"}, retries=0, allow_private_hosts=True, timeout=0.8)
        image, warning = loader.load(f"ftp://127.0.0.1:{server.port}/a.png")
        assert image is None and "longer than 0.8 s (deadline)" in warning
        assert not any(line.startswith("RETR") for line in server.lines)  # cut mid-dialogue
    finally:
        server.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": -1}, "--image-timeout"),
        ({"timeout": 0}, "--image-timeout"),
        ({"retries": -1}, "--image-retries"),
        ({"max_bytes": -1}, "--max-image-bytes"),
        ({"max_pixels": 0}, "--max-image-pixels"),
        ({"workers": 0}, "--image-workers"),
        ({"allow_schemes": {"gopher"}}, "--allow-scheme"),
    ],
)
def test_image_options_are_validated(options, message):
    with pytest.raises(ImageOptionError, match=message):
        ImageLoader(**options)


@pytest.mark.parametrize(
    "flags",
    [["--image-timeout", "-1"], ["--image-retries", "-1"], ["--max-image-bytes", "-1"],
     ["--max-image-pixels", "0"], ["--image-workers", "0"], ["--allow-scheme", "gopher"]],
)
def test_cli_refuses_bad_image_options_before_the_job(tmp_path, capsys, flags):
    feed = tmp_path / "small.csv"
    feed.write_text("id,title\n1,Blue shirt\n2,Mug\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["categorize", str(feed), "--dry-run", "--no-progress", "-o", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert flags[0] in err and "Traceback" not in err and "--resume" not in err
    assert not out.exists()


def test_data_url_images_are_not_cut_at_the_column_cap(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")  # about 360 KB: no compression for noise
    png = buffer.getvalue()
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    assert len(url) > 4_096
    product = row_to_product({"title": "Mug", "image": url}, ColumnMap().resolve(["title", "image"]), 1)
    assert product.image_ref == url and product.extra["warnings"] == []
    image, warning = ImageLoader().load(product.image_ref)
    assert warning is None and image.size == (400, 300)


def test_an_over_long_plain_image_reference_is_still_cut():
    columns = ColumnMap().resolve(["title", "image"])
    product = row_to_product({"title": "Mug", "image": "http://x/" + "a" * 5_000}, columns, 1)
    assert len(product.image_ref) == 4_096 and "image truncated" in product.extra["warnings"][0]


def test_a_data_url_over_the_20_mb_cap_is_dropped_with_a_warning():
    columns = ColumnMap().resolve(["title", "image"])
    url = "data:image/png;base64," + "A" * 28_000_000
    product = row_to_product({"title": "Mug", "image": url}, columns, 1)
    assert product.image_ref == "" and "over the" in product.extra["warnings"][0]
