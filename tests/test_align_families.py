"""Family matching by names and shape (translated trees), on small hand-made trees."""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.linalg import expm
from test_align_engine import BagOfWordsEncoder, tree

from multimodal_cat.align import MappingAligner
from multimodal_cat.align.embeddings import TreeView
from multimodal_cat.align.families import FamilyMatcher, match_family

TARGET = [
    "Shoes",
    "Shoes > Boots",
    "Shoes > Boots > Rain Boots",
    "Shoes > Boots > Snow Boots",
    "Shoes > Boots > Work Boots",
    "Shoes > Sandals",
    "Shoes > Slippers",
]
# the same tree "in German"; the encoder below confuses Stiefel (boots) with sandals
SOURCE = [
    "Schuhe",
    "Schuhe > Stiefel",
    "Schuhe > Stiefel > Regenstiefel",
    "Schuhe > Stiefel > Schneestiefel",
    "Schuhe > Stiefel > Arbeitsstiefel",
    "Schuhe > Sandalen",
    "Schuhe > Hausschuhe",
]
CONCEPTS = {
    "shoes": {"Shoes": 1.0, "Schuhe": 1.0},
    "boots": {"Boots": 1.0, "Stiefel": 0.6, "Sandalen": 0.8},
    "sandals": {"Sandals": 1.0, "Stiefel": 0.8, "Sandalen": 0.6},
    "rain": {"Rain Boots": 1.0, "Regenstiefel": 1.0},
    "snow": {"Snow Boots": 1.0, "Schneestiefel": 1.0},
    "work": {"Work Boots": 1.0, "Arbeitsstiefel": 1.0},
    "slippers": {"Slippers": 1.0, "Hausschuhe": 1.0},
}


class ConceptEncoder:
    """A 'multilingual' stand-in: a path is its last name's concept vector (plus a little of
    its parent's), names in both languages share concepts; unknown names hash at random."""

    key = "test-concepts"
    dim = 64

    def encode(self, texts, batch_size: int = 64, normalize: bool = True, **kwargs: object):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            parts = [p.strip() for p in text.split(">")]
            for weight, name in ((1.0, parts[-1]), (0.3, parts[-2] if len(parts) > 1 else "")):
                for k, (_, members) in enumerate(CONCEPTS.items()):
                    out[row, k] += weight * members.get(name, 0.0)
                if name and not any(name in m for m in CONCEPTS.values()):
                    out[row, 8 + int(hashlib.md5(name.encode()).hexdigest(), 16) % 56] += weight
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _views(source: list[str], target: list[str], encoder) -> tuple[TreeView, TreeView]:
    return (
        TreeView.from_taxonomy(tree(source, "s"), encoder),
        TreeView.from_taxonomy(tree(target, "g"), encoder),
    )


def test_match_family_is_one_to_one_and_leaves_poor_rows_unmatched() -> None:
    scores = np.array([[0.2, 0.1], [0.3, 0.0]])
    assert match_family(scores)[0].tolist() == [1, 0]  # both prefer 0; the sum decides
    picked, probs = match_family(np.array([[0.5, -3.0], [-2.0, -2.5]]), none_score=-1.0)
    assert picked.tolist() == [0, -1]
    assert probs[1] == 0.0 and 0.5 < probs[0] <= 1.0


def test_shape_fixes_siblings_the_names_confuse() -> None:
    source, target = _views(SOURCE, TARGET, ConceptEncoder())
    family = list(source.children[0])  # Stiefel, Sandalen, Hausschuhe
    text_only = FamilyMatcher(source, target, size_weight=0.0, support_weight=0.0)
    got = {source.names[s]: target.names[g] for s, (g, *_) in text_only.match(family, 0).items()}
    assert got["Stiefel"] == "Sandals"  # the names alone get it wrong ...
    shaped = FamilyMatcher(source, target)
    got = {source.names[s]: target.names[g] for s, (g, *_) in shaped.match(family, 0).items()}
    assert got == {"Stiefel": "Boots", "Sandalen": "Sandals", "Hausschuhe": "Slippers"}


def test_aligner_uses_the_shape_across_languages_with_chained_confidence() -> None:
    src, dst = tree(SOURCE, "s"), tree(TARGET, "g")
    result = MappingAligner(ConceptEncoder(), cache=False).align(src, dst)
    assert result.details["family_structure"] is True  # no shared words: on by default
    rules = result.mapping.rules
    assert {sid: rules[sid].target_ids[0] for sid in rules} == {
        f"s{i}": f"g{i}" for i in range(len(SOURCE))
    }
    for i in (2, 3, 4):  # a child is right only when its parent is
        assert rules[f"s{i}"].confidence <= rules["s1"].confidence
    kinds = {item.kind for item in result.review}
    assert kinds <= {"family-structure"}


def test_shape_does_not_override_a_clear_name_match() -> None:
    # not translations: Boots has children in the source only, Sandals in the target only
    source_paths = ["Shoes", "Shoes > Boots", "Shoes > Boots > Rain Boots"]
    source_paths += ["Shoes > Boots > Snow Boots", "Shoes > Boots > Work Boots", "Shoes > Sandals"]
    target_paths = ["Shoes", "Shoes > Boots", "Shoes > Sandals", "Shoes > Sandals > Flip Flops"]
    target_paths += ["Shoes > Sandals > Slides", "Shoes > Sandals > Sport Sandals"]
    source, target = _views(source_paths, target_paths, BagOfWordsEncoder())
    family = list(source.children[0])
    got = FamilyMatcher(source, target).match(family, 0)
    assert {source.names[s]: target.names[g] for s, (g, *_) in got.items()} == {
        "Boots": "Boots",
        "Sandals": "Sandals",
    }
    aligner = MappingAligner(BagOfWordsEncoder(), cache=False, family_structure=True)
    result = aligner.align(tree(source_paths, "s"), tree(target_paths, "g"))
    assert result.mapping.rules["s1"].target_ids == ("g1",)
    assert result.mapping.rules["s5"].target_ids == ("g2",)


def test_english_pair_keeps_the_candidate_route_by_default() -> None:
    src, dst = tree(TARGET, "s"), tree(TARGET, "g")
    result = MappingAligner(BagOfWordsEncoder(), cache=False).align(src, dst)
    assert result.details["family_structure"] is False
    assert "family-structure" not in {item.kind for item in result.review}


def test_name_map_is_learned_only_from_enough_matches() -> None:
    source, target = _views(SOURCE, TARGET, ConceptEncoder())
    matcher = FamilyMatcher(source, target).refined()
    assert matcher.name_map is None  # 3 confident matches cannot fix a 64-d rotation
    rng = np.random.default_rng(0)
    skew = rng.normal(size=(8, 8)) * 0.15
    rotation = expm(skew - skew.T)  # the "other language": a small rotation of every name
    names = [f"n{i}" for i in range(40)]
    emb = rng.normal(size=(41, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    paths = ["Root", *[f"Root > {n}" for n in names]]
    target_view = TreeView.from_taxonomy(tree(paths, "g"))
    source_view = TreeView.from_taxonomy(tree(paths, "s"))
    target_view.name_emb = target_view.path_emb = emb.astype(np.float32)
    source_view.name_emb = source_view.path_emb = (emb @ rotation.T).astype(np.float32)
    refined = FamilyMatcher(source_view, target_view, size_weight=0.0).refined()
    assert refined.name_map is not None
    mapped = source_view.name_emb @ refined.name_map
    assert np.allclose(mapped, emb, atol=1e-4)  # the rotation between the languages undone
