"""Real English sentences this machine already has, for fitting and measuring adapters and for benchmarks.

No download: the first sentence of the docstrings of the installed Python packages (thousands of distinct,
human-written sentences about code), read in a fixed order so that the same environment gives the same corpus.
"""

from __future__ import annotations

import ast
import re
import sysconfig
from collections.abc import Iterator
from pathlib import Path

_SENTENCE = re.compile(r"^[A-Z][A-Za-z0-9 ,;:'()\-/]+[a-z][.]$")


def sentences(count: int) -> list[str]:
    """`count` distinct sentences (fewer only if the environment has fewer)."""
    seen: dict[str, None] = {}
    for text in _docstrings():
        sentence = _first_sentence(text)
        if sentence is not None and sentence not in seen:
            seen[sentence] = None
            if len(seen) >= count:
                break
    return list(seen)


def _docstrings() -> Iterator[str]:
    root = Path(sysconfig.get_paths()["purelib"])
    for path in sorted(root.rglob("*.py")):
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    yield doc


def _first_sentence(doc: str) -> str | None:
    line = " ".join(doc.strip().split("\n\n")[0].split())
    end = line.find(". ")
    sentence = line if end < 0 else line[: end + 1]
    if not 40 <= len(sentence) <= 200 or len(sentence.split()) < 6 or not _SENTENCE.match(sentence):
        return None
    return sentence
