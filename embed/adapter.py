"""The drift adapter: a learned map from one embedding model's space to another's, for records without text.

Fitted on paired embeddings of the same texts: an orthogonal Procrustes rotation when both models have the same
dimension, ridge least squares (with a bias) when they differ. Its quality is measured on texts held out from
the fit and travels in the file: the mean cosine between adapted vectors and the target model's own embeddings,
recall@10 (the text's own target embedding among the 10 nearest of its adapted vector, searching all held-out
target embeddings) and the overlap of the 10 nearest neighbours found with adapted and with true vectors.
A `.vxa` file is a NumPy archive: the weights and a JSON header.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from vmig.errors import UsageError

RIDGE = 0.1
HOLD_OUT = 0.2


@dataclass
class Adapter:
    source_model: str
    target_model: str
    source_dims: int
    target_dims: int
    kind: str
    """"procrustes" or "ridge"; "+mlp" where the small MLP measured better and was kept."""
    sample: int
    """Texts the map was fitted on."""
    weights: np.ndarray = field(repr=False)
    """(source_dims + 1) x target_dims: the last row is the bias."""
    quality: dict[str, float] = field(default_factory=dict)
    mlp: dict[str, np.ndarray] | None = field(default=None, repr=False)
    """The residual MLP's weights (`embed.mlp`), where kept."""
    compared: dict[str, dict[str, float]] | None = None
    """With `--mlp`: the held-out quality of the linear map and of the MLP, the better one kept."""

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors of the source model mapped into the target model's space, unit length as both models give."""
        if vectors.shape[1] != self.source_dims:
            raise UsageError(f"the adapter maps {self.source_dims}-d vectors, not {vectors.shape[1]}-d")
        unit = _unit(vectors)
        mapped = unit @ self.weights[:-1] + self.weights[-1]
        if self.mlp is not None:
            from embed.mlp import residual

            mapped = mapped + residual(unit, self.mlp)
        return _unit(mapped).astype(np.float32)

    def header(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key not in ("weights", "mlp")}

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {f"mlp_{name}": value for name, value in (self.mlp or {}).items()}
        arrays["weights"] = self.weights
        arrays["header"] = np.frombuffer(orjson.dumps(self.header()), np.uint8)
        with path.open("wb") as handle:
            np.savez(handle, **arrays)


def load(path: Path) -> Adapter:
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = orjson.loads(archive["header"].tobytes())
            weights = archive["weights"]
            layers = {name[4:]: archive[name] for name in archive.files if name.startswith("mlp_")}
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{path} is not a vex adapter file ({exc})") from None
    return Adapter(weights=weights, mlp=layers or None, **header)


def fit(source: np.ndarray, target: np.ndarray, source_model: str, target_model: str, try_mlp: bool = False) -> Adapter:
    """Fit on the first 80% of the pairs, measure on the rest, then refit on all of them. With `try_mlp`, a
    small residual MLP is trained on the same 80% too, and kept only if it measures better."""
    if len(source) != len(target) or len(source) < 20:
        raise UsageError(f"an adapter needs at least 20 paired texts, got {len(source)}")
    cut = int(len(source) * (1 - HOLD_OUT))
    trial = _weights(source[:cut], target[:cut])
    adapter = Adapter(source_model, target_model, source.shape[1], target.shape[1], _kind(source, target),
                      len(source), trial)  # fmt: skip
    adapter.quality = measure(adapter, source[cut:], target[cut:])
    adapter.weights = _weights(source, target)
    if try_mlp:
        _keep_mlp_if_better(adapter, source, target, cut)
    return adapter


