"""Read and write Shopify's mapping rule files.

Two published forms: the YAML rule files (``mappings/from_shopify.yml``, ``to_shopify.yml``)
and the readable text form in ``dist/<locale>/integrations/...`` (``→ source`` followed by
one or more ``⇒ target`` lines, both full paths).

Rules that are not published carry two extra keys beside ``input`` and ``output``, which
readers of Shopify's format ignore (they read only those two)::

    - input:
        product_category_id: aa-1-13-8
      output:
        product_category_id:
        - 5388
      confidence: 0.8731
      provenance: inferred
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from multimodal_cat.mapping.errors import MappingFormatError, reads_mapping
from multimodal_cat.mapping.rule import PROVENANCES, MappingRule
from multimodal_cat.taxonomy._flatyaml import excerpt, load_yaml, load_yaml_text, read_text
from multimodal_cat.taxonomy.tree import Taxonomy, normalize_id

logger = logging.getLogger(__name__)

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_TEXT_HEADER = re.compile(r"Mapping\s+(\S+)\s+to\s+(\S+)")


@dataclass
class RuleFile:
    """What a rule file holds: the rules and the names of both trees."""

    rules: list[MappingRule]
    source_name: str | None
    target_name: str | None
    int_ids: tuple[bool, bool] = (
        False,
        False,
    )  # whether the file wrote source/target ids as numbers
    unmapped_ids: tuple[str, ...] = ()  # sources the file says map to nothing


_FAST_LINES = {
    "- input:": "start",
    "  output:": "output",
    "    product_category_id:": "list",
}
_FAST_VALUE = re.compile(r"^(?:    product_category_id: |    - )(.+)$")
_FAST_EXTRA = re.compile(r"^  (confidence|provenance): (\S+)$")  # see the module docstring
_PLAIN_HEADER = re.compile(r"[A-Za-z_][\w-]*")  # a header key the fast reader accepts
_FLOW = ("[", "{", "'", '"', "&", "*", "!", "|", ">")  # values only the full parser reads


def _scalar(text: str) -> object:
    if text.startswith("'") and text.endswith("'") and "'" not in text[1:-1]:
        return text[1:-1]
    if re.fullmatch(r"[A-Za-z0-9][\w-]*", text):
        return int(text) if text.isdigit() and (text == "0" or text[0] != "0") else text
    try:
        return load_yaml_text(text)
    except yaml.YAMLError as error:  # a tag (!!python/...) or broken YAML: a plain sentence
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise MappingFormatError(f"expected a category id or a plain value ({problem})", found=text) from None


def _file_lines(path: Path) -> Iterator[str]:
    """The file's lines without their ends, read one at a time (a BOM dropped, any line ending
    taken as one): what :func:`read_text` would give, without holding the whole file."""
    try:
        with path.open(encoding="utf-8-sig", newline=None) as handle:
            for line in handle:
                yield line.rstrip("\n")
    except UnicodeDecodeError:
        read_text(path)  # raises the format error that names the problem
        raise


def _read_fast(lines: Iterable[str]) -> dict | None:
    """Parse the regular layout Shopify's generator writes, line by line; ``None`` when the file
    differs (flow style, JSON, any form this reader does not handle: the full parser reads it)."""
    header: dict[str, object] = {}
    rules: list[dict] = []
    lines = iter(lines)
    for line in lines:
        if line == "rules:":
            break
        if line and line != "---" and not line.startswith("#"):
            key, sep, value = line.partition(": ")
            if not sep or not _PLAIN_HEADER.fullmatch(key) or value.strip()[:1] in _FLOW:
                return None
            header[key] = value.strip()
    else:  # no block-style `rules:` line: not the layout this reader knows
        return None
    unmapped: list[object] | None = None
    for line in lines:
        if line.startswith("#"):  # the paths written above each rule, for readers
            continue
        if line == "unmapped_product_category_ids:":
            unmapped = []
            continue
        if unmapped is not None:
            if not line.startswith("- "):
                return None
            unmapped.append(_scalar(line[2:].strip()))
            continue
        kind = _FAST_LINES.get(line)
        if kind == "start":
            rules.append({"input": {}, "output": {}})
            side = "input"
        elif kind == "output" and rules:
            side = "output"
        elif kind == "list" and rules and side == "output":
            rules[-1]["output"]["product_category_id"] = []
        elif (extra := _FAST_EXTRA.match(line)) and rules:
            rules[-1][extra.group(1)] = _scalar(extra.group(2))
        else:
            match = _FAST_VALUE.match(line)
            if not match or not rules:
                return None
            value = _scalar(match.group(1).strip())
            if line.startswith("    - ") and side == "output":
                rules[-1]["output"].setdefault("product_category_id", []).append(value)
            else:
                rules[-1][side]["product_category_id"] = value
    out = {**header, "rules": rules}
    if unmapped is not None:
        out["unmapped_product_category_ids"] = unmapped
    return out


def _drain(items: list) -> Iterator:
    """The items in order, each let go as it is handed out (the list ends empty), so parsed
    rules and the rules built from them are not both held whole."""
    items.reverse()
    while items:
        yield items.pop()


def _check_ids(source: object, targets: list, number: int, path: Path) -> None:
    """A rule's ids must be text or whole numbers (not lists, mappings, booleans or empty)."""
    for where, value in [("input", source)] + [("output", t) for t in targets]:
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
            raise MappingFormatError(
                f"rule {number}: expected each {where}.product_category_id to be an id (text or "
                f"a whole number), found {type(value).__name__}",
                path=path,
                found=excerpt(value),
            )


