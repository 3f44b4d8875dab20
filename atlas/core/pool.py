"""The post-compute stages' per-pair work (scoring, sprite sheets) on every core: a process pool.

Scoring a (model, image) pair and encoding its sprite sheets are numpy and zlib work of a few
milliseconds each, independent of one another, so they spread over processes. The pool forks where the
platform can (Linux: the children inherit the imported modules, no start-up cost) and falls back to
the platform's default start method elsewhere. ``ATLAS_WORKERS`` sets the number of processes
(default: the CPUs this process may use; ``1`` runs everything in this process, in order).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from atlas.core.limits import WORKERS, env_number

T = TypeVar("T")
R = TypeVar("R")

CHUNK = 4  # items per task sent to a worker: amortises the pickling of small results


def worker_count() -> int:
    """How many processes the post-compute stages use (``ATLAS_WORKERS``, else the usable CPUs)."""
    configured = env_number("ATLAS_WORKERS", WORKERS)
    if configured is not None:
        return configured
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return max(1, len(usable) if usable else (os.cpu_count() or 1))


def _worker_start() -> None:
    """In each worker: die with the build (Linux ``PR_SET_PDEATHSIG``), so a killed build leaves no worker
    behind that goes on computing."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def parallel_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int | None = None,
                 on_done: Callable[[], None] | None = None) -> Iterator[R]:
    """``fn`` of each item, in the items' order, computed by ``workers`` processes (``worker_count()``).

    ``fn`` and the items must be picklable (module-level functions, plain data). ``on_done`` is called
    in this process once per finished item. With one worker or one item, everything runs here.
    """
    items = list(items)
    workers = min(workers or worker_count(), len(items))
    if workers <= 1:
        for item in items:
            result = fn(item)
            if on_done:
                on_done()
            yield result
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_start) as pool:
        for result in pool.map(fn, items, chunksize=CHUNK):
            if on_done:
                on_done()
            yield result
