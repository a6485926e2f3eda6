"""Checkpoints load like any Hugging Face model after a plain ``import multimodal_cat``.

Each case runs in a fresh interpreter: what matters is what ``import multimodal_cat`` alone
registers, before anything else has imported ``multimodal_cat.modeling``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from multimodal_cat._lazy import after_import

AUTO_LOAD = """
import sys
{imports}
folder = sys.argv[1]
from transformers import AutoConfig, AutoModel, AutoProcessor
print(type(AutoConfig.from_pretrained(folder)).__name__)
print(type(AutoModel.from_pretrained(folder)).__name__)
print(type(AutoProcessor.from_pretrained(folder)).__name__)
"""


def _run(code: str, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


def test_a_plain_import_is_light_and_registers_nothing_until_transformers_loads() -> None:
    code = "import sys, multimodal_cat; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    assert _run(code) == ["[]"]


@pytest.mark.parametrize(
    "imports",
    [
        "import multimodal_cat",
        # transformers' modeling_utils imports the Auto config module half-way through its own
        # import: registration must not need the half-built module
        "import multimodal_cat\nfrom transformers import BertModel",
        "from transformers import AutoModel, BertModel\nimport multimodal_cat",
        # our config module's own `from transformers import AutoConfig` fires the hook
        "import multimodal_cat.modeling.configuration",
    ],
    ids=["plain", "then-modeling-utils", "transformers-first", "config-module-first"],
)
def test_auto_classes_load_a_checkpoint_after_import_multimodal_cat(
    tiny_checkpoint: Path, imports: str
) -> None:
    names = _run(AUTO_LOAD.format(imports=imports), str(tiny_checkpoint))
    assert names == ["MultimodalCatConfig", "MultimodalCatModel", "MultimodalCatProcessor"]


def test_after_import_runs_the_callback_once_the_module_is_imported(tmp_path: Path) -> None:
    (tmp_path / "late_module_for_hook.py").write_text("VALUE = 7\n")
    seen: list[int] = []
    sys.path.insert(0, str(tmp_path))
    try:
        after_import("late_module_for_hook", lambda module: seen.append(module.VALUE))
        assert seen == []
        import late_module_for_hook  # noqa: F401

        assert seen == [7]
        assert late_module_for_hook.__loader__.__class__.__name__ != "_ThenRun"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("late_module_for_hook", None)


def test_a_failing_callback_warns_and_never_breaks_the_import(tmp_path: Path) -> None:
    (tmp_path / "other_module_for_hook.py").write_text("VALUE = 1\n")
    sys.path.insert(0, str(tmp_path))

    def broken(module: object) -> None:
        raise KeyError("boom")

    try:
        after_import("other_module_for_hook", broken)
        with pytest.warns(RuntimeWarning, match="broken failed after other_module_for_hook"):
            import other_module_for_hook
        assert other_module_for_hook.VALUE == 1
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("other_module_for_hook", None)


PIPELINE = """
import sys
import multimodal_cat
from transformers import pipeline
categorize = pipeline("product-categorization", model=sys.argv[1], device="cpu")
print(type(categorize).__name__, categorize("Red running shoes")["path"] != "")
"""


def test_the_pipeline_task_exists_after_a_plain_import(tiny_checkpoint: Path) -> None:
    assert _run(PIPELINE, str(tiny_checkpoint)) == ["ProductCategorizationPipeline", "True"]


def test_the_pipeline_answers_titles_dicts_images_and_lists_as_the_predictor_does(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    from PIL import Image
    from transformers import pipeline

    from multimodal_cat.errors import FormatError
    from multimodal_cat.predictors import ModelPredictor
    from multimodal_cat.products import Product

    photo = Image.new("RGB", (40, 30), (200, 20, 20))
    photo.save(tmp_path / "red.png")
    categorize = pipeline("product-categorization", model=str(tiny_checkpoint), device="cpu")
    predictor = ModelPredictor.from_pretrained(str(tiny_checkpoint), cache=False)
    one = categorize("Red running shoes", top_k=3)
    expected = predictor.predict([Product(title="Red running shoes")], top_k=3)[0]
    assert (one["label"], one["path"]) == (expected.category_id, expected.category_path)
    assert one["score"] == pytest.approx(expected.confidence)
    assert [a["path"] for a in one["alternatives"]] == [a.path for a in expected.alternatives]
    assert {(t["attribute"], t["value"]) for t in one["tags"]} == {
        (t.attribute, t.value) for t in expected.tags
    }
    assert one["inputs"] == "text"
    many = categorize(
        [{"title": "Blue shirt", "image": str(tmp_path / "red.png")}, photo, str(tmp_path / "red.png"),
         tmp_path / "red.png"]
    )
    assert [answer["inputs"] for answer in many] == ["text+image", "image", "image", "image"]
    assert many[1]["path"] == many[2]["path"] == many[3]["path"]  # the same picture, three ways
    with pytest.raises(FormatError, match="image file not found: 'shoe.jpg'"):
        categorize("shoe.jpg")
    with pytest.raises(FormatError, match="neither usable text nor a readable image"):
        categorize({"title": float("nan")})
