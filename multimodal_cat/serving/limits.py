"""Request limits: body size, API key, and the error every refusal becomes.

A refused request gets an HTTP status and one sentence saying what was expected and what was
found (``{"detail": "..."}``); the server goes on serving the next request.

Example:
    >>> error = RequestError(413, "the body is 20,000,000 bytes, more than the 16,777,216 allowed")
    >>> error.status, str(error)[:21]
    (413, 'the body is 20,000,00')
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import AsyncIterator, Mapping

from multimodal_cat.errors import MultimodalCatError


class RequestError(MultimodalCatError, ValueError):
    """A request the service refuses, with the HTTP status to answer.

    Attributes:
        status: The HTTP status (4xx for the client's mistakes, 503/504 for load and time).
        headers: Extra response headers (e.g. ``Retry-After``).
    """

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


async def read_body(
    stream: AsyncIterator[bytes], content_length: str | None, max_bytes: int
) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``max_bytes``.

    ``Content-Length`` is checked before reading; a body sent without one (chunked) is
    counted as it arrives and refused at the first byte over.
    """
    if content_length is not None:
        if not content_length.isdigit():
            raise RequestError(400, f"Content-Length must be a number of bytes; found {content_length!r}")
        if int(content_length) > max_bytes:
            raise RequestError(
                413, f"the body is {int(content_length):,} bytes, more than the {max_bytes:,} allowed"
            )
    chunks, total = [], 0
    async for chunk in stream:
        total += len(chunk)
        if total > max_bytes:
            raise RequestError(413, f"the body is more than the {max_bytes:,} bytes allowed")
        chunks.append(chunk)
    return b"".join(chunks)


def check_api_key(headers: Mapping[str, str], key: str | None) -> None:
    """Refuse (401) a request without the service's API key, when one is set.

    The key is read from ``X-API-Key``, ``Authorization: Bearer KEY`` or HTTP basic auth's
    password (what Label Studio sends for an ML backend with basic auth).
    """
    if not key:
        return
    given = headers.get("x-api-key") or _from_authorization(headers.get("authorization", ""))
    if given is None:
        raise RequestError(
            401,
            "this service needs an API key: send it in the X-API-Key header "
            "(or Authorization: Bearer KEY)",
            {"WWW-Authenticate": 'Bearer realm="multimodal-cat"'},
        )
    if not hmac.compare_digest(given.encode("utf-8"), key.encode("utf-8")):
        raise RequestError(401, "the API key is wrong", {"WWW-Authenticate": 'Bearer realm="multimodal-cat"'})


def _from_authorization(value: str) -> str | None:
    scheme, _, credentials = value.strip().partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return None