def _rule_extras(rule: dict, number: int, path: Path) -> tuple[str, float]:
    """A rule's ``provenance`` and ``confidence`` keys (``published`` / 1.0 when absent)."""
    provenance = rule.get("provenance", "published")
    confidence = rule.get("confidence", 1.0)
    number_ok = isinstance(confidence, (int, float)) and not isinstance(confidence, bool)
    if provenance not in PROVENANCES or not number_ok or not 0.0 <= confidence <= 1.0:
        raise MappingFormatError(
            f"rule {number}: expected provenance in {PROVENANCES} and a confidence in [0, 1]",
            path=path,
            found=f"provenance={provenance!r}, confidence={confidence!r}",
        )
    return provenance, float(confidence)


@reads_mapping
def read_rules_yaml(path: str | Path) -> RuleFile:
    """Read ``input_taxonomy`` / ``output_taxonomy`` / ``rules`` from a Shopify YAML rule file."""
    path = Path(path)
    if not any(line.strip() for line in _file_lines(path)):  # stops at the first line with text
        raise MappingFormatError(
            "expected a mapping file with a 'rules:' list, found an empty file", path=path
        )
    data = _read_fast(_file_lines(path)) or load_yaml(path)  # streamed: never the whole text
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        what = (
            "no 'rules' key"
            if not isinstance(data, dict) or "rules" not in data
            else (f"'rules' as {type(data['rules']).__name__}, not a list")
        )
        raise MappingFormatError(
            f"expected a mapping file with a 'rules:' list, found {what}",
            path=path,
            found=excerpt(data),
        )
    if not data["rules"] and not data.get("unmapped_product_category_ids"):
        logger.warning(
            "%s: the mapping file has an empty 'rules' list: no category is mapped", path
        )
    rules, int_source, int_target = [], True, True
    for number, rule in enumerate(_drain(data["rules"]), start=1):
        try:
            source = rule["input"]["product_category_id"]
            targets = rule["output"]["product_category_id"] or []
        except (KeyError, TypeError):
            raise MappingFormatError(
                f"rule {number}: expected input.product_category_id and output.product_category_id",
                path=path,
                found=excerpt(rule),
            ) from None
        targets = targets if isinstance(targets, list) else [targets]
        _check_ids(source, targets, number, path)
        int_source = int_source and isinstance(source, int)
        int_target = int_target and all(isinstance(t, int) for t in targets)
        rules.append(
            MappingRule(
                normalize_id(source),
                tuple(normalize_id(t) for t in targets),
                *_rule_extras(rule, number, path),
            )
        )
    unmapped = tuple(normalize_id(u) for u in data.get("unmapped_product_category_ids") or ())
    return RuleFile(
        rules,
        data.get("input_taxonomy"),
        data.get("output_taxonomy"),
        (int_source, int_target and bool(rules)),
        unmapped,
    )


def _extras_of(rule: MappingRule) -> dict[str, object]:
    """The extra keys written for a rule that is not a plain published one (none for those)."""
    if rule.provenance == "published" and rule.confidence == 1.0:
        return {}
    return {"confidence": round(float(rule.confidence), 4), "provenance": rule.provenance}


