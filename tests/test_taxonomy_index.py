"""The one flat tree index, and that the model head, the metrics and the aligner's view agree with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from multimodal_cat.align.embeddings import TreeView
from multimodal_cat.errors import ConfigurationError
from multimodal_cat.modeling import LabelSpace, MultimodalCatConfig
from multimodal_cat.modeling.configuration import label_space_kwargs
from multimodal_cat.modeling.heads import HierarchicalHead
from multimodal_cat.modeling.testing import tiny_model
from multimodal_cat.taxonomy import Taxonomy, TaxonomyIndex
from multimodal_cat.taxonomy.index import IGNORE_INDEX, PATH_SEPARATOR, path_key, split_path
from multimodal_cat.training.metrics import category_metrics, per_level_accuracy

# 0 A            (root)
# 1 A > B
# 2 A > B > C    (leaf)
# 3 A > B > D    (leaf)
# 4 A > E        (leaf)
# 5 F            (root and leaf)
PATHS = ["A > B > C", "A > B > D", "A > E", "F"]


@pytest.fixture
def index() -> TaxonomyIndex:
    return TaxonomyIndex.from_paths(PATHS, ids=["c", "d", "e", "f"], name="hand")


def test_hand_made_tree(index: TaxonomyIndex) -> None:
    assert index.ids == ["A", "A > B", "c", "d", "e", "f"]
    assert index.names == ["A", "B", "C", "D", "E", "F"]
    assert index.paths == ["A", "A > B", "A > B > C", "A > B > D", "A > E", "F"]
    assert index.parents == [-1, 0, 1, 1, 0, -1]
    assert index.depths == [1, 2, 3, 3, 2, 1]
    assert index.leaves == [2, 3, 4, 5]
    assert index.children == [[1, 4], [2, 3], [], [], [], []]
    assert index.levels == [[0, 5], [1, 4], [2, 3]]
    assert index.ancestors(3) == [0, 1, 3]
    assert index.ancestors(3, include_self=False) == [0, 1]
    assert index.ancestors(5) == [5]
    assert index.ancestor_paths[2] == (0, 1, 2)
    assert index.position("d") == 3 and len(index) == 6 and index.taxonomy_name == "hand"
    assert index.node_index("e") == 4
    assert index.node_index("a >  b > d") == 3  # a path, case and spacing tolerant
    with pytest.raises(KeyError, match="not in this index"):
        index.position("A > B > D")  # position() takes ids only
    with pytest.raises(KeyError, match="Unknown category 'Z'"):
        index.node_index("Z")


def test_taxonomy_to_index_is_the_same_index(index: TaxonomyIndex) -> None:
    tree = Taxonomy.from_paths(PATHS, ids=["c", "d", "e", "f"], name="hand")
    assert tree.to_index() == index
    assert tree.to_index() is tree.to_index()  # built once per tree
    assert TaxonomyIndex.from_taxonomy(tree) is tree.to_index()
    space = LabelSpace.from_taxonomy(tree)
    assert isinstance(space, TaxonomyIndex) and space.parents == index.parents


def test_from_paths_cleans_and_deduplicates() -> None:
    index = TaxonomyIndex.from_paths(["A >  B", "A > B", " A > > C"])
    assert index.paths == ["A", "A > B", "A > C"]
    with pytest.raises(ConfigurationError, match="Empty category path"):
        TaxonomyIndex.from_paths(["A", " > "])
    with pytest.raises(ValueError):  # one id per path
        TaxonomyIndex.from_paths(["A", "B"], ids=["a"])


def test_bad_lists_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="parents must come before children"):
        TaxonomyIndex(["a", "b"], [1, -1], ["a", "b"], ["a", "b"])
    with pytest.raises(ConfigurationError, match="one entry per node"):
        TaxonomyIndex(["a"], [-1, 0], ["a"], ["a"])
    with pytest.raises(ConfigurationError, match="repeats an id"):
        TaxonomyIndex(["a", "a"], [-1, -1], ["a", "b"], ["a", "b"])
    assert len(TaxonomyIndex([], [], [], [])) == 0  # an empty tree has an (empty) index...
    with pytest.raises(ConfigurationError, match="at least one category"):
        LabelSpace([], [], [], [])  # ...but a model needs something to predict


def test_one_path_normaliser_and_separator() -> None:
    assert PATH_SEPARATOR == " > " and IGNORE_INDEX == -100
    assert split_path("  Home >Kitchen  Tools ") == ("Home", "Kitchen Tools")
    assert path_key("HOME >kitchen   tools") == "home > kitchen tools"
    assert path_key(("Home", "Kitchen Tools")) == path_key("home > kitchen tools")
    from multimodal_cat.modeling.heads import IGNORE_INDEX as HEAD_IGNORE
    from multimodal_cat.modeling.labels import normalize_path
    from multimodal_cat.training import data, metrics

    assert normalize_path is path_key
    assert HEAD_IGNORE == metrics.IGNORE_INDEX == data.IGNORE_INDEX == IGNORE_INDEX


def test_head_agrees_with_the_index(index: TaxonomyIndex) -> None:
    space = LabelSpace.from_taxonomy(index)
    head = HierarchicalHead(space, in_dim=4)
    assert head.classifier.out_features == len(index.leaves)
    torch.manual_seed(0)
    out = head(torch.randn(3, 4))
    probs = out.node_log_probs.exp()
    leaf_probs = torch.softmax(out.leaf_logits, dim=-1)
    column = {node: i for i, node in enumerate(index.leaves)}
    for node in range(len(index)):
        under = [leaf for leaf in index.leaves if node in index.ancestors(leaf)]
        expected = leaf_probs[:, [column[leaf] for leaf in under]].sum(-1)
        torch.testing.assert_close(probs[:, node], expected)
    roots = index.levels[0]  # the roots share all the mass
    torch.testing.assert_close(probs[:, roots].sum(-1), torch.ones(3))


def test_metrics_agree_with_the_index(index: TaxonomyIndex) -> None:
    pred = np.array([2, 3, 4, 5, 1])
    true = np.array([2, 2, 4, 4, IGNORE_INDEX])
    by_index = category_metrics(pred, true, index)
    by_parents = category_metrics(pred, true, index.parents)
    assert by_index == by_parents
    # level 1: A,A,A,F vs A,A,A,A -> 3/4; level 2: B,B,E,- vs B,B,E,E -> 3/4; level 3: C,D vs C,C
    assert per_level_accuracy(pred[:4], true[:4], index) == {1: 0.75, 2: 0.75, 3: 0.5}
    assert by_index["leaf_accuracy"] == 0.5 and by_index["valid_path_rate"] == 1.0


def test_tree_view_reads_the_index() -> None:
    tree = Taxonomy.from_paths(PATHS, ids=["c", "d", "e", "f"])
    view = TreeView.from_taxonomy(tree, encoder=None)
    index = tree.to_index()
    assert view.index is index and len(view) == len(index)
    assert (view.ids, view.names, view.paths) == (index.ids, index.names, index.paths)
    assert (view.parents, view.depths, view.children) == (
        index.parents,
        index.depths,
        index.children,
    )
    assert view.ancestors(3) == [3, 1, 0]  # the view lists self first, up to the root
    assert view.ancestors(-1) == []
    assert view.descendants(0, 1) == [1, 4] and view.descendants(0, 2) == [1, 4, 2, 3]
    assert view.top_down() == [0, 5, 1, 4, 2, 3]
    assert view.path_emb.shape == (6, 1) and view.name_words[1] == frozenset({"b"})


def test_saved_config_format_is_unchanged(tmp_path: Path, index: TaxonomyIndex) -> None:
    space = LabelSpace.from_taxonomy(index)
    assert label_space_kwargs(space) == {
        "category_ids": ["A", "A > B", "c", "d", "e", "f"],
        "category_parents": [-1, 0, 1, 1, 0, -1],
        "category_names": ["A", "B", "C", "D", "E", "F"],
        "category_paths": ["A", "A > B", "A > B > C", "A > B > D", "A > E", "F"],
        "taxonomy_name": "hand",
    }
    model = tiny_model(vision=None, text="bert")
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    old_keys = {"category_ids", "category_parents", "category_names", "category_paths"}
    assert old_keys <= set(saved) and "taxonomy_name" in saved
    reloaded = MultimodalCatConfig.from_pretrained(tmp_path).label_space
    assert isinstance(reloaded, LabelSpace) and reloaded == model.label_space
