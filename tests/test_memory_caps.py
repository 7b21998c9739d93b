"""Memory caps of the numpy kernels come from the machine, not constants (no JVM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gwas_prs.engine.memory import (
    available_memory_bytes,
    max_square_samples,
    numpy_memory_budget_bytes,
    rows_per_block,
)

GIB = 2**30


def test_square_caps_grow_with_the_memory() -> None:
    """KING's 64 bytes per sample pair: ~12,000 samples on a 24 GiB laptop (about 10 GiB
    of budget), ~3.6x that on a 256 GiB node; the exact PCA's 24 bytes allow more."""
    from gwas_prs.methods.qc.sample_qc import LOCAL_KING_BYTES_PER_PAIR

    laptop = max_square_samples(LOCAL_KING_BYTES_PER_PAIR, budget=10 * GIB)
    node = max_square_samples(LOCAL_KING_BYTES_PER_PAIR, budget=128 * GIB)
    assert 12_000 <= laptop <= 13_000
    assert node == pytest.approx(laptop * (128 / 10) ** 0.5, rel=1e-3)
    assert max_square_samples(24, budget=10 * GIB) > laptop


def test_wald_blocks_shrink_with_samples_and_cores() -> None:
    """The logistic Wald block: 2,048 variants at the demo's size; for 39,000 samples on
    64 cores and a 128 GiB budget it shrinks so that every worker's block fits."""
    from gwas_prs.methods.gwas.logistic_local import BLOCK, WALD_BYTES_PER_ENTRY

    assert rows_per_block(1_126, WALD_BYTES_PER_ENTRY, 2, BLOCK, budget=10 * GIB) == BLOCK
    big = rows_per_block(39_000, WALD_BYTES_PER_ENTRY, 64, BLOCK, budget=128 * GIB)
    assert 16 <= big < BLOCK
    assert big * 64 * 39_000 * WALD_BYTES_PER_ENTRY <= 128 * GIB


def test_the_budget_is_half_the_available_memory() -> None:
    available = available_memory_bytes()
    assert available > 0
    assert numpy_memory_budget_bytes() == pytest.approx(available / 2, rel=0.05)


def test_numpy_temporary_files_go_to_the_run_folder(tmp_path: Path) -> None:
    """start_hail records RUN/tmp/local for the numpy steps' .bed exports; a remote
    run folder (or none) leaves them in the system's temporary folder."""
    from gwas_prs.engine.hail_context import _local_scratch
    from gwas_prs.engine.local_threads import scratch_dir, set_scratch_dir

    run = tmp_path / "run"
    folder = _local_scratch(str(run))
    assert folder == str(run / "tmp" / "local") and Path(folder).is_dir()
    set_scratch_dir(folder)
    try:
        assert scratch_dir() == folder
        assert _local_scratch("gs://bucket/run") is None
        set_scratch_dir(None)
        assert scratch_dir() is None
    finally:
        set_scratch_dir(None)
