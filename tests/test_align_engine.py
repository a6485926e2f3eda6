"""Tests for the mapping aligner on small hand-made trees (deterministic fake encoder)."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest

from multimodal_cat.align import MappingAligner, ReRanker
from multimodal_cat.align.embeddings import words
from multimodal_cat.mapping import Mapping, MappingRule
from multimodal_cat.taxonomy import Taxonomy


class BagOfWordsEncoder:
    """Deterministic TextEncoder stand-in: hashed bag of singular words, unit length."""

    key = "test-bag-of-words"
    dim = 512

    def __init__(self) -> None:
        self.calls = 0
        self.kwargs: dict[str, object] = {}

    def encode(
        self, texts, batch_size: int = 64, normalize: bool = True, **kwargs: object
    ) -> np.ndarray:
        self.calls += len(texts)
        self.kwargs = kwargs
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in words(text):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out / norms if normalize else out


def tree(paths: list[str], prefix: str = "") -> Taxonomy:
    return Taxonomy.from_paths(paths, ids=[f"{prefix}{i}" for i in range(len(paths))])


def aligned(source: Taxonomy, target: Taxonomy, **kwargs: object) -> dict[str, str]:
    result = MappingAligner(BagOfWordsEncoder(), cache=False, **kwargs).align(source, target)
    return {
        source[sid].full_path: target[r.target_ids[0]].full_path
        for sid, r in result.mapping.rules.items()
    }


SHOES = ["Shoes", "Shoes > Boots", "Shoes > Sandals", "Shoes > Sneakers"]


def test_equivalent_names_map_one_to_one() -> None:
    got = aligned(tree(SHOES, "s"), tree(list(reversed(SHOES)), "g"))
    assert got == {p: p for p in SHOES}


def test_renamed_category_is_found() -> None:
    source = tree(["Clothing", "Clothing > Tops & T-Shirts", "Clothing > Trousers"])
    target = tree(
        [
            "Apparel",
            "Apparel > Clothing",
            "Apparel > Clothing > T-Shirts",
            "Apparel > Clothing > Trousers",
        ]
    )
    got = aligned(source, target)
    assert got["Clothing"] == "Apparel > Clothing"
    assert got["Clothing > Tops & T-Shirts"] == "Apparel > Clothing > T-Shirts"
    assert got["Clothing > Trousers"] == "Apparel > Clothing > Trousers"


def test_missing_concept_maps_to_ancestor() -> None:
    source = tree(
        ["Shoes", "Shoes > Boots", "Shoes > Boots > Rain Boots", "Shoes > Boots > Snow Boots"]
    )
    target = tree(["Shoes", "Shoes > Boots", "Shoes > Sandals", "Kitchen", "Kitchen > Pans"])
    got = aligned(source, target)
    assert got["Shoes > Boots > Rain Boots"] == "Shoes > Boots"
    assert got["Shoes > Boots > Snow Boots"] == "Shoes > Boots"


def test_empty_and_single_node_trees() -> None:
    empty, one = Taxonomy([]), tree(["Shoes"])
    aligner = MappingAligner(BagOfWordsEncoder(), cache=False)
    assert len(aligner.align(empty, one).mapping) == 0
    assert len(aligner.align(one, empty).mapping) == 0
    result = aligner.align(one, tree(["Footwear"], "g"))
    assert result.mapping.map("0").target_ids == ("g0",)
    assert result.mapping.map("0").provenance == "inferred"


def test_published_rules_are_kept_and_others_inferred() -> None:
    source, target = (
        tree(SHOES, "s"),
        tree(["Footwear", "Footwear > Boots", "Footwear > Sandals"], "g"),
    )
    published = Mapping([MappingRule("s0", ("g0",)), MappingRule("s3", ("g2",))], source, target)
    mapping = (
        MappingAligner(BagOfWordsEncoder(), cache=False)
        .align(source, target, published=published)
        .mapping
    )
    assert mapping.map("s3").target_ids == ("g2",) and mapping.map("s3").provenance == "published"
    assert mapping.map("s1").target_ids == ("g1",) and mapping.map("s1").provenance == "inferred"
    assert 0.0 < mapping.rules["s1"].confidence <= 1.0


def test_review_list_is_least_confident_first(tmp_path) -> None:
    source = tree(SHOES + ["Kitchen", "Kitchen > Woks"], "s")
    target = tree(["Shoes", "Shoes > Boots", "Cookware"], "g")
    result = MappingAligner(BagOfWordsEncoder(), cache=False, review_fraction=0.5).align(
        source, target
    )
    low = [item for item in result.review if item.reason == "low confidence"]
    confidences = [item.confidence for item in low]
    assert len(low) == 3 and confidences == sorted(confidences)
    assert result.review[: len(low)] == low  # the least confident come first
    path = result.write_review_csv(tmp_path / "review.csv")
    rows = list(csv.DictReader(path.open()))
    assert rows[0]["source_id"] == result.review[0].source_id and "runner_up_path" in rows[0]


def test_fit_learns_from_known_rules_of_an_older_tree() -> None:
    old = tree(["Shoes", "Shoes > Boots", "Shoes > Boots > Rain Boots", "Shoes > Sandals"], "o")
    target = tree(["Footwear", "Footwear > Boots", "Footwear > Sandals"], "g")
    known = Mapping(
        [
            MappingRule("o0", ("g0",)),
            MappingRule("o1", ("g1",)),
            MappingRule("o2", ("g1",)),
            MappingRule("o3", ("g2",)),
        ],
        old,
        target,
    )
    aligner = MappingAligner(BagOfWordsEncoder(), cache=False).fit(known)
    assert set(aligner.ranker.weights) <= set(ReRanker().weights)
    new = tree(["Shoes", "Shoes > Boots", "Shoes > Boots > Snow Boots"], "n")
    got = aligner.align(new, target).mapping
    assert got.map("n2").target_ids == ("g1",)


def test_embeddings_are_cached_between_runs(tmp_path) -> None:
    from multimodal_cat.encoders import EmbeddingCache

    source, target = tree(SHOES, "s"), tree(SHOES, "g")
    encoder = BagOfWordsEncoder()
    MappingAligner(encoder, cache=EmbeddingCache(tmp_path)).align(source, target)
    first = encoder.calls
    MappingAligner(encoder, cache=EmbeddingCache(tmp_path)).align(source, target)
    assert first > 0 and encoder.calls == first


def test_other_encoders_get_fp32_unless_bf16_is_asked(tmp_path) -> None:
    from multimodal_cat.encoders import EmbeddingCache

    source, target = tree(SHOES, "s"), tree(SHOES, "g")
    encoder = BagOfWordsEncoder()
    MappingAligner(encoder, cache=False).align(source, target)
    assert encoder.kwargs == {}  # an encode(texts) without bf16/workers keeps working
    MappingAligner(encoder, cache=False, bf16=True, workers=2).align(source, target)
    assert encoder.kwargs == {"bf16": True, "workers": 2}
    cache = EmbeddingCache(tmp_path)
    MappingAligner(encoder, cache=cache, bf16=False).align(source, target)
    fp32 = encoder.calls
    MappingAligner(encoder, cache=cache, bf16=True).align(source, target)
    assert encoder.calls > fp32  # bf16 vectors are cached under their own key
    assert sorted(cache.encoder_keys()) == ["test-bag-of-words", "test-bag-of-words|bf16"]


def test_text_encoder_default_is_the_fast_setting(monkeypatch) -> None:
    import torch

    from multimodal_cat.align.embeddings import encoding_settings
    from multimodal_cat.encoders import TextEncoder, _base

    class Tiny(TextEncoder):
        def __init__(self) -> None:
            self.model = torch.nn.Linear(2, 2)

    assert isinstance(_base.native_bf16("cpu"), bool)
    monkeypatch.setattr(_base, "native_bf16", lambda device: True)
    assert encoding_settings(Tiny(), None, None) == (True, torch.get_num_threads())
    assert encoding_settings(Tiny(), False, 1) == (False, 1)
    monkeypatch.setattr(_base, "native_bf16", lambda device: False)
    assert encoding_settings(Tiny(), None, None)[0] is False
    assert encoding_settings(None, None, None) == (False, 1)


def test_bad_arguments_say_what_was_expected() -> None:
    with pytest.raises(ValueError, match="review_fraction"):
        MappingAligner(None, review_fraction=2.0)
    with pytest.raises(ValueError, match="workers"):
        MappingAligner(None, workers=0)
    with pytest.raises(TypeError, match="text encoder"):
        MappingAligner(3.5).align(tree(SHOES), tree(SHOES))
    with pytest.raises(ValueError, match="unknown"):
        ReRanker({"nope": 1.0}).vector()


def test_unsure_choice_backs_off_to_the_ancestor() -> None:
    # the ancestor is not a root: a non-root source maps to a root only when nothing fits
    source = tree(["Wear", "Wear > Shoes", "Wear > Shoes > Weather Boots"], "s")
    target = tree(
        ["Wear", "Wear > Shoes", "Wear > Shoes > Rain Boots", "Wear > Shoes > Snow Boots"], "g"
    )
    sure = MappingAligner(BagOfWordsEncoder(), cache=False, ancestor_threshold=None)
    assert sure.align(source, target).mapping.map("s2").target_ids in {("g2",), ("g3",)}
    unsure = MappingAligner(BagOfWordsEncoder(), cache=False, ancestor_threshold=0.9)
    assert unsure.align(source, target).mapping.map("s2").target_ids == ("g1",)
