"""CatalogIndex: exact and usearch search, ids, encoder checks, add, remove, branches, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from multimodal_cat.catalog.index import CatalogIndex, CatalogIndexError
from multimodal_cat.errors import MultimodalCatError


def _vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def _index(n: int = 50, threshold: int = 20_000) -> CatalogIndex:
    index = CatalogIndex(encoders={"text": "text:a", "image": "image:b"}, ann_threshold=threshold)
    categories = ["Apparel > Shoes > Boots" if i % 2 else "Home > Kitchen" for i in range(n)]
    index.add(
        [f"p{i}" for i in range(n)], text=_vectors(n), image=_vectors(n, 8, 1),
        categories=categories, records=[{"title": f"t{i}"} for i in range(n)],
    )
    return index


def test_search_finds_the_product_itself_first_and_kinds() -> None:
    index = _index()
    assert index.kinds == ["text", "image", "fused"]
    hits = index.search(index.vectors_of("text")[[3]], kind="text", k=5)[0]
    assert hits[0][0] == "p3" and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert len(hits) == 5 and [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_within_restricts_to_a_branch_and_unknown_branch_is_an_error() -> None:
    index = _index()
    hits = index.search(index.vectors_of("fused")[[2]], kind="fused", k=10, within="Apparel > Shoes")
    assert hits[0] and all(int(i[1:]) % 2 == 1 for i, _ in hits[0])
    with pytest.raises(CatalogIndexError, match="no branch") as error:
        index.search(index.vectors_of("fused")[[2]], kind="fused", within="Apparel > Hats")
    assert isinstance(error.value, MultimodalCatError) and isinstance(error.value, ValueError)
    assert "apparel" in str(error.value)  # suggests close branches


def test_another_encoder_is_refused() -> None:
    index = _index()
    index.check_encoder("text", "text:a")
    with pytest.raises(CatalogIndexError, match="made with encoder 'text:a'"):
        index.check_encoder("text", "text:other")


def test_add_replaces_and_remove_by_id(tmp_path) -> None:
    index = _index(10)
    index.add(["p1", "new"], text=_vectors(2, seed=5), image=np.zeros((2, 8), np.float32))
    assert len(index) == 11 and "new" in index
    assert not index.has["image"][index.row_of("new")]  # a product without a photo
    assert index.remove(["p1", "p2"]) == 2 and "p1" not in index
    with pytest.raises(CatalogIndexError, match="not in the index"):
        index.remove(["nope"])
    hits = index.search(index.vectors_of("image"), kind="image", k=20)
    assert all(i != "new" for row in hits for i, _ in row)  # no image: never an image hit
    loaded = CatalogIndex.load(index.save(tmp_path / "idx"))
    assert loaded.ids == index.ids and loaded.encoders == index.encoders
    assert np.allclose(loaded.vectors_of("fused"), index.vectors_of("fused"))
    assert loaded.records[0]["category"] == index.records[0]["category"]


def test_load_of_a_folder_without_index_is_clear(tmp_path) -> None:
    with pytest.raises(CatalogIndexError, match="expected a catalog index folder"):
        CatalogIndex.load(tmp_path)


def test_usearch_backend_above_threshold_agrees_with_exact() -> None:
    pytest.importorskip("usearch")
    index = _index(400, threshold=100)
    assert index.backend == "usearch"
    queries = index.vectors_of("text")[:20] + 0.05 * _vectors(20, seed=9)
    ann = index.search(queries, kind="text", k=10)
    exact = index.search(queries, kind="text", k=10, exact=True)
    recall = np.mean([len({i for i, _ in a} & {i for i, _ in e}) / 10 for a, e in
                      zip(ann, exact, strict=True)])
    assert recall >= 0.9
    index.remove(["p0"])
    assert all(i != "p0" for row in index.search(queries, kind="text", k=10) for i, _ in row)
    index.add(["z"], text=queries[:1], image=_vectors(1, 8))
    assert index.search(queries[:1], kind="text", k=1)[0][0][0] == "z"


def test_saved_graphs_are_loaded_not_rebuilt(tmp_path, monkeypatch) -> None:
    pytest.importorskip("usearch")
    index = _index(300, threshold=100)
    index.remove(["p5"])
    folder = index.save(tmp_path / "idx")
    assert (folder / "fused.usearch").is_file()
    from multimodal_cat.catalog import backends

    def no_build(self, labels, vectors):
        raise AssertionError("the graph was rebuilt instead of loaded")

    monkeypatch.setattr(backends.USearchBackend, "add", no_build)
    loaded = CatalogIndex.load(folder)
    assert loaded.backend == "usearch"
    queries = index.vectors_of("text")[:5]
    assert loaded.search(queries, kind="text", k=5) == index.search(queries, kind="text", k=5)


def test_one_modality_index_keeps_no_fused_copy() -> None:
    from multimodal_cat.catalog.similar import similar

    index = CatalogIndex(encoders={"text": "text:a"})
    index.add(["a", "b", "c"], text=_vectors(3))
    assert index.kinds == ["text"]
    table = similar(index, id="a", k=2)
    assert list(table["kind"]) == ["text", "text"] and "a" not in set(table["id"])


def test_same_kind_reranks_by_the_neighbourhoods_category_and_keeps_the_query_first() -> None:
    from multimodal_cat.catalog.index import CatalogIndex

    query = np.array([1.0, 0, 0, 0], np.float32)
    near = [np.array(v, np.float32) for v in ([0.95, 0.31, 0, 0], [0.9, 0, 0.43, 0],
                                              [0.88, 0, 0, 0.47], [0.86, 0, -0.51, 0])]
    index = CatalogIndex(encoders={"text": "t"})
    index.add(["self", "odd", "a1", "a2", "a3"], text=np.stack([query, *near]),
              categories=["Shoes > Boots", "Home > Mugs", "Shoes > Boots", "Shoes > Boots",
                          "Shoes > Boots"])
    plain = [i for i, _ in index.search(query, kind="text", k=5)[0]]
    assert plain[:2] == ["self", "odd"]
    ranked = [i for i, _ in index.search(query, kind="text", k=5, same_kind=0.5)[0]]
    assert ranked[0] == "self" and ranked[-1] == "odd"  # the odd kind goes last


def test_fused_vectors_weight_text_and_image() -> None:
    from multimodal_cat.catalog.index import fuse

    text = np.array([[1.0, 0.0]], np.float32)
    image = np.array([[0.0, 1.0]], np.float32)
    fused = fuse(text, image, text_weight=0.8)
    assert np.allclose(fused, [[0.8, 0.0, 0.0, 0.6]])
    with pytest.raises(CatalogIndexError, match="text weight"):
        fuse(text, image, text_weight=1.5)


def test_the_ann_path_names_the_right_products_after_replace_remove_and_load(tmp_path) -> None:
    index = _index(40, threshold=0)  # usearch from the first row
    index.add(["p3", "late"], text=_vectors(2, seed=7), image=_vectors(2, 8, 8))  # p3 replaced
    index.remove(["p0", "p10"])
    index.add(["p0"], text=_vectors(1, seed=9), image=_vectors(1, 8, 10))  # back, new label
    for current in (index, CatalogIndex.load(index.save(tmp_path / "ix"))):
        for product in ("p3", "late", "p0", "p25"):
            query = current.vectors_of("text")[[current.row_of(product)]]
            assert current.search(query, kind="text", k=1)[0][0][0] == product


def _two_kinds(n: int = 40) -> tuple[CatalogIndex, list[str]]:
    """Text dimension 0 says A, dimension 1 says B; images likewise (dimensions 2 and 3)."""
    rng = np.random.default_rng(0)
    categories = ["A > a" if i % 2 else "B" for i in range(n)]
    text = rng.normal(0, 0.3, (n, 6)).astype(np.float32)
    image = rng.normal(0, 0.3, (n, 6)).astype(np.float32)
    for i, category in enumerate(categories):
        text[i, 0 if category == "A > a" else 1] += 2.0
        image[i, 2 if category == "A > a" else 3] += 2.0
    index = CatalogIndex(encoders={"text": "t", "image": "i"})
    index.add([f"p{i}" for i in range(n)], text=text, image=image, categories=categories)
    return index, categories


def test_kind_probes_predict_each_modality_and_fused_queries() -> None:
    index, categories = _two_kinds()
    probes = index.learn_kinds()
    assert set(probes) == {"text", "image"} and probes["text"].classes == ["A > a", "B"]
    for kind in ("text", "image", "fused"):
        predicted = index.query_kinds(index.vectors_of(kind), kind).argmax(axis=1)
        assert [probes["text"].classes[c] for c in predicted] == categories
    title_only = np.hstack([index.vectors_of("text")[:2], np.zeros((2, 6), np.float32)])
    assert index.query_kinds(title_only, "fused").argmax(axis=1).tolist() == [1, 0]


def test_kind_probes_read_back_only_the_sampled_rows(monkeypatch) -> None:
    from multimodal_cat.catalog import index as index_module
    from multimodal_cat.catalog.probes import probe_rows

    index, categories = _two_kinds()
    read: list[int] = []
    vectors_of = index.vectors_of
    monkeypatch.setattr(index, "vectors_of", lambda kind, rows=None: read.append(
        len(rows) if rows is not None else len(index)) or vectors_of(kind, rows))
    monkeypatch.setattr(index_module, "probe_rows", lambda n: probe_rows(n, max_rows=5))
    probes = index.learn_kinds()
    assert read == [5, 5]  # one sample per modality, not every row
    shares = [categories.count(c) / len(categories) for c in probes["text"].classes]
    assert probes["text"].prior.tolist() == pytest.approx(shares)  # counted on every row


def test_same_kind_reranks_by_the_query_predicted_category() -> None:
    from multimodal_cat.catalog.probes import KindProbe

    index = CatalogIndex(encoders={"text": "t"})
    near_b = np.array([[1.0, 0.1 * i, 0.0] for i in range(1, 7)], np.float32)
    far_a = np.array([[1.0, 0.0, 0.6 + 0.1 * i] for i in range(3)], np.float32)
    index.add([f"b{i}" for i in range(6)] + ["a0", "a1", "a2"], text=np.vstack([near_b, far_a]),
              categories=["B"] * 6 + ["A"] * 3)
    query = np.array([[1.0, 0.0, 0.0]], np.float32)
    # without probes the pool's own shares favour B, the nearer and more numerous
    assert index.search(query, kind="text", k=3, same_kind=1.0)[0][0][0].startswith("b")
    says_a = KindProbe(["A", "B"], np.zeros((2, 3), np.float32),
                       np.array([5.0, 0.0], np.float32), np.array([0.3, 0.7]))
    index.kind_probes = {"text": says_a}
    hits = index.search(query, kind="text", k=3, same_kind=1.0)[0]
    assert sorted(i for i, _ in hits) == ["a0", "a1", "a2"]


def test_kind_probes_saved_loaded_and_dropped_on_change(tmp_path) -> None:
    index, _ = _two_kinds()
    index.learn_kinds()
    loaded = CatalogIndex.load(index.save(tmp_path / "idx"))
    assert set(loaded.kind_probes) == {"text", "image"}
    np.testing.assert_allclose(loaded.kind_probes["image"].coef, index.kind_probes["image"].coef)
    query = index.vectors_of("fused")[:3]
    np.testing.assert_allclose(loaded.query_kinds(query, "fused"), index.query_kinds(query, "fused"))
    loaded.remove(["p0"])  # still a probe of the same tree
    assert set(loaded.kind_probes) == {"text", "image"}
    loaded.add(["new"], text=np.ones((1, 6), np.float32), categories=["C"])  # a new category
    assert loaded.kind_probes == {} and loaded.query_kinds(query, "fused") is None
    loaded.save(tmp_path / "idx")
    assert not (tmp_path / "idx" / "kind_probes.npz").exists()


def test_above_the_threshold_the_graphs_hold_the_only_copy_of_the_vectors(tmp_path,
                                                                          monkeypatch) -> None:
    # a float32 copy beside the graph (itself holding float16 vectors) made a 100k index 1.87x
    # the raw vectors; restricted, exact and saved vectors are read back from the graph
    pytest.importorskip("usearch")
    from multimodal_cat.catalog import index as module

    monkeypatch.setattr(module, "EXACT_CHUNK", 64)  # several chunks at 300 rows
    index, held = _index(300, threshold=100), _index(300)  # held: exact, float32 copy
    assert index.backend == "usearch" and index.vectors == {}
    assert np.allclose(index.vectors_of("fused"), held.vectors_of("fused"), atol=2e-3)
    queries = held.vectors_of("text")[:20] + 0.05 * _vectors(20, seed=9)
    for options in ({"exact": True}, {"within": "Apparel > Shoes", "exact": True}):
        got = index.search(queries, kind="text", k=5, **options)
        want = held.search(queries, kind="text", k=5, **options)
        assert [[i for i, _ in row] for row in got] == [[i for i, _ in row] for row in want]
    # a branch above the ANN threshold (150 rows): the graph's hits kept in the branch
    got = index.search(queries, kind="text", k=5, within="Apparel > Shoes")
    want = held.search(queries, kind="text", k=5, within="Apparel > Shoes")
    assert all(int(i[1:]) % 2 for row in got for i, _ in row)  # odd rows are the shoes
    assert np.mean([len({i for i, _ in g} & {i for i, _ in w}) / 5
                    for g, w in zip(got, want, strict=True)]) >= 0.95
    index.add(["z"], text=queries[:1], image=_vectors(1, 8))  # added to the graph only
    assert index.vectors == {}
    assert index.search(queries[:1], kind="text", k=1, exact=True)[0][0][0] == "z"
    index.remove(["p0", "p7"])
    assert index.learn_kinds()  # probes fitted on the graph's vectors
    loaded = CatalogIndex.load(index.save(tmp_path / "idx"))
    assert loaded.vectors == {} and loaded.ids == index.ids
    assert np.allclose(loaded.vectors_of("text"), index.vectors_of("text"))
