"""Load product images from local paths or http(s) URLs, safely.

Every failure (missing file, 404, timeout, oversize download, corrupt or truncated file,
decompression bomb, content that is not an image, refused URL scheme) becomes a plain-words
warning instead of an exception, so one bad image never stops a feed. PIL's global settings
are left alone: the pixel limit is checked per image against :attr:`ImageLoader.max_pixels`.

Example:
    >>> loader = ImageLoader(root="examples")
    >>> image, warning = loader.load("images/red-mug.png")  # doctest: +SKIP
    >>> image.size, warning  # doctest: +SKIP
    ((96, 96), None)
"""

from __future__ import annotations

import http.client
import io
import random
import threading
import time
import urllib.error
import urllib.request
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

from PIL import Image

from multimodal_cat.errors import MultimodalCatError

USER_AGENT = "multimodal-cat/0.1 (+product feed categorizer)"
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
# Image.open parses headers only; the lock keeps catch_warnings() from racing between our threads.
_OPEN_LOCK = threading.Lock()


class ImageLoadError(MultimodalCatError):
    """Why one image could not be used (message in plain words)."""


class ImageLoader:
    """Fetch and decode images with limits; safe to call from many threads.

    Args:
        root: Folder that relative paths are resolved against (usually the feed's folder).
        allow_schemes: URL schemes allowed besides http and https, e.g. ``{"file"}``.
        timeout: Seconds allowed for one whole download (connect + read).
        max_bytes: Largest download or file accepted, in bytes.
        max_pixels: Largest image accepted (width x height); larger ones are refused as
            possible decompression bombs.
        max_side: Decoded images are shrunk so their longest side is at most this (memory).
        retries: Extra attempts for timeouts, connection errors and 408/429/5xx answers.
        workers: Threads used by :meth:`submit`.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        allow_schemes: set[str] | frozenset[str] = frozenset(),
        timeout: float = 10.0,
        max_bytes: int = 20 * 1024 * 1024,
        max_pixels: int = 40_000_000,
        max_side: int = 512,
        retries: int = 2,
        workers: int = 8,
    ) -> None:
        self.root = Path(root) if root is not None else Path.cwd()
        self.allow_schemes = {"http", "https"} | {s.lower() for s in allow_schemes}
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_side = max_side
        self.retries = retries
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._opener = urllib.request.build_opener(_RedirectGuard(self.allow_schemes))

    def submit(self, ref: str) -> Future[tuple[Image.Image | None, str | None]]:
        """Start loading ``ref`` in the thread pool; the future gives ``(image, warning)``."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="image")
        return self._pool.submit(self.load, ref)

    def close(self) -> None:
        """Stop the thread pool (waits for running loads)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def load(self, ref: str) -> tuple[Image.Image | None, str | None]:
        """Load one image.

        Returns:
            ``(image, None)`` on success, ``(None, warning)`` when the image cannot be used.
        """
        try:
            data = self.read_bytes(ref)
            return self.decode(data), None
        except ImageLoadError as error:
            return None, f"image {_short(ref)}: {error}"

    def read_bytes(self, ref: str) -> bytes:
        """The raw bytes behind ``ref`` (path or URL), within :attr:`max_bytes`."""
        if "://" not in ref:
            return self._read_file(self.root / ref)
        scheme = urlparse(ref).scheme.lower()
        if scheme not in self.allow_schemes:
            raise ImageLoadError(
                f"URL scheme {scheme!r} refused (only http/https; allow it with --allow-scheme {scheme})"
            )
        if scheme == "file":
            return self._read_file(Path(urllib.request.url2pathname(urlparse(ref).path)))
        return self._download(ref)

    def _read_file(self, path: Path) -> bytes:
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise ImageLoadError(
                    f"file is {size:,} bytes, more than the {self.max_bytes:,} allowed"
                )
            return path.read_bytes()
        except FileNotFoundError:
            raise ImageLoadError("file not found") from None
        except IsADirectoryError:
            raise ImageLoadError("is a folder, not a file") from None
        except OSError as error:
            raise ImageLoadError(f"cannot read file ({error.strerror or error})") from None

    def _download(self, url: str) -> bytes:
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                return self._download_once(url)
            except _Retryable as error:
                if attempt == self.retries:
                    raise ImageLoadError(f"{error} (after {attempt + 1} attempts)") from None
                time.sleep(delay * (1 + random.random()))
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _download_once(self, url: str) -> bytes:
        deadline = time.monotonic() + self.timeout
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                length = response.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > self.max_bytes:
                    raise ImageLoadError(
                        f"download is {int(length):,} bytes, more than the {self.max_bytes:,} allowed"
                    )
                chunks, total = [], 0
                while chunk := response.read(64 * 1024):
                    total += len(chunk)
                    if total > self.max_bytes:
                        raise ImageLoadError(
                            f"download exceeds the {self.max_bytes:,} bytes allowed"
                        )
                    if time.monotonic() > deadline:
                        raise _Retryable(f"download took longer than {self.timeout:g} s")
                    chunks.append(chunk)
                return b"".join(chunks)
        except urllib.error.HTTPError as error:
            if error.code in _RETRY_STATUS:
                raise _Retryable(f"HTTP {error.code} {error.reason}") from None
            raise ImageLoadError(f"HTTP {error.code} {error.reason}") from None
        except TimeoutError:
            raise _Retryable(f"no answer within {self.timeout:g} s") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise _Retryable(f"no answer within {self.timeout:g} s") from None
            raise _Retryable(f"cannot connect ({error.reason})") from None
        except (OSError, http.client.HTTPException) as error:
            raise _Retryable(f"connection failed ({error})") from None

    def decode(self, data: bytes) -> Image.Image:
        """Decode bytes into an RGB image no larger than :attr:`max_side`.

        Raises:
            ImageLoadError: Not an image, corrupt or truncated, or more than :attr:`max_pixels`.
        """
        if not data:
            raise ImageLoadError("empty file")
        try:
            with _OPEN_LOCK, warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ImageLoadError("too many pixels (possible decompression bomb)") from None
        except Image.UnidentifiedImageError:
            raise ImageLoadError("not an image (unrecognized content)") from None
        except Exception as error:  # PIL raises many types on hostile input
            raise ImageLoadError(f"corrupt image ({error})") from None
        width, height = image.size
        if width * height > self.max_pixels:
            raise ImageLoadError(
                f"{width}x{height} pixels, more than the {self.max_pixels:,} allowed "
                "(possible decompression bomb)"
            )
        try:
            image.draft("RGB", (self.max_side, self.max_side))  # JPEG: decode at reduced size
            image.load()
            image = image.convert("RGB")
        except Exception as error:
            raise ImageLoadError(f"corrupt or truncated image ({error})") from None
        if max(image.size) > self.max_side:
            image.thumbnail((self.max_side, self.max_side))
        return image


class _RedirectGuard(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to allowed URL schemes."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        scheme = urlparse(newurl).scheme.lower()
        if scheme not in self.allowed:
            raise ImageLoadError(f"redirect to a refused URL scheme {scheme!r}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Retryable(ImageLoadError):
    """A failure worth another attempt (timeout, connection error, 5xx)."""


def _short(ref: str, limit: int = 120) -> str:
    return ref if len(ref) <= limit else ref[: limit - 3] + "..."
