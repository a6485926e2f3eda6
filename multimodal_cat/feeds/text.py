"""Make feed text safe to process and write, and read it in bounded lines.

Feeds carry whatever their sellers typed or their exporters produced: invalid UTF-8 (kept as
lone surrogates by ``surrogateescape``), JSON-escaped lone surrogates (``"\\ud800"``), NUL
characters, lines a gigabyte long. :func:`clean_value` turns every string in a record into
text that can be hashed, written as UTF-8 and used as a path; :class:`BoundedLines` reads a
stream line by line without ever holding more than ``limit`` characters of one line.

Example:
    >>> notes = []
    >>> clean_value("bad\\ud800 text\\x00", "title", notes), notes
    ('bad\\ufffd text', ["invalid characters (lone surrogates) in 'title' replaced", "NUL characters removed from 'title'"])
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import IO, Any

# Longest line a reader accepts (characters for text, bytes for JSON lines).
MAX_LINE = 8 * 1024 * 1024
_SURROGATES = re.compile("[\ud800-\udfff]")
# The elements product descriptions are written with; "<M>" in "Size <M>" is not one of them.
_ELEMENTS = (
    "a|abbr|article|b|big|blockquote|body|br|center|code|dd|div|dl|dt|em|font|h[1-6]|head|hr|html|"
    "i|iframe|img|label|li|meta|ol|p|pre|s|section|small|span|strike|strong|sub|sup|table|tbody|"
    "td|tfoot|th|thead|tr|u|ul"
)
_TAG = re.compile(rf"</?(?:{_ELEMENTS})(?:\s[^<>]*)?/?>|<!--.*?-->", re.DOTALL | re.IGNORECASE)
_HIDDEN = re.compile(r"<(script|style)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});")


class LineTooLongError(Exception):
    """A line longer than the reader's limit (it was skipped without being held)."""

    def __init__(self, line: int, limit: int) -> None:
        super().__init__(f"line {line}: longer than the {limit:,} characters allowed per line")
        self.line = line


def clean_value(value: Any, column: str, notes: list[str]) -> Any:
    """``value`` with every string in it made safe (recursively through lists and dicts).

    Lone surrogates (invalid UTF-8 bytes, or JSON ``\\udXXX`` escapes without a pair) become
    U+FFFD; NUL characters are removed. Each kind of repair adds one note naming the column.
    """
    if isinstance(value, str):
        return _clean_text(value, column, notes)
    if isinstance(value, list):
        return [clean_value(v, column, notes) for v in value]
    if isinstance(value, dict):
        return {
            _clean_text(str(k), column, notes): clean_value(v, column, notes)
            for k, v in value.items()
        }
    return value


def _clean_text(text: str, column: str, notes: list[str]) -> str:
    if _SURROGATES.search(text) is not None:
        try:  # bytes kept by surrogateescape: decode them properly, invalid ones -> U+FFFD
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            _note(notes, f"invalid UTF-8 bytes in {column!r} replaced")
        except UnicodeEncodeError:  # lone surrogates from a JSON escape
            text = _SURROGATES.sub("\ufffd", text)
            _note(notes, f"invalid characters (lone surrogates) in {column!r} replaced")
    if "\x00" in text:
        text = text.replace("\x00", "")
        _note(notes, f"NUL characters removed from {column!r}")
    return text


def plain_text(text: str) -> str:
    """``text`` without HTML markup: tags (and what scripts and styles hold) become spaces,
    entities their characters, runs of blanks one space. Text with no tag or entity comes back
    unchanged, so "Mesh <3" or "5 < 7" stay as written. Shopify's ``Body (HTML)`` and many
    merchant feeds' descriptions are HTML; the encoders should read their words.

    Example:
        >>> plain_text("<p>Soft <b>cotton</b>&nbsp;tee &amp; more</p>")
        'Soft cotton tee & more'
    """
    if _TAG.search(text) is None and _ENTITY.search(text) is None:
        return text
    text = _TAG.sub(" ", _HIDDEN.sub(" ", text))
    return " ".join(html.unescape(text).split())


def _note(notes: list[str], message: str) -> None:
    if message not in notes:
        notes.append(message)


class BoundedLines:
    """Iterate the lines of a text or binary stream, none longer than ``limit``.

    A longer line is read through in ``limit``-sized pieces and dropped; iteration raises
    :class:`LineTooLongError` for it (and continues with the next line when called again).
    :attr:`record` collects the lines handed out since it was last cleared (the CSV reader
    uses it to tell where a record started and which lines it swallowed).
    """

    def __init__(self, stream: IO[Any], limit: int = MAX_LINE) -> None:
        self.stream = stream
        self.limit = limit
        self.line = 0
        self.record: list[Any] = []

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        line = self.stream.readline(self.limit)
        if not line:
            raise StopIteration
        self.line += 1
        if len(line) >= self.limit and line[-1:] not in ("\n", b"\n"):
            while True:
                more = self.stream.readline(self.limit)
                if not more or more[-1:] in ("\n", b"\n"):
                    break
            raise LineTooLongError(self.line, self.limit)
        self.record.append(line)
        return line

    def or_errors(self) -> Iterator[tuple[Any, LineTooLongError | None]]:
        """``(line, None)`` per line, and ``(None, error)`` for a line over the limit, to the end."""
        while True:
            try:
                yield next(self), None
            except StopIteration:
                return
            except LineTooLongError as error:
                yield None, error
