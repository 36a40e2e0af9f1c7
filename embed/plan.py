"""What a run asks of the re-embed step, and what the step gives back: plain data, no model library imported."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

SKIP_NO_TEXT = "no text to re-embed"
Mode = Literal["auto", "always", "never"]
DEFAULT_CACHE_MB = 1024


@dataclass(frozen=True)
class ReembedPlan:
    """A run's `--model`, `--reembed`, `--embed-cache-mb` and `--adapter`."""

    model: str | None
    """The target model, as the person named it (None: the adapter's target model)."""
    mode: Mode = "auto"
    cache_mb: int = DEFAULT_CACHE_MB
    """Bound of the on-disk embedding cache."""
    adapter: str | None = None
    """A `.vxa` drift adapter: records of its source model without text (all of them, without `model`) are
    mapped into the target model's space."""


@dataclass
class Reembedded:
    batch: pa.RecordBatch
    skipped: Counter[str] = field(default_factory=Counter)
    counts: dict[str, int] = field(default_factory=dict)
    quality: dict[str, float] | None = None
    """The adapter's measured quality, where one was applied."""
    """Records re-embedded, by how: encoded now, or from the embedding cache."""
