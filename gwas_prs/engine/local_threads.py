"""Splitting numpy work over the cores of local mode.

The numpy steps of local mode (logistic fits, clumping LD, LD pruning) are
blocks of BLAS products and element-wise operations. BLAS uses every core it is
allowed, but element-wise operations run on one, so a step gained little from a
second core. :func:`map_blocks` runs independent blocks in threads instead (numpy
releases the GIL inside its kernels), each with a single-threaded BLAS, so both
kinds of work use every core.

The number of cores is the ``N`` of Hail's ``local[N]`` (``--cores``), recorded
by :func:`set_local_cores` when Hail starts; without it, the usable cores.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

_local_cores: int | None = None
_scratch_dir: str | None = None


def set_scratch_dir(folder: str | None) -> None:
    """Record the local folder for the numpy steps' temporary files (``RUN/tmp/local``,
    set by :func:`gwas_prs.engine.hail_context.start_hail` for a local run folder)."""
    global _scratch_dir
    _scratch_dir = folder


def scratch_dir() -> str | None:
    """The folder of :func:`set_scratch_dir` when it exists, else None (the system's
    temporary folder)."""
    return _scratch_dir if _scratch_dir and os.path.isdir(_scratch_dir) else None


def set_local_cores(cores: int) -> None:
    """Record the cores of local mode (called by :func:`gwas_prs.engine.hail_context.start_hail`)."""
    global _local_cores
    _local_cores = max(1, int(cores))


def local_cores() -> int:
    """Cores the numpy steps may use."""
    if _local_cores is not None:
        return _local_cores
    return usable_cores()


def usable_cores() -> int:
    """Number of CPU cores this process may use (respects affinity/cgroup pinning)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


def map_blocks(function: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """``map(function, items)`` in order, over :func:`local_cores` threads.

    With more than one core, BLAS is held to one thread per block while the
    blocks run (and restored afterwards), so the threads do not oversubscribe
    the cores. ``function`` must not depend on the order in which blocks run.
    """
    workers = local_cores()
    if workers <= 1:
        yield from map(function, items)
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        yield from pool.map(function, items)
