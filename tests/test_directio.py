"""The direct-I/O file under the `.vmig.jsonl` writer: the same bytes as an ordinary write, always."""

from __future__ import annotations

import errno
import fcntl
import os
import random
from pathlib import Path

import pytest

from vmig import directio
from vmig.directio import BLOCK, DirectFile


@pytest.fixture
def small_buffer(monkeypatch: pytest.MonkeyPatch) -> int:
    """A buffer of three blocks, so that every path (full buffer, tail, both) is taken many times."""
    monkeypatch.setattr(directio, "BUFFER_BYTES", 3 * BLOCK)
    return 3 * BLOCK


def _direct_supported(folder: Path) -> bool:
    if not directio._O_DIRECT:
        return False
    try:
        os.close(os.open(folder / "probe", os.O_WRONLY | os.O_CREAT | directio._O_DIRECT, 0o600))
    except OSError:
        return False
    finally:
        (folder / "probe").unlink(missing_ok=True)
    return True


def _chunks(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    sizes = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK, 3 * BLOCK + 7, 10 * BLOCK + 3]
    sizes += [rng.randrange(1, 5 * BLOCK) for _ in range(40)]
    rng.shuffle(sizes)
    return [rng.randbytes(size) for size in sizes]


def test_the_file_holds_exactly_the_bytes_written_with_flushes_between(tmp_path: Path, small_buffer: int) -> None:
    chunks = _chunks(7)
    target = tmp_path / "out.bin"
    handle = DirectFile(target)
    assert handle.direct == _direct_supported(tmp_path)
    written = b""
    for number, chunk in enumerate(chunks):
        assert handle.write(chunk) == len(chunk)
        written += chunk
        if number % 5 == 4:
            handle.flush()  # the tail goes out padded and is cut back; later writes must overwrite it
            assert target.read_bytes() == written
    handle.close()
    assert handle.closed
    assert target.read_bytes() == written


def test_memoryviews_and_an_existing_file_are_handled(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old content that must go" * 1000)
    data = os.urandom(3 * directio.BUFFER_BYTES + 12345)
    handle = DirectFile(target)
    handle.write(memoryview(data)[:100])
    handle.write(memoryview(data)[100:])
    handle.close()
    assert target.read_bytes() == data


def test_a_filesystem_refusing_o_direct_at_open_gets_ordinary_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_buffer: int
) -> None:
    monkeypatch.setattr(directio, "_O_DIRECT", directio._O_DIRECT or 0o40000)
    real_open = os.open

    def no_direct(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & directio._O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(directio.os, "open", no_direct)
    chunks = _chunks(11)
    handle = DirectFile(tmp_path / "out.bin")
    assert not handle.direct
    for chunk in chunks:
        handle.write(chunk)
    handle.close()
    assert (tmp_path / "out.bin").read_bytes() == b"".join(chunks)


@pytest.mark.parametrize("size", [100, 3 * BLOCK * 2 + 100], ids=["tail only", "full buffers, then the tail"])
def test_a_filesystem_refusing_direct_writes_gets_ordinary_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_buffer: int, size: int
) -> None:
    if not _direct_supported(tmp_path):
        pytest.skip("this filesystem refuses O_DIRECT at open already")
    real_pwrite = os.pwrite
    refused = []

    def refuse_direct(fd: int, data: memoryview, offset: int) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & directio._O_DIRECT:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(directio.os, "pwrite", refuse_direct)
    data, more = os.urandom(size), os.urandom(size // 2)
    handle = DirectFile(tmp_path / "out.bin")
    assert handle.direct
    handle.write(data)
    handle.flush()
    handle.write(more)
    handle.close()
    assert refused == [0] and not handle.direct
    assert (tmp_path / "out.bin").read_bytes() == data + more


def test_other_write_errors_reach_the_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: memoryview, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(directio.os, "pwrite", full)
    handle = DirectFile(tmp_path / "out.bin")
    handle.write(b"x" * 10)
    with pytest.raises(OSError, match="No space"):
        handle.close()
    assert handle.closed
