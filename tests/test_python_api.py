"""The Python API's one input rule and its tables (issue 21): every case the newcomer review
found failing quietly, on a tiny checkpoint and on the fashion data as it comes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from multimodal_cat.categorizer import Categorizer, CategorizerError, UnknownLabelWarning
from multimodal_cat.encoders import EmbeddingCache
from multimodal_cat.errors import MultimodalCatError
from multimodal_cat.feeds.columns import FeedColumnError
from multimodal_cat.inputs import NO_INPUT, InputTypeError, to_products
from multimodal_cat.predictors.checkpoint import ModelPredictor

pd = pytest.importorskip("pandas")
FASHION = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fashion"


@pytest.fixture()
def categorizer(tiny_checkpoint: Path, tmp_path: Path) -> Categorizer:
    return Categorizer(ModelPredictor.from_pretrained(str(tiny_checkpoint), cache=EmbeddingCache(tmp_path)))


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos" / "images"
    folder.mkdir(parents=True)
    for name, colour in (("1.jpg", "red"), ("2.jpg", "blue")):
        Image.new("RGB", (40, 40), colour).save(folder / name)
    return folder.parent


def _fashion_like(photos: Path) -> pd.DataFrame:
    """Columns as the fashion CSV names them: productDisplayName, relative image paths."""
    return pd.DataFrame(
        {
            "id": [1, 2, 3],
            "articleType": ["Apparel > Shoes > Boots", "Apparel > Shirts", "Space > Rockets"],
            "productDisplayName": ["red leather boots", "blue cotton shirt", "red shirt"],
            "image": ["images/1.jpg", "images/2.jpg", float("nan")],
        },
        index=["a", "b", "c"],
    )


def test_dataframe_as_it_comes_finds_title_and_images(categorizer: Categorizer, photos: Path) -> None:
    frame = _fashion_like(photos)
    products = to_products(frame, image_root=photos)
    assert [p.title for p in products] == list(frame["productDisplayName"])
    assert [p.has_image for p in products] == [True, True, False]  # NaN image: no image, no crash
    predictions = categorizer.predict(frame, image_root=photos)
    assert [p.status for p in predictions] == ["ok", "ok", "ok"]
    assert [p.inputs for p in predictions] == ["text+image", "text+image", "text"]


def test_frame_with_a_spreadsheet_s_column_names_is_read(categorizer: Categorizer, photos: Path) -> None:
    frame = pd.DataFrame({"Product Name": ["red leather boots", "blue cotton shirt"],
                          "Image URL": ["images/1.jpg", "images/2.jpg"], "Price": [9.5, 12.0]})
    predictions = categorizer.predict(frame, image_root=photos)
    assert [p.inputs for p in predictions] == ["text+image", "text+image"]


def test_frame_without_usable_columns_lists_what_it_found(categorizer: Categorizer) -> None:
    frame = pd.DataFrame({"sku": [1], "price": [9.5]})
    with pytest.raises(FeedColumnError, match=r"columns found: sku, price.*title") as caught:
        categorizer.predict(frame)
    assert "columns={'title'" in str(caught.value)


def test_columns_override_and_blank_rows_are_errors_not_answers(categorizer: Categorizer) -> None:
    frame = pd.DataFrame({"Name": ["red boots", "   ", None]})
    predictions = categorizer.predict(frame, columns={"title": "Name"})
    assert [p.status for p in predictions] == ["ok", "error", "error"]
    assert predictions[1].error == NO_INPUT and predictions[1].category_id == ""


def test_plain_inputs_are_titles_and_paths_are_feeds(categorizer: Categorizer, tmp_path: Path) -> None:
    one = to_products("Men's Running Shoes")
    assert len(one) == 1 and one[0].title == "Men's Running Shoes"
    for titles in (["a", "b"], pd.Series(["a", "b"]), np.array(["a", "b"]), ("a", "b")):
        assert [p.title for p in to_products(titles)] == ["a", "b"]
    feed = tmp_path / "feed.csv"
    feed.write_text("id,title\nx1,red boots\nx2,blue shirt\n")
    assert [p.id for p in to_products(feed)] == ["x1", "x2"]
    assert len(categorizer.predict_feed(feed)) == 2
    with pytest.raises(InputTypeError, match="found int"):
        to_products(42)
    assert issubclass(InputTypeError, TypeError) and issubclass(InputTypeError, MultimodalCatError)


def test_unreadable_feed_rows_are_kept_as_errors(categorizer: Categorizer, tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"title": "red boots"}\n{not json\n{"title": "blue shirt"}\n')
    predictions = categorizer.predict(feed)
    assert [p.status for p in predictions] == ["ok", "error", "ok"]


def test_missing_image_is_degraded_with_a_warning(categorizer: Categorizer, tmp_path: Path) -> None:
    frame = pd.DataFrame({"title": ["red boots"], "image": ["nowhere.jpg"]})
    prediction = categorizer.predict(frame, image_root=tmp_path)[0]
    assert prediction.status == "degraded" and "predicted from text only" in prediction.warnings[-1]
    alone = categorizer.predict([{"image": str(tmp_path / "nowhere.jpg")}])[0]
    assert alone.status == "error" and "image could not be used" in alone.error


def test_as_frame_has_the_input_index_and_flat_columns(categorizer: Categorizer, photos: Path, tmp_path: Path) -> None:
    frame = _fashion_like(photos)
    out = categorizer.predict(frame, image_root=photos, as_frame=True, review_below=0.5)
    assert list(out.index) == ["a", "b", "c"]
    for column in ("id", "status", "category_id", "category_path", "level_1", "level_2", "confidence",
                   "alternatives", "tags", "tag_color", "needs_review", "review_reason", "warnings", "error"):
        assert column in out.columns, column
    first = out.loc["a"]
    assert first["category_path"].startswith(first["level_1"])
    assert isinstance(first["alternatives"], list) and first["alternatives"][0]["path"] == first["category_path"]
    assert out["confidence"].dtype == float
    out.to_parquet(tmp_path / "out.parquet")
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert back.loc["a", "alternatives"][0]["path"] == first["category_path"]  # a list, not a JSON string


def test_predict_proba_frame_has_paths_as_columns_and_nan_for_errors(categorizer: Categorizer) -> None:
    proba = categorizer.predict_proba(pd.Series(["red boots", ""], index=[10, 11]), as_frame=True)
    assert list(proba.index) == [10, 11]
    assert "Apparel > Shoes > Boots" in proba.columns
    assert proba.loc[10].sum() == pytest.approx(1.0, rel=1e-5) and proba.loc[11].isna().all()


def test_mappings_answer_to_the_short_tree_name() -> None:
    from multimodal_cat.predictions import MappingKeyError, Prediction

    prediction = Prediction("aa-1-1", "x", 0.9, mappings={"google/2021-09-21": "mapped"})
    assert prediction.mappings["google"] == "mapped" and "google" in prediction.mappings
    with pytest.raises(KeyError, match="no mapping into 'shopify'"):
        prediction.mappings["shopify"]
    assert issubclass(MappingKeyError, MultimodalCatError)


def test_evaluate_takes_image_root_label_columns_and_warns_on_unknown_labels(
    categorizer: Categorizer, photos: Path
) -> None:
    frame = _fashion_like(photos)
    with pytest.warns(UnknownLabelWarning, match="1 of 3 labels are not categories"):
        report = categorizer.evaluate(frame, "articleType", image_root=photos)
    assert report.unknown_labels == ["Space > Rockets"]
    with pytest.raises(CategorizerError, match="no label column 'nope'"):
        categorizer.evaluate(frame, "nope")


def test_target_precision_needs_a_stored_threshold(categorizer: Categorizer) -> None:
    with pytest.raises(CategorizerError, match="no stored threshold for precision 0.98"):
        categorizer.predict("red boots", target_precision=0.98)
    assert categorizer.predict("red boots")[0].needs_review is None


def test_fit_on_a_dataframe_then_score(tiny_encoders: tuple[str, str], photos: Path, tmp_path: Path) -> None:
    vision, text = tiny_encoders
    rows = []
    for i in range(24):
        kind = ["Apparel > Shoes > Boots", "Apparel > Shirts", "Home > Kitchen > Mugs"][i % 3]
        rows.append({"Name": ["red boots", "blue shirt", "black mug"][i % 3], "kind": kind,
                     "color": ["red", "blue", "black"][i % 3], "image": f"images/{1 + i % 2}.jpg"})
    frame = pd.DataFrame(rows)
    cat = Categorizer.fit(
        frame, label="kind", tags=["color"], columns={"title": "Name"}, image_root=photos,
        output_dir=tmp_path / "ckpt", vision_encoder=vision, text_encoder=text,
        num_train_epochs=2, per_device_train_batch_size=8, eval_split=0.25, seed=0,
    )
    assert (tmp_path / "ckpt" / "config.json").exists()
    assert {t.attribute for t in cat.predict({"Name": "red boots"}, columns={"title": "Name"})[0].tags} == {"color"}
    score = cat.score(frame, "kind", columns={"title": "Name"}, image_root=photos)
    assert 0.0 <= score <= 1.0


@pytest.mark.skipif(not (FASHION / "styles_with_images.csv").exists(), reason="shared fashion data absent")
def test_fashion_csv_as_it_comes(categorizer: Categorizer) -> None:
    frame = pd.read_csv(FASHION / "styles_with_images.csv", nrows=5)
    products = to_products(frame, image_root=FASHION)
    assert all(p.title and p.has_image for p in products)


def test_a_label_column_named_category_is_the_answer_never_an_input() -> None:
    """'category' is also the seller-category alias: as the label it must not leak into the engine."""
    from multimodal_cat.inputs import column_values, to_products

    frame = pd.DataFrame({"title": ["red shoe"], "category": ["Apparel > Shoes"]})
    assert to_products(frame)[0].seller_category == "Apparel > Shoes"  # an input when not the label
    product = to_products(frame, answers="category")[0]
    assert product.seller_category in (None, "")
    assert column_values([product], "category") == ["Apparel > Shoes"]
