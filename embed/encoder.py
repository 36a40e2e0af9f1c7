"""Texts to vectors with a sentence-transformers model, loaded once per process on the best device.

CUDA with fp16 where torch sees a GPU, else the CPU. `SentenceTransformer.encode` sorts the texts of a call by
length before it batches them, so padding costs little; a whole chunk goes in one call.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from embed.models import resolve

_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()
BATCH_SIZE = 64


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load(name: str) -> Any:
    """The model, loaded once per process (a Prefect task run or a worker reuses it)."""
    with _LOCK:
        if name not in _MODELS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # vex's own bar is the one on the terminal
            from sentence_transformers import SentenceTransformer

            path: Path = resolve(name)
            where = device()
            model = SentenceTransformer(str(path), device=where)
            if where == "cuda":
                model.half()
            _MODELS[name] = model
        return _MODELS[name]


def dimension(name: str) -> int:
    model = load(name)
    measure = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    size = measure()
    return int(size) if size is not None else int(encode(name, ["x"]).shape[1])


def encode(name: str, texts: list[str]) -> np.ndarray:
    """One float32 row per text."""
    if not texts:
        return np.zeros((0, dimension(name)), dtype=np.float32)
    vectors = load(name).encode(texts, batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)
