"""Feed readers and column resolution: formats, stdin, malformed rows, bad bytes, caps."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from multimodal_cat.feeds.columns import ColumnMap, FeedColumnError, row_to_product
from multimodal_cat.feeds.read import FeedFormatError, FeedReader, detect_format

ROWS = [
    {"id": "1", "title": "Red mug", "description": "Stoneware", "image": ""},
    {"id": "2", "title": "Blue shirt", "description": "Linen", "image": "a.png"},
    {"id": "3", "title": "Toy car", "description": "", "image": ""},
]


def _csv_bytes(rows: list[dict], delimiter: str = ",") -> bytes:
    lines = [delimiter.join(rows[0])] + [delimiter.join(r.values()) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _read(source, **kwargs) -> tuple[list[str], list]:
    with FeedReader(source, **kwargs) as reader:
        return reader.columns, list(reader)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet", "csv.gz"])
def test_formats_read_same_rows(tmp_path, fmt):
    path = tmp_path / f"feed.{fmt}"
    if fmt == "csv":
        path.write_bytes(_csv_bytes(ROWS))
    elif fmt == "csv.gz":
        path.write_bytes(gzip.compress(_csv_bytes(ROWS)))
    elif fmt == "tsv":
        path.write_bytes(_csv_bytes(ROWS, "\t"))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    else:
        pq.write_table(pa.Table.from_pylist(ROWS), path, row_group_size=2)
    columns, rows = _read(path)
    assert columns == ["id", "title", "description", "image"]
    assert [r.values for r in rows] == ROWS
    assert [r.number for r in rows] == [1, 2, 3]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_stdin_stream_is_sniffed(tmp_path, fmt):
    if fmt == "csv":
        data = _csv_bytes(ROWS)
    elif fmt == "jsonl":
        data = "".join(json.dumps(r) + "\n" for r in ROWS).encode()
    else:
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(ROWS), sink)
        data = sink.getvalue()
    columns, rows = _read(io.BytesIO(data))
    assert [r.values["title"] for r in rows] == ["Red mug", "Blue shirt", "Toy car"]


def test_malformed_csv_rows_become_error_rows_with_line_numbers(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text('id,title\n1,ok\n2,too,many\n\n"3","multi\nline"\n4\n5,fine\n')
    _, rows = _read(path)
    assert [r.number for r in rows] == [1, 2, 3, 4, 5]
    assert rows[1].error == "line 3: expected 2 fields, found 3"
    assert rows[2].values == {"id": "3", "title": "multi\nline"}
    assert rows[3].error == "line 7: expected 2 fields, found 1"
    assert rows[4].values == {"id": "5", "title": "fine"} and rows[4].line == 8


def test_invalid_json_lines_become_error_rows(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_text('not json\n{"id": "1", "title": "a"}\n\n[1, 2]\n{"id": "2", "title": "b"\n')
    columns, rows = _read(path)
    assert columns == ["id", "title"]
    assert rows[0].error.startswith("line 1: invalid JSON")
    assert rows[1].values == {"id": "1", "title": "a"}
    assert rows[2].error == "line 4: expected a JSON object, found list"
    assert rows[3].error.startswith("line 5: invalid JSON")


def test_non_utf8_bytes_are_replaced_with_a_warning(tmp_path):
    csv_path = tmp_path / "feed.csv"
    csv_path.write_bytes(b"id,title\n1,Caf\xe9 mug\n2,plain\n")
    _, rows = _read(csv_path)
    assert rows[0].values["title"] == "Caf\ufffd mug"
    assert rows[0].warnings == ["invalid UTF-8 bytes in 'title' replaced"]
    assert rows[1].warnings == []
    jsonl_path = tmp_path / "feed.jsonl"
    jsonl_path.write_bytes(b'{"id": "1", "title": "Caf\xe9"}\n')
    _, rows = _read(jsonl_path)
    assert rows[0].values["title"] == "Caf\ufffd" and rows[0].warnings


def test_format_detection_errors(tmp_path):
    assert detect_format("x/feed.NDJSON") == "jsonl"
    assert detect_format("x/Feed.XLSX") == "xlsx"
    with pytest.raises(FeedFormatError, match="--format"):
        detect_format("feed.numbers")
    with pytest.raises(FileNotFoundError, match="feed file not found"):
        FeedReader(tmp_path / "absent.csv")


def test_estimate_rows(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_bytes(_csv_bytes(ROWS))
    with FeedReader(path) as reader:
        assert reader.estimate_rows() == 3


def test_missing_named_column_says_what_was_found():
    with pytest.raises(FeedColumnError, match=r"'Name' \(for title\).*columns found: sku, label"):
        ColumnMap.from_args(["title=Name"]).resolve(["sku", "label"])
    with pytest.raises(FeedColumnError, match="no title, description"):
        ColumnMap().resolve(["sku", "price"])
    with pytest.raises(FeedColumnError, match="expected FIELD=COLUMN"):
        ColumnMap.from_args(["title"])
    with pytest.raises(FeedColumnError, match="unknown product field 'colour'"):
        ColumnMap.from_args(["colour=c"])


def test_exported_column_names_are_found_whatever_their_spelling():
    shopify = ColumnMap().resolve(["Handle", "Title", "Body (HTML)", "Vendor", "Product Category", "Image Src"])
    assert (shopify.id, shopify.title, shopify.description, shopify.brand, shopify.seller_category,
            shopify.image) == ("Handle", "Title", "Body (HTML)", "Vendor", "Product Category", "Image Src")
    human = ColumnMap().resolve([" Product Name ", "Image URL", "Price"])
    assert (human.title, human.image, human.brand) == (" Product Name ", "Image URL", None)
    amazon = ColumnMap().resolve(["item_name", "brand_name", "main_image_url", "product-description"])
    assert (amazon.title, amazon.brand, amazon.image, amazon.description) == (
        "item_name", "brand_name", "main_image_url", "product-description")
    assert ColumnMap().resolve(["Title", "title"]).title == "Title"  # two spelt alike: the first


def test_default_names_and_optional_columns():
    cmap = ColumnMap().resolve(["SKU", "productDisplayName", "image_url"])
    assert (cmap.id, cmap.title, cmap.image, cmap.description) == (
        "SKU",
        "productDisplayName",
        "image_url",
        None,
    )


def test_huge_and_empty_fields():
    cmap = ColumnMap().resolve(["id", "title", "description"])
    product = row_to_product({"id": "", "title": "x" * 5000, "description": None}, cmap, 7)
    assert product.id == "7"
    assert len(product.title) == 1000 and product.description == ""
    assert product.extra["warnings"] == ["title truncated from 5,000 to 1,000 characters"]


def test_multiline_field_with_a_rows_worth_of_commas_is_kept(tmp_path):
    """Issue 22, item 4: a valid quoted field whose inner line has (columns - 1) commas is not a
    runaway quote: Python's csv reads 2 records, so do we (and so does training)."""
    feed = tmp_path / "feed.csv"
    feed.write_text(
        'id,title,description\nSKU1,Linen shirt,"Materials:\ncotton, linen, silk\nMade in Italy"\n'
        'SKU2,Coffee mug,"Dishwasher safe"\n'
    )
    with FeedReader(feed) as reader:
        rows = list(reader)
    assert [r.error for r in rows] == [None, None]
    assert [(r.number, r.values["id"]) for r in rows] == [(1, "SKU1"), (2, "SKU2")]
    assert rows[0].values["description"] == "Materials:\ncotton, linen, silk\nMade in Italy"
    from multimodal_cat.training.feed import read_feed

    table = read_feed(feed)
    assert [r["id"] for r in table.rows] == ["SKU1", "SKU2"] and table.errors == []


