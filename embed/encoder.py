"""Texts to vectors with a sentence-transformers model, loaded once per process on the best device.

CUDA with fp16 where torch sees a GPU, else the CPU. `SentenceTransformer.encode` sorts the texts of a call by
length before it batches them, so padding costs little; a whole chunk goes in one call.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from embed.models import resolve
from vmig.errors import UsageError

_MODELS: dict[str, Any] = {}
_SIZES: dict[str, int] = {}
_LOCK = threading.Lock()
BATCH_SIZE = 64


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load(name: str) -> Any:
    """The model, loaded once per process (a Prefect task run or a worker reuses it). A name that resolves to
    nothing, or a model that does not load offline, is a UsageError (exit 2), before anything is written."""
    with _LOCK:
        if name not in _MODELS:
            path: Path = resolve(name)  # an unknown name fails here, before torch is imported
            _MODELS[name] = _load(name, path)
        return _MODELS[name]


def _load(name: str, path: Path) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # vex's own bar is the one on the terminal
    from sentence_transformers import SentenceTransformer

    where = device()
    try:
        model = SentenceTransformer(str(path), device=where)
    except Exception as exc:  # whatever a damaged or incomplete model directory raises
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise UsageError(f"model '{name}' could not be loaded offline from {path}: {reason}") from exc
    if where == "cuda":
        model.half()
    return model


def dimension(name: str) -> int:
    """The model's vector size: from the files of its directory where they say it (a repeated run served by the
    cache then never imports torch), else from the loaded model."""
    if name not in _SIZES:
        size = declared_dimension(resolve(name))
        if size is None:
            model = load(name)
            measure = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            size = measure()
        _SIZES[name] = int(size) if size is not None else int(encode(name, ["x"]).shape[1])
    return _SIZES[name]


def declared_dimension(path: Path) -> int | None:
    """What a sentence-transformers directory's modules.json and module configs say the output size is: the
    pooling's size (times its modes), or a Dense layer's; None for any other module or a file that says less."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        size: int | None = None
        for module in modules:
            kind = str(module["type"]).rsplit(".", 1)[-1]
            config_path = path / module.get("path", "") / "config.json"
            if kind in ("Transformer", "Normalize"):
                continue
            config = json.loads(config_path.read_text())
            if kind == "Pooling":
                width = config.get("embedding_dimension") or config.get("word_embedding_dimension")
                modes = config.get("pooling_mode")
                if modes is None:
                    count = sum(1 for key, on in config.items() if key.startswith("pooling_mode_") and on is True)
                else:
                    count = 1 if isinstance(modes, str) else len(modes)
                size = int(width) * count if width and count else None
            elif kind == "Dense":
                size = int(config["out_features"])
            else:
                return None
            if size is None:
                return None
        return size
    except (OSError, ValueError, KeyError, TypeError):
        return None


def encode(name: str, texts: list[str]) -> np.ndarray:
    """One float32 row per text."""
    if not texts:
        return np.zeros((0, dimension(name)), dtype=np.float32)
    vectors = load(name).encode(texts, batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)
