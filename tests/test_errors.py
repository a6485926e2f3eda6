"""The error family: every kind derives from MultimodalCatError and keeps its built-in base."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from multimodal_cat.encoders.registry import MissingEncoderPackageError, UnknownEncoderError
from multimodal_cat.errors import (
    ConfigurationError,
    EncoderError,
    FormatError,
    MissingPackageError,
    MultimodalCatError,
    optional_import,
)
from multimodal_cat.feeds.columns import ColumnMap, FeedColumnError
from multimodal_cat.feeds.images import ImageLoader, ImageLoadError
from multimodal_cat.feeds.read import FeedFormatError, FeedReader, detect_format
from multimodal_cat.feeds.shards import ShardError, resolve_shard
from multimodal_cat.feeds.write import ResumeError
from multimodal_cat.mapping import Mapping, MappingRule
from multimodal_cat.mapping.errors import MappingFormatError
from multimodal_cat.modeling import LabelSpace
from multimodal_cat.modeling.labels import build_tag_groups
from multimodal_cat.taxonomy import Taxonomy, TaxonomyFormatError, UnknownTaxonomyError

KINDS = [
    (TaxonomyFormatError, ValueError),
    (UnknownTaxonomyError, ValueError),
    (MappingFormatError, ValueError),
    (FeedFormatError, ValueError),
    (FeedColumnError, ValueError),
    (ShardError, ValueError),
    (ResumeError, ValueError),
    (ImageLoadError, Exception),
    (UnknownEncoderError, OSError),
    (MissingEncoderPackageError, ImportError),
    (MissingPackageError, ModuleNotFoundError),
    (ConfigurationError, ValueError),
]


@pytest.mark.parametrize(("kind", "builtin"), KINDS, ids=[k.__name__ for k, _ in KINDS])
def test_every_kind_is_in_the_family_and_keeps_its_builtin_base(kind, builtin) -> None:
    assert issubclass(kind, MultimodalCatError) and issubclass(kind, builtin)


def _raised(action) -> BaseException:
    with pytest.raises(MultimodalCatError) as info:
        action()
    return info.value


def test_raised_errors_are_family_members(tmp_path: Path) -> None:
    bad_tree = tmp_path / "t.txt"
    bad_tree.write_text("1 - A\n2 - A > > B\n", encoding="utf-8")
    assert isinstance(_raised(lambda: Taxonomy.load(bad_tree)), TaxonomyFormatError)
    assert isinstance(_raised(lambda: Taxonomy.load("amazon")), UnknownTaxonomyError)
    assert isinstance(_raised(lambda: detect_format("feed.numbers")), FeedFormatError)
    assert isinstance(_raised(lambda: ColumnMap.from_args(["title"])), FeedColumnError)
    assert isinstance(_raised(lambda: resolve_shard("x/y")), ShardError)
    assert isinstance(
        _raised(lambda: ImageLoader(tmp_path).read_bytes("absent.png")), ImageLoadError
    )
    assert isinstance(_raised(lambda: LabelSpace([], [], [], [])), ConfigurationError)
    assert isinstance(_raised(lambda: build_tag_groups({"color": []})), ConfigurationError)
    assert isinstance(UnknownEncoderError("x"), EncoderError)


def test_format_errors_read_alike() -> None:
    for kind in (TaxonomyFormatError, MappingFormatError, FeedFormatError):
        err = kind("expected X", path="f.txt", line=3, found="y")
        assert isinstance(err, FormatError)
        assert (str(err), err.path, err.line, err.found) == (
            "f.txt:3: expected X, found 'y'",
            "f.txt",
            3,
            "y",
        )
    assert str(FeedFormatError("plain message")) == "plain message"


def test_mapping_errors_are_not_taxonomy_errors(tmp_path: Path) -> None:
    tree = Taxonomy.from_records([("a", None, "A"), ("b", None, "B")])
    errors = [
        _raised(lambda: Mapping([MappingRule("a", ("b",)), MappingRule("a", ("a",))])),
        _raised(lambda: Mapping([MappingRule("zz", ("a",))], tree, tree)),
    ]
    text = tmp_path / "m.txt"
    text.write_text("→ A\n⇒ Nowhere\n", encoding="utf-8")
    errors.append(_raised(lambda: Mapping.from_file(text, source=tree, target=tree)))
    not_rules = tmp_path / "m.yml"
    not_rules.write_text("just text\n", encoding="utf-8")
    errors.append(_raised(lambda: Mapping.from_file(not_rules)))
    bad_yaml = tmp_path / "bad.yml"
    bad_yaml.write_text("rules:\n  - {input: [\n", encoding="utf-8")  # the shared YAML reader
    errors.append(_raised(lambda: Mapping.from_file(bad_yaml)))
    binary = tmp_path / "bin.yml"
    binary.write_bytes(b"rules:\n\xff\xfe\n")
    errors.append(_raised(lambda: Mapping.from_file(binary)))
    for error in errors:
        assert isinstance(error, MappingFormatError), repr(error)
        assert not isinstance(error, TaxonomyFormatError), repr(error)
    assert errors[2].line == 2 and errors[2].path == str(text) and errors[2].found == "Nowhere"
    assert errors[4].path == str(bad_yaml) and "expected valid YAML" in str(errors[4])


def test_missing_optional_package_names_the_pip_command(tmp_path, monkeypatch) -> None:
    feed = tmp_path / "feed.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "1", "title": "Mug"}]), feed)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import now fails
    with pytest.raises(MissingPackageError) as info, FeedReader(feed) as reader:
        list(reader)
    message = str(info.value)
    assert "pip install 'multimodal-cat[feeds]'" in message and "'pyarrow'" in message
    assert info.value.name == "pyarrow" and isinstance(info.value, ImportError)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(
        MissingPackageError, match=r"'pandas'.*pip install 'multimodal-cat\[feeds\]'"
    ):
        optional_import("pandas", extra="feeds", purpose="Reading a DataFrame")
    assert optional_import("json", extra="feeds", purpose="x").__name__ == "json"