def _keep_mlp_if_better(adapter: Adapter, source: np.ndarray, target: np.ndarray, cut: int) -> None:
    from dataclasses import replace

    from embed.mlp import train

    linear = _weights(source[:cut], target[:cut])
    unit_a, unit_b = _unit(source), _unit(target)
    trial = replace(adapter, weights=linear)
    trial.mlp = train(unit_a[:cut], unit_a[:cut] @ linear[:-1] + linear[-1], unit_b[:cut])
    with_mlp = measure(trial, source[cut:], target[cut:])
    adapter.compared = {"linear": adapter.quality, "mlp": with_mlp}
    if (with_mlp["recall_at_10"], with_mlp["mean_cosine"]) <= (
        adapter.quality["recall_at_10"],
        adapter.quality["mean_cosine"],
    ):
        return
    adapter.kind += "+mlp"
    adapter.quality = with_mlp
    adapter.mlp = train(unit_a, unit_a @ adapter.weights[:-1] + adapter.weights[-1], unit_b)


def measure(adapter: Adapter, source: np.ndarray, target: np.ndarray) -> dict[str, float]:
    adapted, truth = adapter.apply(source), _unit(target)
    similarity = adapted @ truth.T
    own = np.argsort(-similarity, axis=1)[:, :10]
    recall = float(np.mean([row in own[row] for row in range(len(truth))]))
    true_neighbours = np.argsort(-(truth @ truth.T), axis=1)[:, :10]
    adapted_neighbours = np.argsort(-(adapted @ truth.T), axis=1)[:, :10]
    overlap = float(
        np.mean([len(set(a) & set(b)) / 10 for a, b in zip(adapted_neighbours, true_neighbours, strict=True)])
    )
    cosine = float(np.mean(np.sum(adapted * truth, axis=1)))
    return {"mean_cosine": round(cosine, 4), "recall_at_10": round(recall, 4),
            "neighbour_overlap_at_10": round(overlap, 4), "held_out": len(truth)}  # fmt: skip


def _kind(source: np.ndarray, target: np.ndarray) -> str:
    return "procrustes" if source.shape[1] == target.shape[1] else "ridge"


def _weights(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    a, b = _unit(source).astype(np.float64), _unit(target).astype(np.float64)
    if a.shape[1] == b.shape[1]:
        u, _, vt = np.linalg.svd(a.T @ b)
        return np.vstack([u @ vt, np.zeros((1, b.shape[1]))])
    x = np.hstack([a, np.ones((len(a), 1))])
    return np.linalg.solve(x.T @ x + RIDGE * np.eye(x.shape[1]), x.T @ b)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1)


def fit_from_records(batches: Iterable[pa.RecordBatch], target_model: str, sample: int) -> Adapter:
    """An adapter fitted on the fly (`--adapter auto`) from records that have text: their stored vectors (of a
    model that may not run here at all) against the target model's embeddings of their text. The source model
    is the most common one among the records not already of the target model."""
    from collections import Counter

    from embed import encoder
    from embed.models import canonical

    target = canonical(target_model)
    texts: dict[tuple[str | None, int], dict[str, np.ndarray]] = {}
    seen: Counter[tuple[str | None, int]] = Counter()
    for batch in batches:
        models, dims = batch.column("model").to_pylist(), batch.column("dims").to_pylist()
        vectors = batch.column("vector")
        for row, text in enumerate(batch.column("text").to_pylist()):
            if not text or not text.strip() or dims[row] is None or models[row] == target:
                continue
            group = (models[row], dims[row])
            seen[group] += 1
            kept = texts.setdefault(group, {})
            if len(kept) < sample and text not in kept:
                kept[text] = np.asarray(vectors[row].values.to_numpy(zero_copy_only=False), np.float32)
        if seen and len(texts[seen.most_common(1)[0][0]]) >= sample:
            break
    if not seen:
        raise UsageError("--adapter auto found no record with text and a vector of another model to fit on")
    (model, _), _ = seen.most_common(1)[0]
    pairs = texts[seen.most_common(1)[0][0]]
    if len(pairs) < 20:
        raise UsageError(f"--adapter auto found {len(pairs)} records with text of {model or 'no stated model'}: "
                         "an adapter needs at least 20")  # fmt: skip
    source = np.stack(list(pairs.values()))
    return fit(source, encoder.encode(target_model, list(pairs)), model or "unknown", target)
