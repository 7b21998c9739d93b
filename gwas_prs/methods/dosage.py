"""The genotype value every dosage-based method uses, on the Hail engine.

Bronze and silver MatrixTables carry ``GT`` and, for imputed input, ``DS`` (the
expected number of ALT alleles; see :mod:`gwas_prs.formats.genotype_import`).
Association tests, scoring, allele frequencies, clumping's r² and the LD of
LDpred2/lassosum2 use :func:`alt_dosage_expr`: ``DS`` when the MatrixTable has it, else
the ALT count of ``GT``. Methods that need hard calls (KING, LD pruning,
heterozygosity, HWE; clumping of hard-called cohorts, PLINK 1.9's haplotype r²) keep
using ``GT``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import hail as hl


def has_dosages(mt: hl.MatrixTable) -> bool:
    """True when ``mt`` has the float64 entry field ``DS``."""
    return "DS" in mt.entry


def diploid_call_expr(gt: hl.expr.CallExpression) -> hl.expr.CallExpression:
    """``gt`` with a haploid call made homozygous diploid (``1`` → ``1/1``), as PLINK
    reads a male's non-PAR X call and as the silver .bed stores it; other calls as
    they are. Methods on hard calls (clumping r², frequencies, the sex check) use it
    so that both engines see the same genotypes."""
    import hail as hl

    return hl.if_else(gt.ploidy == 1, hl.call(gt[0], gt[0]), gt)


def alt_dosage_expr(mt: hl.MatrixTable) -> hl.expr.Float64Expression:
    """The ALT dosage on the diploid 0..2 scale (float64, missing for a missing call):
    ``DS`` when ``mt`` has dosages, else the ALT count of ``GT``.

    A haploid call (a male's non-PAR X in most VCFs) counts as homozygous, as PLINK
    reads it: ``GT`` ``1`` → 2, and its ``DS`` (0..1 for a haploid call) doubled;
    :mod:`gwas_prs.methods.chrx` then applies ``--xchr-model``.
    """
    import hail as hl

    haploid = hl.coalesce(mt.GT.ploidy == 1, False) if "GT" in mt.entry else None
    if has_dosages(mt):
        dosage = hl.float64(mt.DS)
        return dosage if haploid is None else hl.if_else(haploid, 2 * dosage, dosage)
    count = hl.float64(mt.GT.n_alt_alleles())
    return hl.if_else(haploid, 2 * count, count) if haploid is not None else count