def write_rules_yaml(
    rules: Iterable[MappingRule],
    path: str | Path,
    source_name: str,
    target_name: str,
    int_ids: tuple[bool, bool] = (False, False),
    unmapped_ids: Iterable[str] = (),
    *,
    comments: Sequence[str] | None = None,
) -> Path:
    """Write rules in Shopify's YAML rule format (``unmapped_product_category_ids`` last, if any).

    Rules other than plain published ones also get ``confidence`` and ``provenance`` keys.
    ``comments`` (one per rule, e.g. the categories' paths) are written as a ``# ...`` line
    above each rule.
    """

    def as_id(value: str, as_int: bool) -> object:
        return int(value) if as_int and value.isdigit() else value

    body = [
        {
            "input": {"product_category_id": as_id(r.source_id, int_ids[0])},
            "output": {"product_category_id": [as_id(t, int_ids[1]) for t in r.target_ids]},
            **_extras_of(r),
        }
        for r in rules
    ]
    data: dict[str, object] = {
        "input_taxonomy": source_name,
        "output_taxonomy": target_name,
        "rules": body,
    }
    unmapped = [as_id(u, int_ids[0]) for u in unmapped_ids]
    if unmapped:
        data["unmapped_product_category_ids"] = unmapped
    text = yaml.dump(
        data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, explicit_start=True, width=10_000
    )
    if comments is not None:
        text = _with_comments(text, comments)
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    return path


def _with_comments(text: str, comments: Sequence[str]) -> str:
    """Put ``# comment`` above each rule (each ``- input:`` line of the rules list, in order)."""
    notes = iter(comments)
    lines = []
    for line in text.split("\n"):
        if line == "- input:":
            note = next(notes, None)
            if note is not None:
                lines.append("# " + " ".join(note.split()))  # one line, whatever the names hold
        lines.append(line)
    return "\n".join(lines)


def is_mapping_file(path: str | Path) -> bool:
    """True for an existing file that holds mapping rules (a ``rules:`` list or ``→`` lines),
    as opposed to a taxonomy tree; only the file's start is read.

    Example:
        >>> is_mapping_file("no-such-file.yml")
        False
    """
    path = Path(path)
    if not path.is_file():
        return False
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        head = handle.read(65_536)
    return any(line == "rules:" or line.lstrip().startswith("→") for line in head.splitlines())


def rule_file_names(path: str | Path) -> tuple[str | None, str | None]:
    """The (source, target) tree names a rule file states, read from its start only."""
    path = Path(path)
    if path.suffix.lower() == ".txt":
        return text_header_names(path)
    names: dict[str, str] = {}
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        for line in handle:
            if line.startswith("rules:"):
                break
            key, _, value = line.partition(":")
            names[key.strip()] = value.strip().strip("'\"")
    return names.get("input_taxonomy") or None, names.get("output_taxonomy") or None


@reads_mapping
def text_header_names(path: str | Path) -> tuple[str | None, str | None]:
    """The (source, target) names in a text mapping's header, when it has one."""
    for line in read_text(Path(path)).splitlines()[:5]:
        found = _TEXT_HEADER.search(line)
        if found:
            return found.group(1), found.group(2)
    return None, None


@reads_mapping
def read_rules_text(path: str | Path, source: Taxonomy, target: Taxonomy) -> list[MappingRule]:
    """Read the ``→ source`` / ``⇒ target`` text form, resolving full paths in both trees."""
    path = Path(path)
    rules: list[MappingRule] = []
    current: str | None = None
    targets: list[str] = []

    def close() -> None:
        if current is not None:
            rules.append(MappingRule(current, tuple(targets)))

    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        marker, text = line[:1], line[1:].strip()
        tree = source if marker == "→" else target if marker == "⇒" else None
        if tree is None:
            raise MappingFormatError(
                "expected a line starting with '→' or '⇒'", path=path, line=number, found=raw
            )
        try:
            category = tree.find(text)
        except KeyError:
            raise MappingFormatError(
                f"expected a category path of {tree.name!r}, found one it does not have",
                path=path,
                line=number,
                found=text,
            ) from None
        if marker == "→":
            close()
            current, targets = category.id, []
        elif current is None:
            raise MappingFormatError(
                "expected a '→ source' line before this '⇒' line", path=path, line=number, found=raw
            )
        else:
            targets.append(category.id)
    close()
    return rules
