"""qc protects the cohort: a cohort simulated on one short region (300 samples x
3,000 SNPs on 1.3 Mb, msprime) leaves a few hundred LD-pruned SNPs, on which KING
kinship is noise and many unrelated pairs look related. qc must warn that its
sample filters rest on too few independent SNPs, and stop before writing silver
when one filter would remove more than --max-removed-fraction of the samples."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gwas_prs.core.errors import InputError
from gwas_prs.stages.qc import (
    MIN_INDEPENDENT_SNPS,
    check_removed_fraction,
    few_independent_snps_warning,
)
from tests.cli_helpers import invoke


def test_the_removed_fraction_check_names_the_filter_the_fraction_and_the_option() -> None:
    check_removed_fraction("relatedness", 10, 100, 0.10, 5000)  # 10% is allowed
    with pytest.raises(InputError) as caught:
        check_removed_fraction("relatedness", 2082, 7999, 0.10, 1951)
    message = str(caught.value)
    assert "\n" not in message
    for part in ("relatedness filter", "2,082 of 7,999", "26.0%", "--max-removed-fraction 0.1",
                 "KING rests on 1,951 LD-pruned SNPs", "--kinship", "--max-removed-fraction 0.27"):  # fmt: skip
        assert part in message, part
    with pytest.raises(InputError, match="--min-sample-call-rate"):
        check_removed_fraction("call_rate", 50, 100, 0.10, 5000)
    assert few_independent_snps_warning(MIN_INDEPENDENT_SNPS) is None
    warning = few_independent_snps_warning(412)
    assert warning is not None and "412 LD-pruned SNPs" in warning


@pytest.mark.slow
def test_a_one_region_cohort_warns_and_stops_before_silver(
    hail_context: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("msprime")
    from gwas_prs.stages.ingest import IngestConfig, run_ingest
    from gwas_prs.stages.qc import QcConfig, run_qc

    cohort = tmp_path / "one"
    code, _, errors = invoke(
        "simulate-cohort", "--out", str(cohort), "--samples", "300", "--variants", "3000",
        "--chromosomes", "1", "--populations", "1", "--seed", "3",
    )  # fmt: skip
    assert code == 0, errors
    run = tmp_path / "run"
    run_ingest(
        IngestConfig(
            vcfs=(str(cohort / "chr1.vcf.bgz"),),
            run_dir=str(run),
            samples_file=str(cohort / "samples.panel"),
        )
    )
    caplog.set_level(logging.WARNING)
    with pytest.raises(InputError) as caught:
        run_qc(QcConfig(run_dir=str(run)))
    message = str(caught.value)
    assert "relatedness filter would remove" in message and "--max-removed-fraction" in message
    assert "%" in message and "\n" not in message
    assert any("LD-pruned SNPs" in r.getMessage() for r in caplog.records)
    assert not (run / "silver" / "genotypes.mt").exists()  # nothing that looks complete
    # accepting it (--max-removed-fraction 1) is tested on one bundled chromosome in
    # tests/test_qc_stage.py::test_qc_without_sample_metadata
