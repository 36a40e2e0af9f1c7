"""Distinct real English sentences that this machine already holds: the built-in corpus of `vex adapter fit
--from corpus`, of the re-embedding tests and of `bench/bench_reembed.py`.

Nothing is downloaded and nothing large is committed: the sentences are cut from text every Debian-based
machine with Python has, in this order, until there are enough:

- `dpkg`: the package descriptions of what is installed (/var/lib/dpkg/status);
- `licenses`: the licence texts in /usr/share/common-licenses;
- `python`: the docstrings of the Python standard library (read with `ast`, nothing imported);
- `packages`: the docstrings of the installed Python packages (site-packages);
- `apt`: the long package descriptions in apt's lists (/var/lib/apt/lists/*_Packages or *_Translation-en,
  plain, .gz, .xz or .lz4), where apt has fetched them (Debian 12 keeps long descriptions in the
  Translation files only).

A sentence is 40-300 characters, starts with a capital letter, ends with `.`, `!` or `?`, has at least six
words and is mostly letters (no code, paths or tables); duplicates are dropped regardless of case and
spacing. The order is deterministic on one machine: 10,660 sentences from the first three sources on the
machine this was written on, 5,000 in about a second.

    python bench/corpus.py --count 5000 --output corpus.txt     # one sentence a line
    python bench/corpus.py --count 5000                          # the counts by source only
"""

from __future__ import annotations

import argparse
import ast
import gzip
import lzma
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

DPKG_STATUS = Path("/var/lib/dpkg/status")
LICENSES = Path("/usr/share/common-licenses")
APT_LISTS = Path("/var/lib/apt/lists")

_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_CODEISH = re.compile(r"[{}<>\[\]=_|\\#@$%^~`*]|::|->|\.\w+\(|https?:|www\.|\S+\.\S+/|/\w+/")


def sentences(count: int, sources: Iterable[str] | None = None) -> list[str]:
    """The first `count` distinct sentences (fewer where the machine has fewer), deterministic."""
    return [text for text, _ in labelled(count, sources)]


def labelled(count: int, sources: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """(sentence, source) pairs, as `sentences`."""
    seen: set[str] = set()
    found: list[tuple[str, str]] = []
    for source in sources or SOURCES:
        for paragraph in SOURCES[source]():
            for sentence in split(paragraph):
                key = " ".join(sentence.lower().split())
                if key in seen:
                    continue
                seen.add(key)
                found.append((sentence, source))
                if len(found) >= count:
                    return found
    return found


def split(paragraph: str) -> Iterator[str]:
    """The sentences of a paragraph of prose that pass the filter."""
    text = " ".join(paragraph.split())
    for sentence in _SPLIT.split(text):
        if _is_sentence(sentence):
            yield sentence


def _is_sentence(text: str) -> bool:
    if not 40 <= len(text) <= 300 or not text[0].isupper() or text[-1] not in ".!?":
        return False
    words = text.split()
    if len(words) < 6 or _CODEISH.search(text):
        return False
    letters = sum(c.isalpha() for c in text)
    if letters < 0.75 * len(text.replace(" ", "")):
        return False
    return sum(w.isupper() and len(w) > 1 for w in words) <= len(words) // 4  # not a heading in capitals


def _dpkg() -> Iterator[str]:
    if DPKG_STATUS.is_file():
        yield from _descriptions(DPKG_STATUS.read_text(errors="replace"))


def _licenses() -> Iterator[str]:
    if not LICENSES.is_dir():
        return
    for path in sorted(LICENSES.iterdir()):
        if path.is_file():
            yield from re.split(r"\n\s*\n", path.read_text(errors="replace"))


def _python() -> Iterator[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    yield from _docstrings(sorted(stdlib.glob("*.py")) + sorted(stdlib.glob("*/*.py")))


def _packages() -> Iterator[str]:
    yield from _docstrings(sorted(Path(sysconfig.get_paths()["purelib"]).rglob("*.py")))


def _docstrings(paths: Iterable[Path]) -> Iterator[str]:
    """The paragraphs of the docstrings of these modules, their classes and functions; tests left out."""
    for path in paths:
        if path.parent.name in ("test", "tests") or path.name.startswith("test"):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    yield from re.split(r"\n\s*\n", doc)


def _apt() -> Iterator[str]:
    if not APT_LISTS.is_dir():
        return
    for path in sorted([*APT_LISTS.glob("*_Packages*"), *APT_LISTS.glob("*_Translation-en*")]):
        text = _decompressed(path)
        if text:
            yield from _descriptions(text)


def _decompressed(path: Path) -> str | None:
    try:
        if path.name.endswith(("_Packages", "_Translation-en")):
            return path.read_text(errors="replace")
        if path.suffix == ".gz":
            return gzip.decompress(path.read_bytes()).decode(errors="replace")
        if path.suffix == ".xz":
            return lzma.decompress(path.read_bytes()).decode(errors="replace")
        if path.suffix == ".lz4" and shutil.which("lz4"):
            done = subprocess.run(["lz4", "-dc", str(path)], capture_output=True, check=True, timeout=120)
            return done.stdout.decode(errors="replace")
    except (OSError, EOFError, lzma.LZMAError, subprocess.SubprocessError):
        return None
    return None


def _descriptions(control: str) -> Iterator[str]:
    """The long descriptions of a Debian control file, paragraph by paragraph (` .` separates them)."""
    for stanza in control.split("\n\n"):
        lines = stanza.split("\n")
        start = next((i for i, line in enumerate(lines) if line.startswith(("Description:", "Description-en:"))), None)
        if start is None:
            continue
        body: list[str] = []
        for line in lines[start + 1 :]:
            if not line.startswith(" "):
                break
            if line.strip() == ".":
                yield " ".join(body)
                body = []
            elif not line.startswith("  "):  # two spaces: a verbatim line (a list, code), not prose
                body.append(line.strip())
        if body:
            yield " ".join(body)


SOURCES: dict[str, Callable[[], Iterator[str]]] = {
    "dpkg": _dpkg,
    "licenses": _licenses,
    "python": _python,
    "packages": _packages,
    "apt": _apt,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--output", type=Path, help="write the sentences here, one a line")
    parser.add_argument("--sources", nargs="+", choices=list(SOURCES), help="the sources to use, in order")
    args = parser.parse_args(argv)
    found = labelled(args.count, args.sources)
    by_source: dict[str, int] = {}
    for _, source in found:
        by_source[source] = by_source.get(source, 0) + 1
    print(f"{len(found):,} distinct sentences: " + ", ".join(f"{n:,} from {s}" for s, n in by_source.items()))
    if args.output is not None:
        args.output.write_text("".join(text + "\n" for text, _ in found))
    if len(found) < args.count:
        print(f"only {len(found):,} of the {args.count:,} asked for", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
