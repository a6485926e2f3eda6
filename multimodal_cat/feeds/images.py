"""Fetch product images from local paths, http(s) URLs or ``data:`` URLs, safely.

Every failure (missing file, device or FIFO, 404, timeout, slow drip, oversize download,
corrupt or truncated file, decompression bomb, content that is not an image, refused URL
scheme or address) becomes a plain-words warning instead of an exception, so one bad image
never stops a feed. Decoding (caps, EXIF orientation, bit depth, bounded memory) is
:func:`multimodal_cat.imaging.decode_image`, shared with training and the encoders.

Network rules: only http and https (``ftp`` and ``file`` with ``allow_schemes``); each
attempt has a wall-clock deadline of ``timeout`` seconds for the whole download (a watchdog
shuts every socket of the attempt, so a server that drips one byte a second, or answers each
FTP command just in time, cannot hold it); redirects are re-checked against the scheme rules.
Every connection, whatever the scheme (redirects and FTP data connections included), goes
through the address rules BEFORE it is made: the host is resolved, and loopback, private,
link-local and reserved addresses are refused unless ``allow_private_hosts`` is set, so a
refused host never sees a TCP handshake (and an open port reads the same as a closed one).

Example:
    >>> loader = ImageLoader(root="examples")
    >>> image, warning = loader.load("images/red-mug.png")  # doctest: +SKIP
    >>> image.size, warning  # doctest: +SKIP
    ((96, 96), None)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ftplib
import http.client
import ipaddress
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes, urlparse

from PIL import Image

from multimodal_cat.errors import MultimodalCatError
from multimodal_cat.imaging import ImageLimits, ImageLoadError, decode_image, read_regular_file

__all__ = ["ImageLoadError", "ImageLoader", "ImageOptionError", "data_url_bytes"]

USER_AGENT = "multimodal-cat/0.1 (+product feed categorizer)"
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
NETWORK_SCHEMES = frozenset({"http", "https", "ftp"})  # every one goes through the address guard
KNOWN_SCHEMES = NETWORK_SCHEMES | {"data", "file"}


class ImageOptionError(MultimodalCatError, ValueError):
    """An image option that cannot work (a negative timeout, an unknown URL scheme...)."""


class ImageLoader:
    """Fetch and decode images with limits; safe to call from many threads.

    Args:
        root: Folder that relative paths are resolved against (usually the feed's folder).
        allow_schemes: URL schemes allowed besides http, https and data, e.g. ``{"file"}``.
        timeout: Wall-clock seconds allowed for one whole download attempt (connect, headers,
            body).
        max_bytes: Largest download or file accepted, in bytes.
        max_pixels: Largest image accepted (width x height); larger ones are refused as
            possible decompression bombs.
        max_side: Decoded images are shrunk so their longest side is at most this (memory).
        retries: Extra attempts for timeouts, connection errors and 408/429/5xx answers.
        workers: Threads used by :meth:`submit`.
        allow_private_hosts: Also connect to loopback, private and link-local addresses
            (refused by default, redirects included).

    Raises:
        ImageOptionError: An option that cannot work (timeout not above 0, negative retries,
            caps or workers under 1, an unknown URL scheme).
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
        allow_private_hosts: bool = False,
    ) -> None:
        _check_options(allow_schemes, timeout, retries, workers,
                       max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side)
        self.root = Path(root) if root is not None else Path.cwd()
        self.allow_schemes = {"http", "https", "data"} | {s.lower() for s in allow_schemes}
        self.timeout = timeout
        self.limits = ImageLimits(max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side)
        self.retries = retries
        self.workers = workers
        self.allow_private_hosts = allow_private_hosts
        self._pool: ThreadPoolExecutor | None = None

    def __getstate__(self) -> dict[str, Any]:
        """The options only: a copy (another process's, e.g. a Ray worker's) starts its own pool."""
        return {**self.__dict__, "_pool": None}

    @property
    def max_bytes(self) -> int:
        """Largest file or download accepted."""
        return self.limits.max_bytes

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
            return self.decode(self.read_bytes(ref)), None
        except ImageLoadError as error:
            return None, f"image {_short(ref)}: {error}"
        except Exception as error:  # never let one image stop the feed
            return None, f"image {_short(ref)}: unexpected {type(error).__name__}"

    def decode(self, data: bytes) -> Image.Image:
        """Decode bytes with this loader's limits (see :func:`~multimodal_cat.imaging.decode_image`)."""
        return decode_image(data, self.limits)

    def read_bytes(self, ref: str) -> bytes:
        """The raw bytes behind ``ref`` (path or URL), within :attr:`max_bytes`."""
        scheme = urlparse(ref).scheme.lower() if ":" in ref else ""
        if scheme == "data":
            return data_url_bytes(ref, self.max_bytes)
        if "://" not in ref:
            return read_regular_file(self.root / ref, self.max_bytes)
        if scheme not in self.allow_schemes:
            raise ImageLoadError(
                f"URL scheme {scheme!r} refused (only http/https; allow it with --allow-scheme {scheme})"
            )
        if scheme == "file":
            path = urllib.request.url2pathname(urlparse(ref).path)
            return read_regular_file(Path(path), self.max_bytes)
        if scheme not in NETWORK_SCHEMES:
            raise ImageLoadError(f"URL scheme {scheme!r} cannot be downloaded")
        return self._download(ref)

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
        guard = _Guard(self.timeout, self.allow_private_hosts)
        opener = urllib.request.build_opener(
            _GuardedHTTP(guard), _GuardedHTTPS(guard), _GuardedFTP(guard),
            _RedirectGuard(self.allow_schemes),
        )
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        watchdog = threading.Timer(self.timeout, guard.expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return self._read_body(response, guard)
        except ImageLoadError:
            raise
        except Exception as error:
            raise guard.explain(error) from None
        finally:
            watchdog.cancel()
            guard.expire(quiet=True)

    def _read_body(self, response: Any, guard: _Guard) -> bytes:
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            raise ImageLoadError(
                f"download is {int(length):,} bytes, more than the {self.max_bytes:,} allowed"
            )
        chunks, total = [], 0
        while chunk := response.read1(64 * 1024):
            total += len(chunk)
            if total > self.max_bytes:
                raise ImageLoadError(f"download exceeds the {self.max_bytes:,} bytes allowed")
            chunks.append(chunk)
            if guard.expired:
                break
        if guard.expired:
            raise guard.deadline_error()
        return b"".join(chunks)


def _check_options(
    schemes: set[str] | frozenset[str], timeout: float, retries: int, workers: int, **caps: int
) -> None:
    """Refuse option values that would fail every image (or never stop), before the job starts."""
    unknown = sorted({s.lower() for s in schemes} - KNOWN_SCHEMES)
    if unknown:
        raise ImageOptionError(
            f"--allow-scheme: expected one of {', '.join(sorted(KNOWN_SCHEMES))}; found "
            f"{', '.join(unknown)}"
        )
    if not (isinstance(timeout, (int, float)) and 0 < timeout < float("inf")):
        raise ImageOptionError(f"--image-timeout must be a number of seconds above 0; found {timeout}")
    if retries < 0:
        raise ImageOptionError(f"--image-retries must be 0 or more; found {retries}")
    if workers < 1:
        raise ImageOptionError(f"--image-workers must be at least 1; found {workers}")
    for name, value in caps.items():
        if value < 1:
            flag = {"max_bytes": "--max-image-bytes", "max_pixels": "--max-image-pixels"}.get(name, name)
            raise ImageOptionError(f"{flag} must be at least 1; found {value}")


def data_url_bytes(url: str, max_bytes: int) -> bytes:
    """The bytes inside a ``data:[<type>][;base64],<data>`` URL, refused above ``max_bytes``.

    Example:
        >>> data_url_bytes("data:image/png;base64,aGVsbG8=", 100)
        b'hello'
    """
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise ImageLoadError("data: URL without a ',' before its data")
    if header.lower().endswith(";base64"):
        payload = "".join(payload.split())
        if len(payload) * 3 // 4 > max_bytes:
            raise ImageLoadError(f"data: URL holds more than the {max_bytes:,} bytes allowed")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ImageLoadError("data: URL is not valid base64 (cut short?)") from None
    if len(payload) > 3 * max_bytes:
        raise ImageLoadError(f"data: URL holds more than the {max_bytes:,} bytes allowed")
    data = unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise ImageLoadError(f"data: URL holds more than the {max_bytes:,} bytes allowed")
    return data


class _Guard:
    """One download attempt: its wall-clock deadline, its sockets and the address rules.

    Every connection of the attempt (HTTP, HTTPS, FTP control and data, redirects) is made by
    :meth:`connect`, which resolves the host and checks every address it resolves to BEFORE
    connecting, then connects to a checked address (so a refused host never sees a TCP
    handshake, and a name cannot resolve to another address between the check and the use).
    """

    def __init__(self, timeout: float, allow_private: bool) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.allow_private = allow_private
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        """Socket timeout: a little past the deadline, so the watchdog is what ends it."""
        return max(self.deadline - time.monotonic(), 0.0) + 0.5

    def connect(
        self, address: tuple[str, int], timeout: Any = None, source_address: Any = None
    ) -> socket.socket:
        """Resolve, check every address, then connect (a ``socket.create_connection`` twin)."""
        host, port = address[0], address[1]
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise _Retryable(f"cannot resolve {host!r} ({error.strerror or error})") from None
        for *_, sockaddr in found:
            self.check(str(sockaddr[0]))
        error: OSError | None = None
        for family, kind, proto, _, sockaddr in found:
            sock = socket.socket(family, kind, proto)
            try:
                self.track(sock)
                sock.settimeout(self.remaining())
                sock.connect(sockaddr)
                return sock
            except OSError as failure:
                error = failure
                sock.close()
        raise error or OSError(f"no address for {host!r}")

    def check(self, text: str) -> None:
        """Refuse ``text`` (an IP address) unless the address rules allow it."""
        address = ipaddress.ip_address(text.split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not _address_allowed(address, self.allow_private):
            raise ImageLoadError(
                f"address {address} refused (loopback, private or reserved; "
                "allow it with --allow-private-hosts)"
            )

    def track(self, sock: socket.socket) -> None:
        """Let the watchdog shut ``sock`` down at the deadline."""
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def register(self, sock: socket.socket) -> None:
        """Check the peer of a socket connected elsewhere (an FTP data connection), then track it."""
        try:
            self.check(sock.getpeername()[0])
        except ImageLoadError:
            sock.close()
            raise
        self.track(sock)

    def expire(self, quiet: bool = False) -> None:
        with self._lock:
            if not quiet:
                self.expired = True
            for sock in self._sockets:
                _shutdown(sock)
            self._sockets.clear()

    def deadline_error(self) -> _Retryable:
        return _Retryable(f"download took longer than {self.timeout:g} s (deadline)")

    def explain(self, error: BaseException) -> ImageLoadError:
        """Map a urllib / socket failure to a plain-words error (retryable when it may pass)."""
        if self.expired:
            return self.deadline_error()
        if isinstance(error, urllib.error.HTTPError):
            kind = _Retryable if error.code in _RETRY_STATUS else ImageLoadError
            return kind(f"HTTP {error.code} {error.reason}")
        reason = getattr(error, "reason", error)
        if isinstance(reason, ImageLoadError):
            return reason
        if isinstance(reason, TimeoutError):
            return _Retryable(f"no answer within {self.timeout:g} s")
        if isinstance(error, urllib.error.URLError):
            return _Retryable(f"cannot connect ({reason})")
        if isinstance(error, (OSError, http.client.HTTPException, EOFError)):
            return _Retryable(f"connection failed ({type(error).__name__})")
        return ImageLoadError(f"download failed ({type(error).__name__})")


def _address_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, private: bool) -> bool:
    """The address rule: public addresses always; loopback, private, reserved only if allowed."""
    return private or address.is_global


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _guarded(base: type[http.client.HTTPConnection], guard: _Guard) -> type:
    class GuardedConnection(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = guard.connect  # checks the address before connecting

        def connect(self) -> None:
            self.timeout = guard.remaining()
            super().connect()

    return GuardedConnection


class _GuardedFTPClient(ftplib.FTP):
    """``ftplib.FTP`` whose control connection goes through the guard, data ones are tracked."""

    def __init__(self, guard: _Guard) -> None:
        super().__init__()
        self.guard = guard

    def connect(self, host: str = "", port: int = 0, timeout: float = -999, source_address: Any = None) -> str:
        self.host, self.port = host or self.host, port or self.port
        self.timeout = self.guard.remaining()
        self.sock = self.guard.connect((self.host, self.port))
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[socket.socket, int | None]:
        self.timeout = self.guard.remaining()
        conn, size = super().ntransfercmd(cmd, rest)
        self.guard.register(conn)
        return conn, size


class _GuardedFTPWrapper(urllib.request.ftpwrapper):
    def __init__(self, guard: _Guard, *args: Any, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(*args, **kwargs)

    def init(self) -> None:
        self.busy = 0
        self.ftp = _GuardedFTPClient(self.guard)
        self.ftp.connect(self.host, self.port)
        self.ftp.login(self.user, self.passwd)
        self.ftp.cwd("/".join(self.dirs))


class _GuardedFTP(urllib.request.FTPHandler):
    def __init__(self, guard: _Guard) -> None:
        super().__init__()
        self.guard = guard

    def connect_ftp(self, user, passwd, host, port, dirs, timeout):  # type: ignore[no-untyped-def]
        return _GuardedFTPWrapper(self.guard, user, passwd, host, port, dirs, persistent=False)


class _GuardedHTTP(urllib.request.HTTPHandler):
    def __init__(self, guard: _Guard) -> None:
        super().__init__()
        self.guard = guard

    def http_open(self, req):  # type: ignore[no-untyped-def]
        return self.do_open(_guarded(http.client.HTTPConnection, self.guard), req)


class _GuardedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, guard: _Guard) -> None:
        super().__init__()
        self.guard = guard

    def https_open(self, req):  # type: ignore[no-untyped-def]
        connection = _guarded(http.client.HTTPSConnection, self.guard)
        return self.do_open(connection, req, context=self._context)


class _RedirectGuard(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to allowed URL schemes (the address is checked on connect)."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed - {"data", "file"}

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        scheme = urlparse(newurl).scheme.lower()
        if scheme not in self.allowed:
            raise ImageLoadError(f"redirect to a refused URL scheme {scheme!r}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Retryable(ImageLoadError):
    """A failure worth another attempt (timeout, connection error, 5xx)."""


def _short(ref: str, limit: int = 120) -> str:
    text = ref if len(ref) <= limit else ref[: limit - 3] + "..."
    return text.replace("\x00", "\\x00")
