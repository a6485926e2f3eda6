"""The public API's obvious misuses raise the library's errors, each keeping its built-in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from multimodal_cat.calibration import softmax
from multimodal_cat.encoders.registry import resolve_encoder
from multimodal_cat.errors import MultimodalCatError, NotFoundError
from multimodal_cat.mapping import Mapping, MappingRule
from multimodal_cat.predictors.build import build_predictor
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.taxonomy.errors import UnknownCategoryError

TREE = Taxonomy.from_paths(["A", "A > B", "A > B > C"])


def _misuses(tmp_path: Path) -> list[tuple[str, object, type[BaseException]]]:
    shopify_to_google = Mapping.load("shopify", "google")
    return [
        ("Mapping.map of an unknown id", lambda: shopify_to_google.map("zz-99"), KeyError),
        ("Taxonomy.find of an unknown path", lambda: TREE.find("A > Z"), KeyError),
        ("Taxonomy[unknown id]", lambda: TREE["nope"], KeyError),
        ("Taxonomy.resolve of nothing known", lambda: TREE.resolve("nope"), KeyError),
        ("Taxonomy.children of an unknown id", lambda: TREE.children("nope"), KeyError),
        ("Taxonomy.cut(0)", lambda: TREE.cut(0), ValueError),
        ("Taxonomy.load of a missing file", lambda: Taxonomy.load(tmp_path / "t.txt"), ValueError),
        ("index position of an unknown id", lambda: TREE.to_index().position("nope"), KeyError),
        ("MappingRule with a string", lambda: MappingRule("a", "b"), TypeError),  # type: ignore[arg-type]
        ("MappingRule confidence 2", lambda: MappingRule("a", ("b",), confidence=2.0), ValueError),
        ("build_predictor with nothing", lambda: build_predictor(), ValueError),
        ("build_predictor, missing model", lambda: build_predictor(model=str(tmp_path / "m")), OSError),
        ("a negative temperature", lambda: softmax(np.zeros((1, 2)), -1.0), ValueError),
        ("an encoder name that is not a str", lambda: resolve_encoder(3), TypeError),  # type: ignore[arg-type]
    ]


def test_every_obvious_misuse_raises_a_family_error_that_keeps_its_builtin(tmp_path: Path) -> None:
    failures = []
    for what, action, builtin in _misuses(tmp_path):
        try:
            action()  # type: ignore[operator]
        except MultimodalCatError as error:
            if not isinstance(error, builtin):
                failures.append(f"{what}: {type(error).__name__} is not a {builtin.__name__}")
        except Exception as error:  # noqa: BLE001 - the failure this test looks for
            failures.append(f"{what}: {type(error).__name__} outside the family: {error}")
        else:
            failures.append(f"{what}: nothing raised")
    assert not failures, "\n".join(failures)


def test_unknown_category_reads_plainly_and_is_a_key_error() -> None:
    with pytest.raises(UnknownCategoryError) as info:
        Mapping.load("shopify", "google").map("zz-99")
    assert isinstance(info.value, KeyError) and isinstance(info.value, NotFoundError)
    assert str(info.value).startswith("no category with id 'zz-99'")  # no KeyError quotes


def test_structure_methods_accept_a_category_as_well_as_an_id() -> None:
    b = TREE.find("A > B")
    assert [c.name for c in TREE.children(b)] == ["C"]
    assert [c.name for c in TREE.ancestors(TREE.find("A > B > C"))] == ["A", "B"]
    assert TREE.parent(b).name == "A"  # type: ignore[union-attr]
    assert [c.name for c in TREE.descendants(b)] == ["C"]
    assert b in TREE and TREE[b] is b and TREE.resolve(b) is b and not TREE.is_leaf(b)
    assert TREE.find(b) is b
    shopify = Taxonomy.load("shopify")
    mapped = Mapping.load("shopify", "google").map(shopify["aa-1-1"])
    assert mapped.target_ids == ("5322",)


# Folders (and modules) whose errors raised on purpose are all family members; the rest of the
# package joins the list as its raises are moved to the family.
FAMILY_ONLY = [
    "cli", "encoders", "mapping", "predictors", "taxonomy", "zero_shot",
    "calibration.py", "errors.py", "evaluation.py", "framing.py", "imaging.py", "_progress.py",
]
BUILTINS = {"KeyError", "ValueError", "TypeError", "LookupError", "FileNotFoundError",
            "IndexError", "NotADirectoryError", "OSError"}


def test_no_bare_builtin_errors_are_raised_in_the_family_only_areas() -> None:
    import ast

    import multimodal_cat

    root = Path(multimodal_cat.__file__).parent
    files = [p for name in FAMILY_ONLY for p in ([root / name] if name.endswith(".py")
             else sorted((root / name).rglob("*.py")))]
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                name = getattr(node.exc.func, "id", None)
                if name in BUILTINS:
                    found.append(f"{path.relative_to(root)}:{node.lineno}: raise {name}")
    assert len(files) > 40 and not found, "\n".join(found)
