"""The drift adapter's optional MLP (`vex adapter fit --mlp`): kept only where it measures better on held-out
pairs than the linear map, and saved and loaded with the adapter. Synthetic spaces, so each case has a known
answer: a relation no linear map can follow, and one a rotation follows exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embed.adapter import fit, load


def test_the_mlp_is_kept_where_no_linear_map_fits_and_travels_in_the_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    source = rng.standard_normal((1500, 32)).astype(np.float32)
    target = np.abs(source @ rng.standard_normal((32, 48))).astype(np.float32)
    target -= target.mean(axis=0)
    adapter = fit(source, target, "old", "new", try_mlp=True)
    assert adapter.compared is not None and adapter.kind == "ridge+mlp"
    assert adapter.compared["mlp"]["mean_cosine"] > adapter.compared["linear"]["mean_cosine"] + 0.5
    assert adapter.quality == adapter.compared["mlp"]
    adapter.save(tmp_path / "a.vxa")
    again = load(tmp_path / "a.vxa")
    assert again.kind == "ridge+mlp" and again.mlp is not None
    probe = rng.standard_normal((50, 32)).astype(np.float32)
    assert np.array_equal(again.apply(probe), adapter.apply(probe))


def test_the_linear_map_stays_where_it_is_exact() -> None:
    rng = np.random.default_rng(2)
    source = rng.standard_normal((600, 32)).astype(np.float32)
    rotation = np.linalg.qr(rng.standard_normal((32, 32)))[0].astype(np.float32)
    adapter = fit(source, source @ rotation, "old", "new", try_mlp=True)
    assert adapter.kind == "procrustes" and adapter.mlp is None
    assert adapter.quality["mean_cosine"] > 0.999
