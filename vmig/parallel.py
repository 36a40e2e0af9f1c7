"""Work beside the main thread: worker processes for CPU-heavy steps, threads for waiting ones.

Parsing and formatting `.vmig.jsonl` lines cost more than most stores' loads, and one Python
process does them on one core. `OrderedWorkers` runs them in worker processes while the main
process talks to the store, and hands results back in the order the work went out (files,
cursors and line numbers are exactly a serial run's) with few items in flight (bounded memory).
Threads carry the steps that let go of the GIL or wait on a server: `OneInFlight` (hashing,
writing) and `read_ahead` (the next page of a source).

Workers come from loky's reusable pool: spawned, not forked (a run may have Prefect's threads),
without re-importing the caller's main module (a script without a `__main__` guard works), and
kept `IDLE_SECONDS` after use. `VEX_WORKERS` sets how many (0 or 1: none).
"""

from __future__ import annotations

import importlib
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from loky import get_reusable_executor

from vmig.errors import UsageError
from vmig.signals import ignore_interrupts, interrupts_ignored_by_new_processes

T = TypeVar("T")
R = TypeVar("R")

WORKERS_ENV = "VEX_WORKERS"
MAX_DEFAULT_WORKERS = 4
IDLE_SECONDS = 60
"""Workers left idle this long stop (until then a next read starts at once); the next use spawns them again."""


def _exit_with_parent(parent: int) -> None:
    """In each worker: leave as soon as the process that started it is gone.

    A run killed outright (SIGKILL, the OOM killer) cannot stop its workers, and loky's
    own check misses a parent that died mid-exchange; a worker polling its parent id
    never outlives the run by more than a second.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_POLL_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="vex-parent-watch", daemon=True).start()


_PARENT_POLL_SECONDS = 0.5


def _start_worker(parent: int) -> None:
    """Once in each worker: it leaves with its parent, and leaves Ctrl-C to it."""
    _exit_with_parent(parent)
    ignore_interrupts()


WORKER_MEMORY_ENV = {
    "MIMALLOC_PURGE_DELAY": "1000",
    "MALLOC_TRIM_THRESHOLD_": str(128 << 20),
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
}
"""Allocator settings for workers: keep freed memory for reuse instead of handing it back at once.

A worker frees and allocates a slice's buffers (a few MB) many times a second. By default
Arrow's mimalloc gives freed pages back to the kernel after 10 ms and glibc trims or unmaps
blocks this size on free, so every slice would fault its memory in again, a fifth of a large
export's CPU time. A worker holds at most about its largest slice's memory beyond what it uses.
Settings already in the environment win."""


def _pool(workers: int) -> Any:
    env = {name: value for name, value in WORKER_MEMORY_ENV.items() if name not in os.environ}
    return get_reusable_executor(
        workers, timeout=IDLE_SECONDS, initializer=_start_worker, initargs=(os.getpid(),), env=env
    )


def _submit(workers: int, fn: Callable[..., R], *args: Any) -> Future[R]:
    """Hand work to the pool. A submit that starts workers does so with SIGINT ignored, which a new process
    inherits (Python then installs no KeyboardInterrupt handler in it): a Ctrl-C reaches the terminal's
    whole process group, and a worker still importing would print a traceback. Once started, a worker
    ignores SIGINT itself (`_start_worker`); the run handles it and stops the workers."""
    pool = _pool(workers)
    if len(getattr(pool, "_processes", None) or ()) >= workers:
        return pool.submit(fn, *args)  # type: ignore[no-any-return]
    with interrupts_ignored_by_new_processes():
        return pool.submit(fn, *args)  # type: ignore[no-any-return]


def _preload(module: str) -> None:
    """Import what workers run, ahead of the first real job."""
    importlib.import_module(module)


def warm_up(workers: int, module: str) -> list[Future[None]]:
    """Start the worker processes now (they take a moment), so that they are ready when the data is.

    Returns one future per worker's start: all done, the workers can take work without a wait."""
    if workers <= 1:
        return []
    return [_submit(workers, _preload, module) for _ in range(workers)]


def worker_count() -> int:
    """Worker processes for a large input: `VEX_WORKERS`, else one per core (at most four)."""
    given = os.environ.get(WORKERS_ENV)
    if given is not None and given.strip():
        try:
            count = int(given)
        except ValueError:
            raise UsageError(f"{WORKERS_ENV} must be a whole number, got {given!r}") from None
        return max(count, 0)
    return min(cores(), MAX_DEFAULT_WORKERS)


def cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class OneInFlight:
    """Steps run one at a time on a thread of their own, each handed over once the last is done.

    For work that lets go of the GIL (hashing, compressing, file writes) beside the work
    that holds it: order is kept, at most one step's data waits, and a step's error comes
    out at the next hand-over or at `settle`.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[Any] | None = None

    def submit(self, step: Callable[..., Any], *args: Any) -> None:
        self.settle()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix=self.name)
        self._pending = self._pool.submit(step, *args)

    def settle(self) -> None:
        """Wait for the step in flight; its error, if any, is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self, drop: bool = False) -> None:
        """Stop the thread once its step is done; with `drop`, that step's outcome is ignored."""
        if drop:
            self._pending = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def read_ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """`items` in order, produced by a thread that runs up to `depth` items ahead of the consumer.

    For a source read: while the consumer writes one page out, the thread already waits on
    the store for the next, so the store's work overlaps ours instead of alternating with it.
    An error is raised to the consumer where its item would have come. When the consumer
    stops early, the thread finishes the item in hand, closes `items` (in its own thread, as
    a generator requires) and is joined, so nothing uses the source afterwards.
    """
    slots: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()

    def offer(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=_STOP_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((item, None)):
                    return
            offer((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            offer((None, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="vex-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()


_END = object()
_STOP_POLL_SECONDS = 0.5
"""How often a producer blocked on a full queue looks whether the consumer has stopped."""


class OrderedWorkers(Generic[T, R]):
    """`fn` applied to items in worker processes; results handed back in submission order.

    With fewer than two workers `fn` runs in this process, so callers have one code path.
    """

    def __init__(self, fn: Callable[[T], R], workers: int, ahead_per_worker: int = 2) -> None:
        self.fn = fn
        self.workers = workers
        self.window = ahead_per_worker * max(workers, 1)
        """Items in flight at most: what bounds memory, and how long workers stay busy unattended."""
        self._pending: deque[Future[R]] = deque()

    def submit(self, item: T) -> list[R]:
        """Queue one item; returns the results now due (waiting for the oldest while the window is full)."""
        if self.workers < 2:
            return [self.fn(item)]
        self._pending.append(_submit(self.workers, self.fn, item))
        due = []
        while len(self._pending) >= self.window or (self._pending and self._pending[0].done()):
            due.append(self._pending.popleft().result())
        return due

    def drain(self) -> Iterator[R]:
        """The remaining results, in order."""
        while self._pending:
            yield self._pending.popleft().result()

    def close(self) -> None:
        """Drop work not yet handed back (what a worker has started finishes there, unused)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()

    def map(self, items: Iterable[T]) -> Generator[R, None, None]:
        """All results of `items`, in order, reading `items` only as far as the window needs."""
        try:
            for item in items:
                yield from self.submit(item)
            yield from self.drain()
        finally:
            self.close()
