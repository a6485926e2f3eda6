"""Image references Label Studio can display: URLs as they are, local files through its local-files storage.

A reviewer's browser cannot open ``images/123.jpg`` (a path relative to the feed): Label Studio
shows an image from a URL. Web images (``http(s)://``, ``data:``) pass through. Local files are
served by Label Studio itself when it runs with ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true``
and ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=/some/root``, and the project has a *Local files*
source storage on a folder under that root (the folder holding the images; no sync needed): a
task then names each file as ``/data/local-files/?d=<path relative to the document root>``.

Example:
    >>> refs = TaskImages(image_root="/data/feeds", document_root="/data")
    >>> refs.url("images/red mug.jpg")
    '/data/local-files/?d=feeds/images/red%20mug.jpg'
    >>> refs.url("https://cdn.example.com/mug.jpg")
    'https://cdn.example.com/mug.jpg'
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlparse

from multimodal_cat.errors import MultimodalCatError

LOCAL_FILES_URL = "/data/local-files/?d="
DOCUMENT_ROOT_VARIABLE = "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"
WEB_SCHEMES = ("http", "https", "data")


class TaskImageError(MultimodalCatError, ValueError):
    """A local image Label Studio cannot serve (it lies outside the document root)."""


def is_web_image(ref: str) -> bool:
    """True for an ``http(s)://`` or ``data:`` reference (a browser opens it as it is)."""
    return urlparse(ref).scheme.lower() in WEB_SCHEMES


@dataclass(frozen=True)
class TaskImages:
    """Turns a feed's image references into what a Label Studio task shows.

    Args:
        image_root: Folder relative image paths are relative to (usually the feed's folder).
        document_root: Label Studio's ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``; default: that
            environment variable, else ``image_root``.
    """

    image_root: str | Path
    document_root: str | Path | None = None

    @property
    def root(self) -> Path:
        """The document root, absolute."""
        chosen = self.document_root or os.environ.get(DOCUMENT_ROOT_VARIABLE) or self.image_root
        return Path(chosen).expanduser().resolve()

    def source(self, ref: str) -> str:
        """The image as the feed named it, resolved: a URL, an absolute path, or ``""``."""
        ref = ref.strip()
        if not ref or is_web_image(ref):
            return ref
        return str((Path(self.image_root).expanduser() / Path(ref).expanduser()).resolve())

    def url(self, ref: str) -> str:
        """What the task's ``image`` holds: a URL, a local-files URL, or ``""`` for no image.

        Raises:
            TaskImageError: A local file outside the document root.
        """
        source = self.source(ref)
        if not source or is_web_image(source):
            return source
        try:
            relative = Path(source).relative_to(self.root)
        except ValueError:
            raise TaskImageError(
                f"image {source} is outside Label Studio's document root {self.root}: expected "
                f"files under it (give --document-root, the {DOCUMENT_ROOT_VARIABLE} Label "
                "Studio runs with)"
            ) from None
        return LOCAL_FILES_URL + quote(relative.as_posix(), safe="/")

    def storage_folder(self, refs: Iterable[str]) -> Path | None:
        """The folder to add as the project's *Local files* storage: the deepest folder holding
        every local image of ``refs`` (``None`` when they are all URLs)."""
        folders = [Path(self.source(r)).parent for r in refs if r.strip() and not is_web_image(r.strip())]
        if not folders:
            return None
        return Path(os.path.commonpath([str(f) for f in folders]))

    def instructions(self, refs: Iterable[str]) -> str:
        """How to start Label Studio so it shows these images (``""`` when all are URLs)."""
        folder = self.storage_folder(refs)
        if folder is None:
            return ""
        text = (
            f"Label Studio shows these local images when started with "
            f"LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true {DOCUMENT_ROOT_VARIABLE}={self.root} "
            f"and the project has a Local files source storage on {folder} (no sync needed)"
        )
        if folder == self.root:
            text += (
                f"; Label Studio refuses a storage on the document root itself: give a parent "
                f"folder as --document-root (e.g. {self.root.parent})"
            )
        return text
