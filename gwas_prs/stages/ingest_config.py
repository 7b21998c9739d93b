"""The ingest stage's config and result (shared by the VCF and the other inputs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gwas_prs.core.errors import InputError
from gwas_prs.core.stage_options import INGEST


@dataclass(frozen=True)
class IngestConfig:
    """Parameters of the ingest stage (see ``gwas-prs ingest --help``)."""

    vcfs: tuple[str, ...]
    run_dir: str
    samples_file: str | None = None
    sample_id_column: str | None = INGEST.default("sample-id-column")
    reference_genome: str = INGEST.default("reference-genome")
    keep_symbolic: bool = INGEST.default("keep-symbolic")
    skip_unknown_contigs: bool = INGEST.default("skip-unknown-contigs")
    hard_call_threshold: float = INGEST.default("hard-call-threshold")
    bgen_sample: str | None = INGEST.default("bgen-sample")
    overwrite: bool = False
    validation_workers: int | None = None

    def validate(self) -> None:
        """Raises InputError for a hard-call threshold outside [0, 0.5)."""
        if not 0 <= self.hard_call_threshold < 0.5:
            raise InputError(
                f"--hard-call-threshold {self.hard_call_threshold}: must be in [0, 0.5) "
                "(0.1 is plink2's default)"
            )


@dataclass
class IngestResult:
    """What :func:`run_ingest` did."""

    run_dir: str
    output: str
    samples: int
    counts: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    log_path: str | None = None
