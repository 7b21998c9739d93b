"""How much memory the numpy steps of local mode may take, from the machine.

The in-memory kernels (KING's N × N count matrices, the exact PCA's Gram matrix,
the logistic Wald blocks) size themselves from :func:`numpy_memory_budget_bytes`
instead of constants: half of the memory available when the step starts (Linux
``MemAvailable``, which already leaves out the JVM heap in use), else half of the
machine's memory less the default JVM heap. A 24 GiB laptop and a 256 GiB node
then get caps that fit each.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

logger = logging.getLogger(__name__)

#: Share of the available memory one numpy step may plan to use.
BUDGET_SHARE = 0.5


def available_memory_bytes() -> int:
    """``MemAvailable`` of ``/proc/meminfo`` (bounded by the cgroup limit), else the
    machine's memory less the default JVM heap."""
    from gwas_prs.engine.hail_context import default_driver_memory, total_memory_bytes

    total = total_memory_bytes()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return min(int(line.split()[1]) * 1024, total)
    except (OSError, ValueError, IndexError):
        pass
    heap = int(default_driver_memory(total).rstrip("g")) * 2**30
    return max(total - heap, total // 4)


def numpy_memory_budget_bytes() -> int:
    """Bytes one numpy step may plan for: :data:`BUDGET_SHARE` of
    :func:`available_memory_bytes`."""
    return int(available_memory_bytes() * BUDGET_SHARE)


def max_square_samples(bytes_per_pair: float, budget: int | None = None) -> int:
    """The largest N whose N × N arrays, at ``bytes_per_pair`` bytes per sample pair in
    all, fit in ``budget`` (default :func:`numpy_memory_budget_bytes`)."""
    budget = numpy_memory_budget_bytes() if budget is None else budget
    return int(math.sqrt(max(budget, 0) / bytes_per_pair))


def rows_per_block(
    n_samples: int, bytes_per_entry: float, workers: int, largest: int, budget: int | None = None
) -> int:
    """Rows of a block of ``n_samples`` columns so that ``workers`` blocks at once, at
    ``bytes_per_entry`` bytes per row × sample, fit in ``budget``; between 16 and
    ``largest``."""
    budget = numpy_memory_budget_bytes() if budget is None else budget
    rows = budget / max(1.0, workers * max(n_samples, 1) * bytes_per_entry)
    return int(min(largest, max(16, rows)))
