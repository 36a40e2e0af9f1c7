"""The adapter's optional small MLP: a residual on top of the linear map, for model pairs a linear map cannot
follow. `vex adapter fit --mlp` trains it next to the linear map and keeps it only when it measures better on
the held-out texts. Plain numpy (full-batch Adam on mean squared error), so fitting needs no torch."""

from __future__ import annotations

import numpy as np

HIDDEN = 256
EPOCHS = 300
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4
SEED = 0

Params = dict[str, np.ndarray]


def residual(unit_source: np.ndarray, params: Params) -> np.ndarray:
    """What the MLP adds to the linear map's output."""
    hidden = np.maximum(unit_source @ params["w1"] + params["b1"], 0.0)
    return np.asarray(hidden @ params["w2"] + params["b2"])


def train(unit_source: np.ndarray, linear_out: np.ndarray, unit_target: np.ndarray) -> Params:
    """Weights of a residual that brings `linear_out` closer to `unit_target`; starts at zero (the linear map)."""
    rng = np.random.default_rng(SEED)
    inputs, outputs = unit_source.shape[1], unit_target.shape[1]
    params: Params = {
        "w1": rng.standard_normal((inputs, HIDDEN)) * np.sqrt(2.0 / inputs),
        "b1": np.zeros(HIDDEN),
        "w2": np.zeros((HIDDEN, outputs)),
        "b2": np.zeros(outputs),
    }
    moments = {name: (np.zeros_like(value), np.zeros_like(value)) for name, value in params.items()}
    x, goal = unit_source.astype(np.float64), (unit_target - linear_out).astype(np.float64)
    for step in range(1, EPOCHS + 1):
        pre = x @ params["w1"] + params["b1"]
        hidden = np.maximum(pre, 0.0)
        error = (hidden @ params["w2"] + params["b2"] - goal) * (2.0 / len(x))
        grads = {"w2": hidden.T @ error, "b2": error.sum(axis=0)}
        back = (error @ params["w2"].T) * (pre > 0)
        grads["w1"], grads["b1"] = x.T @ back, back.sum(axis=0)
        for name, grad in grads.items():
            first, second = moments[name]
            first[:] = 0.9 * first + 0.1 * grad
            second[:] = 0.999 * second + 0.001 * grad**2
            update = (first / (1 - 0.9**step)) / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
            params[name] -= LEARNING_RATE * (update + WEIGHT_DECAY * params[name])
    return {name: value.astype(np.float32) for name, value in params.items()}
