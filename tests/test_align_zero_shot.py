"""Tests for zero-shot categorization and the ``taxonomy align`` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from multimodal_cat.cli.main import main
from multimodal_cat.mapping import Mapping
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.products import Product
from multimodal_cat.taxonomy import Taxonomy
from tests.test_align_engine import BagOfWordsEncoder

FASHION = [
    "Apparel > Topwear > Tshirts",
    "Apparel > Topwear > Shirts",
    "Apparel > Bottomwear > Jeans",
    "Footwear > Shoes > Casual Shoes",
    "Footwear > Sandal > Sandals",
    "Accessories > Watches > Watches",
]


def test_predicts_valid_paths_with_alternatives() -> None:
    tax = Taxonomy.from_paths(FASHION)
    zs = ZeroShotCategorizer(tax, BagOfWordsEncoder(), cache=False, top_k=3)
    preds = zs.predict(
        ["Nike Men White T-Shirt", Product(id="1", title="Levis Men Blue Jeans"), "Titan Watch"]
    )
    assert [p.category_path for p in preds] == [FASHION[0], FASHION[2], FASHION[5]]
    assert all(p.category_path in FASHION and 0 < p.confidence <= 1 for p in preds)
    assert len(preds[0].alternatives) == 3 and preds[0].alternatives[0].id == preds[0].category_id


def test_predict_proba_rows_sum_to_one() -> None:
    zs = ZeroShotCategorizer(Taxonomy.from_paths(FASHION), BagOfWordsEncoder(), cache=False)
    probs = zs.predict_proba(["red shirt", "casual shoes"])
    assert probs.shape == (2, len(FASHION)) and np.allclose(probs.sum(1), 1.0)
    assert zs.classes_[int(probs[1].argmax())] == FASHION[3]


def test_lexical_only_and_plural_forms() -> None:
    zs = ZeroShotCategorizer(Taxonomy.from_paths(FASHION), None)
    assert zs.predict(["Puma Casual Shoe black"])[0].category_path == FASHION[3]


def test_category_and_product_embeddings_cached_once(tmp_path: Path) -> None:
    from multimodal_cat.encoders import EmbeddingCache

    encoder = BagOfWordsEncoder()
    tax = Taxonomy.from_paths(FASHION)
    ZeroShotCategorizer(tax, encoder, cache=EmbeddingCache(tmp_path)).predict(["shirt"])
    first = encoder.calls
    zs = ZeroShotCategorizer(tax, encoder, cache=EmbeddingCache(tmp_path))
    assert zs.predict(["shirt"])[0].category_path == FASHION[1]
    assert encoder.calls == first  # neither the tree nor the product text is encoded again
    zs.predict(["blue jeans"])
    assert encoder.calls == first + 1  # a new product text is


def test_bf16_reaches_the_encoder() -> None:
    seen: list[object] = []

    class Recording(BagOfWordsEncoder):
        def encode(self, texts, batch_size: int = 64, normalize: bool = True, **kw: object):
            seen.append(kw.get("bf16"))
            return super().encode(texts, batch_size, normalize)

    tax = Taxonomy.from_paths(FASHION)
    ZeroShotCategorizer(tax, Recording(), cache=False, bf16=True).predict(["blue jeans"])
    assert seen[-1] is True


def test_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        ZeroShotCategorizer(Taxonomy([]), None).predict(["x"])
    with pytest.raises(ValueError, match="candidates"):
        ZeroShotCategorizer(Taxonomy.from_paths(FASHION), None, candidates="some")
    with pytest.raises(TypeError, match="str or a Product"):
        ZeroShotCategorizer(Taxonomy.from_paths(FASHION), None).predict([3])


def test_tiny_random_bert_encoder(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel, BertTokenizer

    from multimodal_cat.encoders import TextEncoder

    vocab = tmp_path / "vocab.txt"
    vocab.write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "shirt", "jeans", "shoes"]) + "\n"
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
    )
    encoder = TextEncoder(BertModel(config), BertTokenizer(str(vocab)), name="tiny-bert")
    preds = ZeroShotCategorizer(Taxonomy.from_paths(FASHION), encoder, cache=False).predict(
        ["blue jeans"]
    )
    assert preds[0].category_path in FASHION


def test_cli_align_writes_rules_and_review(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source.txt"
    source.write_text("1 - Shoes\n2 - Shoes > Boots\n3 - Shoes > Boots > Rain Boots\n4 - Kitchen\n")
    target = tmp_path / "target.txt"
    target.write_text("10 - Shoes\n11 - Shoes > Boots\n12 - Kitchen & Dining\n")
    out = tmp_path / "mapping.yml"
    code = main(
        [
            "taxonomy",
            "align",
            str(source),
            str(target),
            "-o",
            str(out),
            "--encoder",
            "none",
            "--review-fraction",
            "1",
        ]
    )
    assert code == 0, capsys.readouterr().err
    mapping = Mapping.from_file(out)
    assert mapping.map("3").target_ids == ("11",)  # Rain Boots -> the ancestor Boots
    assert mapping.map("4").target_ids == ("12",)
    assert (tmp_path / "mapping.review.csv").read_text().startswith("source_id,")
    assert main(["taxonomy", "align", str(source), "nowhere.txt", "-o", str(out)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_title_decides_over_description_and_ies_plurals() -> None:
    tree = Taxonomy.from_paths(
        ["Kitchen > Appliances > Dishwashers", "Kitchen > Drinkware > Mugs", "Apparel > Beanies"]
    )
    mug = Product(id="1", title="Stoneware Mug, Red", description="Dishwasher safe glaze.")
    for encoder in (None, BagOfWordsEncoder()):
        zs = ZeroShotCategorizer(tree, encoder, cache=False)
        paths = [p.category_path for p in zs.predict([mug, "Wool Beanie Hat"])]
        assert paths == ["Kitchen > Drinkware > Mugs", "Apparel > Beanies"]
    with pytest.raises(ValueError, match="title_weight"):
        ZeroShotCategorizer(tree, None, title_weight=2.0)
