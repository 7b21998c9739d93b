"""The non-PAR X chromosome: how a male's genotype is coded, as PLINK 2 codes it.

Males carry one copy of the non-pseudoautosomal X. VCF writers store their calls as
haploid (``0``/``1``, 1000 Genomes, imputation servers) or as homozygous diploid
(``0/0``/``1/1``); PLINK reads both as homozygous, on the diploid 0..2 scale, and so
does :func:`gwas_prs.methods.dosage.alt_dosage_expr`. :func:`x_coded_dosage_expr`
then applies ``--xchr-model`` to males on the non-PAR X (the PARs come from the
reference genome and stay diploid, like autosomes):

- ``2`` (PLINK 2's default): males 0/2 — a hemizygous ALT counts as two copies
  (dosage compensation);
- ``1``: males 0/1 (PLINK 1.9's coding).

Females are 0/1/2 in both. The reported sex (male = 1, female = 2, PLINK's coding)
is a covariate of non-PAR X association tests when both sexes are present, so that
samples of unknown sex drop out there, as in ``plink2 --glm``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gwas_prs.methods.dosage import alt_dosage_expr

if TYPE_CHECKING:
    import hail as hl

#: ``--xchr-model`` values: the scale of a male's non-PAR X dosage (1: 0..1, 2: 0..2).
XCHR_MODELS = (1, 2)
#: The column field :func:`annotate_x_sex` adds: 1 male, 2 female, missing unknown.
X_SEX_FIELD = "_x_sex"
#: Column names that hold the reported sex in sample metadata.
REPORTED_SEX_FIELDS = ("is_female", "gender", "reported_sex", "sex")


def reported_sex_field(col_fields: list[str]) -> str | None:
    """The column field holding the reported sex, if any (see :data:`REPORTED_SEX_FIELDS`)."""
    return next((f for f in REPORTED_SEX_FIELDS if f in col_fields), None)


def reported_is_female_expr(value: hl.expr.Expression) -> hl.expr.BooleanExpression:
    """Reported sex → ``is_female`` (bool, missing when unknown).

    Accepts ``female``/``male``, ``F``/``M``, PLINK codes ``2``/``1`` (strings or
    numbers) or booleans.
    """
    import hail as hl

    if value.dtype == hl.tbool:
        return value
    if value.dtype in (hl.tint32, hl.tint64, hl.tfloat32, hl.tfloat64):
        number = hl.float64(value)
        return hl.case().when(number == 2.0, True).when(number == 1.0, False).or_missing()
    text = hl.str(value).lower()
    return (
        hl.case()
        .when(hl.literal({"female", "f", "2", "woman"}).contains(text), True)
        .when(hl.literal({"male", "m", "1", "man"}).contains(text), False)
        .or_missing()
    )


def annotate_x_sex(mt: hl.MatrixTable) -> hl.MatrixTable:
    """``mt`` with the column field :data:`X_SEX_FIELD` (float64: 1 male, 2 female,
    missing when unknown or when ``mt`` has no reported-sex column); kept as it is when
    ``mt`` already has it (the gwas stage reads it from the silver columns before the
    phenotype covariates, one of which may be named ``sex``, replace them)."""
    import hail as hl

    if X_SEX_FIELD in mt.col:
        return mt

    field = reported_sex_field(list(mt.col))
    if field is None:
        return mt.annotate_cols(**{X_SEX_FIELD: hl.missing(hl.tfloat64)})
    female = reported_is_female_expr(mt[field])
    return mt.annotate_cols(**{X_SEX_FIELD: hl.if_else(female, 2.0, 1.0)})


def x_coded_dosage_expr(mt: hl.MatrixTable, xchr_model: int) -> hl.expr.Float64Expression:
    """The ALT dosage with ``--xchr-model`` applied (float64, missing for a missing call).

    On the non-PAR X, a male's dosage (diploid scale, :func:`alt_dosage_expr`) is
    halved under model 1 and kept under model 2; everywhere else, and for females,
    the dosage is :func:`alt_dosage_expr`. ``mt`` needs :data:`X_SEX_FIELD`
    (:func:`annotate_x_sex`); a sample of unknown sex keeps the diploid value.
    """
    import hail as hl

    if xchr_model not in XCHR_MODELS:
        raise ValueError(f"xchr_model {xchr_model}: choose 1 or 2")
    dosage = alt_dosage_expr(mt)
    if xchr_model == 2:
        return dosage
    male = hl.coalesce(mt[X_SEX_FIELD] == 1.0, False)
    return hl.if_else(mt.locus.in_x_nonpar() & male, dosage / 2, dosage)


def x_alt_frequency_expr(mt: hl.MatrixTable) -> hl.expr.Float64Expression:
    """ALT frequency of a non-PAR X variant counting one allele per male (row
    aggregation): ``(Σ dosage of others + Σ male dosage / 2) / (2·others + males)``
    over the samples with a call (a sample of unknown sex counts as diploid)."""
    import hail as hl

    dosage = alt_dosage_expr(mt)
    male = hl.coalesce(mt[X_SEX_FIELD] == 1.0, False)
    copies = hl.if_else(male, dosage / 2, dosage)
    alleles = hl.if_else(male, 1.0, 2.0)
    called = hl.is_defined(dosage)
    total = hl.agg.filter(called, hl.agg.sum(alleles))
    return hl.or_missing(total > 0, hl.agg.filter(called, hl.agg.sum(copies)) / total)


def x_nonpar_interval(mt: hl.MatrixTable) -> list[hl.Interval]:
    """Intervals covering ``mt``'s X contigs (for :func:`hail.filter_intervals`; the
    PARs inside them are removed with ``in_x_nonpar``)."""
    import hail as hl

    reference = mt.locus.dtype.reference_genome
    return [
        hl.Interval(
            hl.Locus(contig, 1, reference),
            hl.Locus(contig, reference.lengths[contig], reference),
            includes_end=True,
        )
        for contig in reference.x_contigs
    ]
