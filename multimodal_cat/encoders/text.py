"""Sentence embeddings from a transformers text model.

Models trained with instruction prefixes (E5's ``query: `` / ``passage: ``) declare them as
sentence-transformers does, in ``config_sentence_transformers.json`` (``prompts`` and
``default_prompt_name``); :class:`TextEncoder` reads them from a local folder, prepends the
chosen one to every text, and keys its cache entries by it.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from multimodal_cat._progress import plural, progress_bar
from multimodal_cat.encoders._arrays import batched, l2_normalize
from multimodal_cat.encoders._base import (
    autocast,
    backbone_of,
    check_pooling,
    key_name,
    load_tower,
    model_device,
)
from multimodal_cat.encoders.pooling import PoolingMode, pool, pooled_dim
from multimodal_cat.encoders.registry import resolve_encoder
from multimodal_cat.errors import InputTypeError, InvalidArgumentError

__all__ = ["TextEncoder", "text_encoder_key"]


def text_encoder_key(
    name: str, pooling: str = "mean", max_length: int = 128, prompt: str = ""
) -> str:
    """The cache key of ``TextEncoder.from_name(name, pooling, max_length)``, without loading it.

    ``prompt`` is the prefix the encoder prepends (part of the key only when not empty).

    Example:
        >>> text_encoder_key("all-MiniLM-L6-v2", "mean", 64)
        'text:minilm|pool=mean|max_length=64'
        >>> text_encoder_key("e5-small", "mean", 64, prompt="query: ")
        'text:multilingual-e5-small|pool=mean|max_length=64|prompt=query: '
    """
    key = f"text:{key_name(name)}|pool={pooling}|max_length={max_length}"
    return f"{key}|prompt={prompt}" if prompt else key


def folder_prompts(folder: str | os.PathLike[str]) -> tuple[dict[str, str], str | None]:
    """The ``(prompts, default_prompt_name)`` a model folder declares (``({}, None)``: none).

    Read from sentence-transformers' ``config_sentence_transformers.json``.
    """
    path = Path(folder) / "config_sentence_transformers.json"
    if not path.is_file():
        return {}, None
    data = json.loads(path.read_text(encoding="utf-8"))
    prompts = data.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise InvalidArgumentError(f"expected 'prompts' to map names to strings in {path}; got {prompts!r}")
    return dict(prompts), data.get("default_prompt_name")


def _in_threads(run, workers: int) -> None:
    """Call ``run`` on ``workers`` threads with one torch thread each; re-raise the first error."""
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            run()
        except BaseException as error:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(error)

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        threads = [threading.Thread(target=guarded) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        torch.set_num_threads(saved)
    if errors:
        raise errors[0]


class TextEncoder:
    """Encode texts into fixed-size vectors: transformer token states + :func:`pool`.

    Args:
        model: a transformers model whose output has ``last_hidden_state`` (for
            dual-encoder models such as CLIP, the ``text_model`` is used).
        tokenizer: the matching tokenizer.
        name: name used in :attr:`key` (short name, hub id or path).
        pooling: ``"mean"`` (default, sentence-transformers), ``"cls"`` or ``"cls_mean"``.
        max_length: tokens kept per text (longer texts are truncated).
        prompts: named prefixes the model was trained with (E5: ``{"query": "query: ",
            "passage": "passage: "}``).
        prompt_name: the prompt prepended to every text (``None``: no prefix).

    Example:
        >>> enc = TextEncoder.from_name("minilm", pooling="mean", max_length=64)  # doctest: +SKIP
        >>> enc.encode(["red running shoes", "frying pan"]).shape  # doctest: +SKIP
        (2, 384)
        >>> e5 = TextEncoder.from_name("multilingual-e5-small")  # doctest: +SKIP
        >>> e5.prompt, e5.with_prompt("passage").prompt  # doctest: +SKIP
        ('query: ', 'passage: ')
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        *,
        name: str,
        pooling: PoolingMode = "mean",
        max_length: int = 128,
        prompts: dict[str, str] | None = None,
        prompt_name: str | None = None,
    ) -> None:
        check_pooling(pooling)
        if max_length < 2:
            raise InvalidArgumentError(f"Expected max_length >= 2; got {max_length}.")
        prompts = dict(prompts or {})
        if prompt_name is not None and prompt_name not in prompts:
            raise InvalidArgumentError(
                f"Expected prompt_name among {sorted(prompts)} (or None); got {prompt_name!r}."
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.pooling = pooling
        self.max_length = max_length
        self.prompts = prompts
        self.prompt_name = prompt_name

    @property
    def prompt(self) -> str:
        """The prefix prepended to every text (``""`` when none)."""
        return self.prompts[self.prompt_name] if self.prompt_name is not None else ""

    def with_prompt(self, prompt_name: str | None) -> TextEncoder:
        """The same model with another prompt (e.g. ``"passage"`` for E5 documents)."""
        return TextEncoder(
            self.model,
            self.tokenizer,
            name=self.name,
            pooling=self.pooling,
            max_length=self.max_length,
            prompts=self.prompts,
            prompt_name=prompt_name,
        )

    @classmethod
    def from_name(
        cls,
        name: str = "minilm",
        pooling: PoolingMode = "mean",
        max_length: int = 128,
        *,
        device: str | torch.device = "cpu",
        local_files_only: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        prompts: dict[str, str] | None = None,
        prompt_name: str | None = "default",
    ) -> TextEncoder:
        """Load a text encoder by short name (``"minilm"``), hub id or local folder.

        Short names never touch the network. ``local_files_only`` applies to other names.
        ``prompts`` default to those a local folder declares (see :func:`folder_prompts`);
        ``prompt_name="default"`` takes the folder's ``default_prompt_name`` (E5: ``"query"``,
        the prefix for symmetric tasks such as matching category names), ``None`` no prefix.
        A hub E5 checkpoint needs ``prompts=E5_PROMPTS, prompt_name="query"``.

        Raises:
            MissingEncoderPackageError: a short name's package is not installed.
            UnknownEncoderError: the name is not a short name, a folder or a reachable hub id.
        """
        options = {"local_files_only": local_files_only, "cache_dir": cache_dir}
        model, tokenizer = load_tower(name, "text", pooling, **options)
        declared, default = {}, None
        source = resolve_encoder(name, cache_dir=cache_dir)
        if Path(source).is_dir():
            declared, default = folder_prompts(source)
        prompts = declared if prompts is None else prompts
        if prompt_name == "default":
            prompt_name = default if default in prompts else None
        return cls(
            model.to(device),
            tokenizer,
            name=name,
            pooling=pooling,
            max_length=max_length,
            prompts=prompts,
            prompt_name=prompt_name,
        )

    @property
    def key(self) -> str:
        """Stable id of checkpoint + pooling + max_length, used as the embedding-cache key."""
        return text_encoder_key(self.name, self.pooling, self.max_length, self.prompt)

    @property
    def dim(self) -> int:
        """Size of one embedding."""
        return pooled_dim(backbone_of(self.model, "text_model").config.hidden_size, self.pooling)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        normalize: bool = True,
        progress: bool = False,
        *,
        bf16: bool = False,
        workers: int = 1,
    ) -> np.ndarray:
        """Embed ``texts`` into a float32 array (n, dim), rows in input order.

        The :attr:`prompt` is prepended to each text. Texts are batched by length to limit padding. ``normalize`` scales rows to unit
        length (the pooled output itself, as the model computes it, needs
        ``normalize=False``). ``bf16`` runs under bf16 autocast. ``workers > 1`` (CPU)
        runs batches on that many Python threads with one torch thread each, instead of
        one batch at a time on torch's threads: on cores shared with other processes this
        avoids the stalls of multi-threaded matmuls (5x faster here under load); torch's
        thread count is set to 1 meanwhile and restored after.

        Raises:
            TypeError: an item is not a string.
            ValueError: ``workers`` is below 1.
        """
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputTypeError(f"Expected a str at position {index}; got {type(text).__name__}.")
        if workers < 1:
            raise InvalidArgumentError(f"Expected workers >= 1; got {workers}.")
        if self.prompt:
            texts = [self.prompt + text for text in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        backbone = backbone_of(self.model, "text_model")
        device = model_device(backbone)
        bar = progress_bar(
            total=len(texts), disable=not progress, unit="text", desc=f"encoding {plural(len(texts), 'text')}"
        )
        # Tokenized up front, in this thread: a fast tokenizer is not safe to share across threads.
        jobs = queue.SimpleQueue()
        for rows in batched(order, batch_size):
            tokens = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            jobs.put((list(rows), tokens))

        def run() -> None:  # inference mode and autocast are per thread
            with torch.inference_mode(), autocast(device, bf16):
                while True:
                    try:
                        rows, tokens = jobs.get_nowait()
                    except queue.Empty:
                        return
                    tokens = tokens.to(device)
                    states = backbone(**tokens).last_hidden_state
                    pooled = pool(states, tokens["attention_mask"], self.pooling)
                    out[rows] = pooled.float().cpu().numpy()
                    bar.update(len(rows))

        if device.type == "cpu" and workers > 1:
            _in_threads(run, min(workers, max(1, jobs.qsize())))
        else:
            run()
        bar.close()
        return l2_normalize(out) if normalize else out

    def __repr__(self) -> str:
        return f"TextEncoder(key={self.key!r}, dim={self.dim})"
