"""Scoring a recording's batches side by side on a CPU, each batch on one thread.

A CPU scan spends its time in two places: decoding (one reader thread) and the model (PyTorch's
intra-op threads, all of them, one operator at a time). While the reader decodes, it takes a core
from one of the model's threads, and every operator then waits at its end for that thread: on a
2-core machine the two stages added up instead of overlapping. Scoring batches side by side,
each on a single thread, leaves nothing waiting on a slow thread: the operating system shares the
cores between the reader and the batches, and the decoding fills the gaps.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()
_holders = 0
_threads_before = 1


@contextmanager
def single_threaded_ops() -> Iterator[int]:
    """While held, each PyTorch operator runs on the thread that calls it; yields the intra-op
    thread count from before (how many batches to score side by side).

    torch's thread count is the process's, so concurrent holders (files scanned in parallel)
    share one setting: the first sets it, the last puts back what was there.
    """
    global _holders, _threads_before
    with _lock:
        if _holders == 0:
            _threads_before = torch.get_num_threads()
            if _threads_before > 1:
                torch.set_num_threads(1)
        _holders += 1
        threads = _threads_before
    try:
        yield threads
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _threads_before > 1:
                torch.set_num_threads(_threads_before)


def ordered_map(
    work: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    before_each: Callable[[], None] = lambda: None,
) -> Iterator[R]:
    """`work(item)` for each item on `workers` threads, yielded in input order.

    At most twice `workers` items are in flight (so memory stays bounded and no worker waits
    for the next item). `before_each()` runs before an item is taken, and may raise to stop: the
    items in flight are then finished or cancelled before the exception goes on.
    """
    if workers <= 1:
        for item in items:
            before_each()
            yield work(item)
        return
    in_flight: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bioclass-batch") as pool:
        try:
            for item in items:
                before_each()
                in_flight.append(pool.submit(work, item))
                if len(in_flight) >= 2 * workers:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()
        finally:
            for future in in_flight:
                future.cancel()
