"""Back-off, joint root assignment, review signals and confidences in mapping.yml,
on small hand-made trees."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import yaml
from test_align_engine import BagOfWordsEncoder, tree

from multimodal_cat.align import MappingAligner
from multimodal_cat.align.backoff import choose, subtree_mass
from multimodal_cat.align.review import OUTSIDE, SIBLINGS, review_list, structure_flags
from multimodal_cat.align.structure import (
    agreement,
    assign_roots,
    descendants,
    outbid_rows,
    votes,
)
from multimodal_cat.cli.main import main
from multimodal_cat.mapping import Mapping

# target tree: 0 root; 1, 2 under it; 3, 4 under 1; 5 under 2
PARENTS = [-1, 0, 0, 1, 1, 2]


def test_back_off_confidence_is_the_subtree_mass() -> None:
    cands, probs = np.array([3, 4, 5, 0]), np.array([0.3, 0.3, 0.3, 0.1])
    choice = choose(PARENTS, cands, probs, threshold=0.5, ahead=3.0)
    assert (choice.position, choice.kind) == (1, "back-off")
    assert choice.confidence == pytest.approx(0.6)  # 3 and 4, not node 1's own probability
    assert subtree_mass(PARENTS, cands, probs)[0] == pytest.approx(1.0)


def test_best_candidate_kept_when_clearly_ahead() -> None:
    cands, probs = np.array([3, 4, 5]), np.array([0.48, 0.1, 0.42])
    assert choose(PARENTS, cands, probs, ahead=3.0).kind == "back-off"
    cands, probs = np.array([3, 4, 5, 0]), np.array([0.48, 0.12, 0.12, 0.28])
    choice = choose(PARENTS, cands, probs, ahead=3.0)  # 0 is on 3's own line, not a rival
    assert (choice.position, choice.kind, choice.confidence) == (3, "best", 0.48)


def test_back_off_stays_with_the_named_answers_not_the_weak_crowd() -> None:
    # 1's children (3, 4, 5: the parent's target's children, each weak) hold more mass than
    # 2's (6 and 7, the two best candidates): the back-off goes to 2, their common ancestor
    parents = [-1, 0, 0, 1, 1, 1, 2, 2]
    cands, probs = np.array([6, 7, 3, 4, 5]), np.array([0.28, 0.2, 0.18, 0.17, 0.17])
    choice = choose(parents, cands, probs, threshold=0.5, ahead=3.0)
    assert (choice.position, choice.kind) == (2, "back-off")
    assert choice.confidence == pytest.approx(0.48)
    # their only common ancestor a target root: the deepest target holding the mass, as before
    parents = [-1, 0, 0, 1, 1, 1, -1, 6, 6]
    cands, probs = np.array([7, 8, 3, 4, 5]), np.array([0.28, 0.2, 0.18, 0.17, 0.17])
    assert choose(parents, cands, probs, threshold=0.5, ahead=3.0).position == 1


def test_no_target_root_for_a_non_root_source_when_a_child_fits() -> None:
    # the mass reaches 0.5 only at the root; the fitting non-root target wins (node 1
    # holds no more mass than its child 3, so the specific 3 is kept)
    cands, probs = np.array([3, 5, 0]), np.array([0.45, 0.35, 0.2])
    choice = choose(PARENTS, cands, probs, threshold=0.5, ahead=10.0)
    assert (choice.position, choice.confidence) == (3, 0.45)
    cands, probs = np.array([3, 4, 5, 0]), np.array([0.25, 0.2, 0.35, 0.2])
    assert choose(PARENTS, cands, probs, threshold=0.5, ahead=10.0).position == 1
    # a source root may back off to a target root
    assert choose(PARENTS, cands, probs, ahead=10.0, source_is_root=True).position == 0
    # and so may any source when the root itself is the best candidate
    cands, probs = np.array([0, 3, 5]), np.array([0.45, 0.3, 0.25])
    assert choose(PARENTS, cands, probs, ahead=10.0).position == 0


def test_aligner_keeps_a_same_named_child_over_the_target_root() -> None:
    source = tree(["Toys", "Toys > Kites", "Toys > Kites > Stunt Kites"], "s")
    target = tree(
        ["Toys", "Toys > Outdoor Toys", "Toys > Outdoor Toys > Kites", "Toys > Dolls"], "g"
    )
    result = MappingAligner(BagOfWordsEncoder(), cache=False).align(source, target)
    for sid in ("s1", "s2"):
        target_id = result.mapping.rules[sid].target_ids[0]
        assert target_id != "g0", f"{sid} mapped to the target root"
    assert result.mapping.rules["s1"].target_ids == ("g2",)


def test_roots_are_assigned_jointly() -> None:
    # both source roots prefer target root 0 alone; jointly, the second takes root 1
    rows = {
        0: (np.array([0, 1]), np.array([0.9, 0.1])),
        1: (np.array([0, 1]), np.array([0.6, 0.4])),
    }
    parents = [-1, -1]
    assert assign_roots(rows, parents, reuse_penalty=5.0) == {0: (0, 0.9), 1: (1, 0.4)}
    assert assign_roots(rows, parents, reuse_penalty=0.0)[1][0] == 0  # each root alone
    # a root may keep a deep (non-root) candidate instead
    rows = {0: (np.array([0, 2]), np.array([0.2, 0.8]))}
    assert assign_roots(rows, [-1, -1, 1])[0] == (2, 0.8)


def test_siblings_share_out_the_children_of_their_parents_target() -> None:
    # target 0 with children 1 and 2; two source siblings both prefer 1
    rows = {
        10: (np.array([0, 1, 2]), np.array([0.05, 0.8, 0.15])),
        11: (np.array([0, 1, 2]), np.array([0.05, 0.5, 0.45])),
    }
    picked = assign_roots(rows, [-1, 0, 0], reuse_penalty=1.0, slot=0)
    assert picked == {10: (1, 0.8), 11: (2, 0.45)}


def test_a_sibling_is_not_given_a_target_another_sibling_matches_better() -> None:
    # GS1 "Bread" (10) and "Tobacco" (11) under a food parent: a joint assignment that gives
    # Tobacco Products (1) to Bread and Food Items (2) to Tobacco swaps them; both are outbid
    rows = {
        10: (np.array([1, 2]), np.array([0.168, 0.038])),
        11: (np.array([1, 2]), np.array([0.216, 0.034])),
    }
    assert outbid_rows({10: (1, 0.168), 11: (2, 0.034)}, rows) == {10, 11}
    assert outbid_rows({10: (2, 0.038), 11: (1, 0.216)}, rows) == set()
    # a target no other sibling scores is never outbid
    rows[12] = (np.array([3]), np.array([0.9]))
    assert 12 not in outbid_rows({10: (2, 0.038), 11: (1, 0.216), 12: (3, 0.9)}, rows)


def test_cosines_are_put_on_the_reference_scale() -> None:
    from multimodal_cat.align.candidates import REFERENCE_COSINE, calibration

    rng = np.random.default_rng(0)
    aligner = MappingAligner(BagOfWordsEncoder(), cache=False)
    view = aligner.view(tree([f"Thing {i}" for i in range(50)], "s"))
    crowded = 0.8 + 0.02 * rng.normal(size=view.path_emb.shape)  # an E5-like narrow band
    view.path_emb = view.name_emb = (
        crowded / np.linalg.norm(crowded, axis=1, keepdims=True)
    ).astype(np.float32)
    scale, shift = calibration(view, view)["path"]
    sims = (view.path_emb[:40] * view.path_emb[10:50]).sum(axis=1) * scale + shift
    assert abs(float(np.mean(sims)) - REFERENCE_COSINE["path"][0]) < 0.1 and scale > 1


def test_descendants_votes_decide_a_reworded_root() -> None:
    # "Garments" shares no word with "Clothing", but its children land under Clothing
    source = tree(["Garments", "Garments > Shirts", "Garments > Dresses", "Kitchen"], "s")
    target = tree(["Clothing", "Clothing > Shirts", "Clothing > Dresses", "Cookware"], "g")
    aligner = MappingAligner(BagOfWordsEncoder(), cache=False)
    s_view, t_view = aligner.view(source), aligner.view(target)
    vote = votes(s_view, t_view, [-1] * len(s_view))
    support = agreement(t_view.parents, descendants(s_view), vote, 0, np.array([0, 3]))
    assert support.tolist() == [1.0, 0.0]
    result = aligner.align(source, target)
    assert result.mapping.rules["s0"].target_ids == ("g0",)
    assert result.mapping.rules["s1"].target_ids == ("g1",)
    assert result.mapping.rules["s3"].target_ids == ("g3",)
    off = MappingAligner(BagOfWordsEncoder(), cache=False, structure_weight=0.0)
    assert off.align(source, target).mapping.rules["s0"].confidence < (
        result.mapping.rules["s0"].confidence
    )


def test_review_flags_confident_rules_whose_siblings_disagree() -> None:
    from multimodal_cat.align.infer import ReviewItem

    # source 0 with children 1..4; targets: 0 root, 1 and 2 under it, 3 under 1
    s_parents, t_parents = [-1, 0, 0, 0, 0], [-1, 0, 0, 1]
    chosen = {0: 1, 1: 3, 2: 3, 3: 3, 4: 2}
    items = {s: ReviewItem(f"s{s}", "", f"g{g}", "", 0.99) for s, g in chosen.items()}
    flags = structure_flags(items, s_parents, t_parents, chosen)
    assert flags == {4: OUTSIDE}  # leaves the parent's target 1 and its siblings' branch
    chosen[4] = 1
    t_parents = [-1, -1, 0, 1]  # now 2 is in another top-level branch than 3
    chosen = {0: 0, 1: 2, 2: 2, 3: 2, 4: 3}
    flags = structure_flags(items, s_parents, t_parents, chosen)
    assert flags[4] == OUTSIDE and 1 not in flags
    items[1] = ReviewItem("s1", "", "g2", "", 0.1)
    listed = review_list(items, s_parents, t_parents, chosen, fraction=0.0, below=0.5)
    assert [(i.source_id, i.reason) for i in listed] == [("s1", "low confidence"), ("s4", OUTSIDE)]
    assert SIBLINGS != OUTSIDE


def test_confidences_round_trip_through_mapping_yml(tmp_path) -> None:
    source = tree(["Shoes", "Shoes > Boots", "Shoes > Weather Boots", "Bags"], "s")
    target = tree(["Shoes", "Shoes > Boots", "Shoes > Rain Boots", "Luggage"], "g")
    published = Mapping([], source, target)
    mapping = (
        MappingAligner(BagOfWordsEncoder(), cache=False)
        .align(source, target, published=published)
        .mapping
    )
    path = mapping.to_yaml(tmp_path / "mapping.yml")
    back = Mapping.from_file(path)
    assert back.rules == mapping.rules
    assert {r.provenance for r in back.rules.values()} == {"inferred"}
    assert all(0.0 < r.confidence <= 1.0 for r in back.rules.values())
    # a reader of Shopify's format finds the usual keys in every rule
    raw = yaml.safe_load(path.read_text())
    for rule in raw["rules"]:
        assert rule["input"]["product_category_id"] and rule["output"]["product_category_id"]
        assert set(rule) == {"input", "output", "confidence", "provenance"}


def test_a_bad_confidence_in_mapping_yml_is_a_clear_error(tmp_path) -> None:
    from multimodal_cat.mapping.errors import MappingFormatError

    path = tmp_path / "bad.yml"
    path.write_text(
        "rules:\n- input:\n    product_category_id: a\n  output:\n    product_category_id:\n"
        "    - b\n  confidence: 1.7\n  provenance: inferred\n"
    )
    with pytest.raises(MappingFormatError, match="confidence in"):
        Mapping.from_file(path)


def test_cli_align_writes_confidences_and_review_reasons(tmp_path, capsys) -> None:
    src, dst = tmp_path / "src.txt", tmp_path / "dst.txt"
    src.write_text("1 - Shoes\n2 - Shoes > Boots\n3 - Shoes > Boots > Rain Boots\n4 - Bags\n")
    dst.write_text("10 - Shoes\n11 - Shoes > Boots\n12 - Luggage & Bags\n")
    out = tmp_path / "mapping.yml"
    code = main(
        ["taxonomy", "align", str(src), str(dst), "-o", str(out), "--encoder", "none"]
        + ["--review-fraction", "0", "--review-below", "0.99"]
    )
    assert code == 0
    mapping = Mapping.from_file(out)
    assert mapping.rules["3"].target_ids == ("11",) and mapping.rules["3"].provenance == "inferred"
    rows = list(csv.DictReader(out.with_suffix(".review.csv").open()))
    assert rows and all(float(r["confidence"]) < 0.99 for r in rows)
    assert {r["reason"] for r in rows} == {"low confidence"}
    assert "to review" in capsys.readouterr().err
    bad = ["taxonomy", "align", str(src), str(dst), "-o", str(out), "--review-below", "2"]
    assert main(bad) == 2
    assert "expected --review-below between 0 and 1" in capsys.readouterr().err


def test_a_generic_head_word_is_no_evidence_of_the_same_kind() -> None:
    from multimodal_cat.align.candidates import FEATURE_NAMES, build_index, candidate_features
    from multimodal_cat.align.embeddings import TreeView

    # a source tree whose names mostly end in "Products" (as GS1's): Bread Products and
    # Tobacco Products share only that word; Rain Boots and Boots share a real head noun
    kinds = ["Bread", "Dairy", "Tobacco", "Meat", "Fish", "Egg", "Fruit", "Nut", "Tea", "Rice"]
    source = tree(["Food", *[f"Food > {k} Products" for k in kinds], "Food > Rain Boots"], "s")
    target = tree(["Food", "Food > Tobacco Products", "Food > Boots"], "g")
    s_view, t_view = TreeView.from_taxonomy(source), TreeView.from_taxonomy(target)
    index = build_index(s_view, t_view)
    assert "product" in index.generic_heads and "boot" not in index.generic_heads
    head = FEATURE_NAMES.index("head_eq")
    cands, feats = candidate_features(
        s_view, t_view, index, s_view.names.index("Bread Products"), 0
    )
    assert feats[list(cands).index(1), head] == 0.0
    cands, feats = candidate_features(s_view, t_view, index, s_view.names.index("Rain Boots"), 0)
    assert feats[list(cands).index(2), head] == 1.0


def test_siblings_backed_off_to_one_broad_target_are_not_shared_out(monkeypatch) -> None:
    # two sibling families unsure among Food Items' children back off to Food Items; sharing
    # that out as a conflict sent one to Tobacco Products (GS1's Bread -> Tobacco Products)
    source = tree(["Food", "Food > Bread Things", "Food > Milk Things"], "s")
    target = tree(
        [
            "Food",
            "Food > Food Items",
            "Food > Tobacco Products",
            "Food > Food Items > Bread",
            "Food > Food Items > Milk",
        ],
        "g",
    )
    original = MappingAligner._scored

    def scored(self, ctx, s, anchor):  # noqa: ANN001, ANN202
        if ctx.source.parents[s] < 0:
            return original(self, ctx, s, anchor)
        pos = {n: i for i, n in enumerate(ctx.target.names)}
        names = ["Tobacco Products", "Food Items", "Bread", "Milk", "Food"]
        # best: Tobacco Products alone; the mass (0.5) lies under Food Items: a back-off
        return np.array([pos[n] for n in names]), np.array([0.26, 0.1, 0.2, 0.2, 0.24])

    monkeypatch.setattr(MappingAligner, "_scored", scored)
    result = MappingAligner(BagOfWordsEncoder(), cache=False).align(source, target)
    assert result.mapping.rules["s0"].target_ids == ("g0",)
    assert {result.mapping.rules[s].target_ids for s in ("s1", "s2")} == {("g1",)}


def test_a_source_root_does_not_keep_a_deep_target_it_is_unsure_of(monkeypatch) -> None:
    # the root's best candidates are two leaves under "Tools", neither ahead of the other:
    # the root takes "Tools", which holds them, not one leaf (and its subtree after it)
    source = tree(["Power Things"], "s")
    target = tree(
        [
            "Hardware",
            "Hardware > Tools",
            "Hardware > Tools > Drills",
            "Hardware > Tools > Saws",
            "Garden",
        ],
        "g",
    )

    def scored(self, ctx, s, anchor):  # noqa: ANN001, ANN202
        pos = {n: i for i, n in enumerate(ctx.target.names)}
        return np.array([pos["Drills"], pos["Saws"], pos["Garden"]]), np.array([0.35, 0.35, 0.3])

    monkeypatch.setattr(MappingAligner, "_scored", scored)
    aligner = MappingAligner(BagOfWordsEncoder(), cache=False, family_structure=False)
    assert aligner.align(source, target).mapping.rules["s0"].target_ids == ("g1",)


def test_a_rule_under_its_parents_target_is_no_surer_than_its_parents() -> None:
    from types import SimpleNamespace

    from multimodal_cat.align.result import ReviewItem
    from multimodal_cat.align.review import parent_capped

    # source 0 > 1 > 2 and 0 > 3; target 0 > 1 > 2, and 3 elsewhere (a root)
    items = {
        0: ReviewItem("a", "A", "t0", "T", 0.3),
        1: ReviewItem("b", "A > B", "t1", "T > U", 0.9),
        2: ReviewItem("c", "A > B > C", "t2", "T > U > V", 0.8),
        3: ReviewItem("d", "A > D", "t3", "W", 0.7),
    }
    source = SimpleNamespace(parents=[-1, 0, 1, 0], top_down=lambda: [0, 1, 3, 2])
    chosen = {0: 0, 1: 1, 2: 2, 3: 3}
    # 1 and 2 sit under their parents' targets: capped at 0.3, passed down; 3 left its
    # parent's branch (its own evidence): left alone
    assert parent_capped(items, source, [-1, 0, 1, -1], chosen) == {1: 0.3, 2: 0.3}