def test_field_over_the_csv_modules_limit_is_read_and_capped(tmp_path):
    """Issue 22, item 5: a 200,000-character description (over csv's 131,072 field limit, under
    the 8 MiB line limit) is read; the description is capped with a warning, not an error row."""
    feed = tmp_path / "feed.csv"
    feed.write_text(f"id,title,description\n1,Mug,{'x' * 200_000}\n2,Cup,short\n")
    with FeedReader(feed) as reader:
        rows = list(reader)
    assert [r.error for r in rows] == [None, None]
    assert len(rows[0].values["description"]) == 200_000
    product = row_to_product(rows[0].values, ColumnMap().resolve(["id", "title", "description"]), 1)
    assert len(product.description) == 10_000
    assert any("description" in w for w in product.extra["warnings"])


def test_html_in_text_fields_is_read_as_its_words_and_plain_text_is_untouched():
    from multimodal_cat.feeds.text import plain_text

    cmap = ColumnMap().resolve(["Title", "Body (HTML)", "Image Src"])
    row = {"Title": "Tom &amp; Jerry Tee", "Body (HTML)": "<p>Soft <b>cotton</b><br/>&nbsp;tee</p>"
           "<style>p{color:red}</style>", "Image Src": "https://x.test/a.jpg?a=1&amp=2"}
    product = row_to_product(row, cmap, 1)
    assert (product.title, product.description) == ("Tom & Jerry Tee", "Soft cotton tee")
    assert product.image_ref == "https://x.test/a.jpg?a=1&amp=2"  # a URL is not text to clean
    for text in ("Mesh <3 heart tee", "Size <M>", "5 < 7 > 2", "AT&T phone"):
        assert plain_text(text) == text


def _workbook(path, rows, sheets=1):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    for n in range(1, sheets):
        book.create_sheet(f"sheet {n + 1}")
    book.save(path)
    return path


def test_an_excel_feed_reads_its_first_sheet_as_a_csv_export_would(tmp_path):
    import datetime

    from multimodal_cat.feeds import categorize_feed, read_output
    from multimodal_cat.predictors import DryRunPredictor

    path = _workbook(tmp_path / "feed.xlsx", [
        ["SKU", "Product Name", None, "Added"],
        [1001.0, "Organic <b>Cotton</b> Tee", "x", datetime.datetime(2026, 1, 5)],
        [None, None, None],  # a blank row: skipped, as a CSV's blank line
        ["S2", "Frying pan", None, None, "stray"],  # a value beyond the header: an error row
        ["S3", "", None, None],  # no text, no image: the job's error row
    ], sheets=2)
    with FeedReader(path) as reader:
        assert reader.columns == ["SKU", "Product Name", "C", "Added"]  # a blank header: its letter
        rows = list(reader)
    assert rows[0].values == {"SKU": 1001, "Product Name": "Organic <b>Cotton</b> Tee", "C": "x", "Added": "2026-01-05"}
    assert rows[0].warnings == ["the workbook has 2 sheets; only the first is read"]
    assert (rows[1].line, rows[1].values, "beyond the header" in rows[1].error) == (4, None, True)
    categorize_feed(path, DryRunPredictor(), tmp_path / "out.csv", progress=False)
    out = list(read_output(tmp_path / "out.csv"))
    assert [(r["id"], r["status"]) for r in out] == [("1001", "ok"), ("", "error"), ("S3", "error")]


def test_a_file_that_is_not_a_workbook_is_a_clear_error(tmp_path):
    pytest.importorskip("openpyxl")
    (tmp_path / "feed.xlsx").write_bytes(b"id,title\n1,shirt\n")
    with pytest.raises(FeedFormatError, match="not a readable Excel workbook.*export it as CSV"):
        FeedReader(tmp_path / "feed.xlsx")
    _workbook(tmp_path / "empty.xlsx", [])
    with pytest.raises(FeedFormatError, match="no header row"):
        FeedReader(tmp_path / "empty.xlsx")
    workbook = _workbook(tmp_path / "s.xlsx", [["title"], ["shirt"]])
    with open(workbook, "rb") as stream, FeedReader(stream) as reader:  # a stream (stdin): sniffed
        assert reader.format == "xlsx" and [r.values for r in reader] == [{"title": "shirt"}]
