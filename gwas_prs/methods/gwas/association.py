"""Association tests per variant (GWAS), several traits in one pass.

:func:`association_tests` wraps :func:`hail.linear_regression_rows` (all
quantitative traits together, one pass, each trait with its own non-missing
samples) and :func:`hail.logistic_regression_rows` (binary traits; Wald, LRT,
score or Firth; ``firth`` here means *Wald with Firth fallback*, as PLINK 2's
``--glm firth-fallback``: variants whose Wald fit does not converge, or whose
case/control counts make it unstable, are re-fitted with Firth's penalised
likelihood).

The genotype is the ALT allele count; missing genotypes are mean-imputed per
variant (Hail's rule — PLINK drops such samples per variant instead, which only
matters for variants with missing calls; after QC there are few).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from gwas_prs.core.errors import InputError
from gwas_prs.core.stage_options import GWAS
from gwas_prs.formats.silver_bed import (
    SilverBed,
    column_indices,
    silver_dosage_rows,
    write_dosage_pgen,
)
from gwas_prs.methods.chrx import (
    REPORTED_SEX_FIELDS,
    X_SEX_FIELD,
    XCHR_MODELS,
    annotate_x_sex,
    x_alt_frequency_expr,
    x_coded_dosage_expr,
    x_nonpar_interval,
)
from gwas_prs.methods.dosage import alt_dosage_expr, diploid_call_expr, has_dosages

if TYPE_CHECKING:
    import hail as hl

logger = logging.getLogger(__name__)

TESTS: tuple[str, ...] = GWAS.choices("test")
XCHR_MODEL: int = GWAS.default("xchr-model")
#: Wald with Firth fallback: plink2's Wald Z from the Firth fit, or Hail's penalised LRT.
FIRTH_FALLBACK = ("firth", "firth-lrt")


@dataclass(frozen=True)
class TraitSpec:
    """A trait to test: its name and whether it is binary (0/1)."""

    name: str
    binary: bool


def lambda_gc(p_values: Sequence[float] | np.ndarray) -> float:
    """Genomic inflation λGC: median χ²(1) of the p-values / 0.4549 (its null median)."""
    p = np.asarray(p_values, dtype=float)
    p = p[np.isfinite(p) & (p > 0) & (p <= 1)]
    if p.size == 0:
        return float("nan")
    chi2 = stats.chi2.isf(p, df=1)
    return float(np.median(chi2) / stats.chi2.ppf(0.5, df=1))


def association_tests(
    mt: hl.MatrixTable,
    traits: Sequence[TraitSpec],
    phenotype: Mapping[str, str],
    covariates: Sequence[str],
    *,
    test: str = "firth",
    silver: SilverBed | None = None,
    xchr_model: int = XCHR_MODEL,
) -> dict[str, hl.Table]:
    """Run one association test per variant and trait.

    Parameters
    ----------
    mt : :class:`hail.MatrixTable`
        Genotypes (``GT``, and ``DS`` for imputed input: then every test uses the
        dosage, :mod:`gwas_prs.methods.dosage`) of the samples to test (discovery set).
    traits
        Traits to test.
    phenotype
        Trait name → name of a float64 column field of ``mt`` (0/1 for binary).
    covariates
        Names of float64 column fields; the intercept is added here.
    test
        For binary traits: ``firth`` (Wald with Firth fallback; the Firth rows carry
        plink2's Wald statistic ``b/se`` of the penalised fit, as ``plink2 --glm
        firth-fallback``), ``firth-lrt`` (the same fallback, the Firth rows tested by
        Hail's penalised likelihood-ratio test), ``wald``, ``lrt``, ``score``.
        Quantitative traits always use linear regression.
    silver
        The silver .bed kept by qc (:mod:`gwas_prs.formats.silver_bed`), when ``mt``'s
        rows are exactly its rows (the silver MatrixTable with column fields
        added): the local Wald fits then read their genotypes from it instead
        of exporting them from ``mt``. Same numbers either way (tested).
    xchr_model
        How a male's non-PAR X genotype is coded (:mod:`gwas_prs.methods.chrx`): ``2``
        (0/2, plink2's default) or ``1`` (0/1). Non-PAR X variants get the reported
        sex (the column :func:`~gwas_prs.methods.chrx.reported_sex_field`
        finds) as an extra covariate when both sexes are present, as ``plink2
        --glm``; the PARs are tested like autosomes.

    Returns
    -------
    dict of trait name → :class:`hail.Table` keyed by ``locus``, ``alleles``:

    - ``n`` (int32) — samples used,
    - ``beta`` (float64) — effect of one ALT allele (log odds ratio for binary),
    - ``standard_error`` (float64) — missing for LRT/score tests and firth-lrt's
      Firth rows,
    - ``statistic`` (float64) — t (linear), z (Wald, Firth rows of ``firth``), χ²
      (LRT/score, Firth rows of ``firth-lrt``),
    - ``p_value`` (float64),
    - ``alt_af`` (float64) — ALT allele frequency among the samples tested (on the
      non-PAR X a male carries one allele),
    - ``method`` (str) — ``linear``, ``wald``, ``firth``, ``lrt`` or ``score``.

    Warning
    -------
    A binary trait must be coded 0/1 (PLINK's 1/2 and case/control strings are
    recoded by the phenotype reader). Covariates with no variance (e.g. a sex
    column in a single-sex cohort) make the design singular: every p-value is
    then missing. Do not list the sex as a covariate for chrX's sake: it is added
    there (a covariate named like a sex column, e.g. ``sex``, is not added twice).
    Samples of unknown sex drop out of the non-PAR X tests when both sexes are
    present (as in plink2: their sex covariate is missing).
    """
    import hail as hl

    if test not in TESTS:
        raise InputError(f"--test {test}: choose one of {', '.join(TESTS)}")
    if xchr_model not in XCHR_MODELS:
        raise InputError(f"--xchr-model {xchr_model}: choose 1 or 2")
    x = hl.filter_intervals(mt, x_nonpar_interval(mt))
    x = x.filter_rows(x.locus.in_x_nonpar())
    if x.head(1).count_rows() == 0:
        return _association_pass(mt, traits, phenotype, covariates, test, silver)
    results = _association_pass(
        mt.filter_rows(~mt.locus.in_x_nonpar()), traits, phenotype, covariates, test, silver
    )
    x_results = _x_association_pass(x, traits, phenotype, covariates, test, xchr_model)
    return {name: results[name].union(x_results[name]) for name in results}


def _x_association_pass(
    x: hl.MatrixTable,
    traits: Sequence[TraitSpec],
    phenotype: Mapping[str, str],
    covariates: Sequence[str],
    test: str,
    xchr_model: int,
) -> dict[str, hl.Table]:
    """:func:`association_tests` on the non-PAR X rows ``x``: males coded by
    ``xchr_model``; the sex as a covariate of each trait whose samples have both sexes
    (samples of unknown sex then drop out, a missing covariate, as in plink2);
    ``alt_af`` counting one allele per male."""
    import hail as hl

    x = annotate_x_sex(x)
    named_sex = any(c.lower() in REPORTED_SEX_FIELDS for c in covariates)

    def tested(trait: TraitSpec, names: Sequence[str]) -> hl.expr.BooleanExpression:
        defined = hl.is_defined(x[phenotype[trait.name]])
        for c in names:
            defined = defined & hl.is_defined(x[c])
        return defined

    # the sexes among each trait's samples (a sex-specific trait gets no sex covariate)
    sexes = x.aggregate_cols(
        [hl.agg.filter(tested(t, covariates), hl.agg.counter(x[X_SEX_FIELD])) for t in traits]
    )
    with_sex = [bool(counts.get(1.0) and counts.get(2.0)) and not named_sex for counts in sexes]
    if not any(counts.get(1.0) or counts.get(2.0) for counts in sexes):
        logger.warning(
            "chrX: no sample has a reported sex (a gender/sex column in the sample file); "
            "the non-PAR X is tested without the sex covariate, every genotype as written"
        )
    for trait, counts, sex in zip(traits, sexes, with_sex, strict=True):
        logger.info(
            "chrX, %s: %d males, %d females, %d of unknown sex, --xchr-model %d%s",
            trait.name,
            counts.get(1.0, 0),
            counts.get(2.0, 0),
            counts.get(None, 0),
            xchr_model,
            ", sex as a covariate" if sex else "",
        )
    x = x.annotate_rows(
        _x_af=[
            hl.agg.filter(
                tested(t, [*covariates, X_SEX_FIELD] if sex else covariates),
                x_alt_frequency_expr(x),
            )
            for t, sex in zip(traits, with_sex, strict=True)
        ]
    )
    frequencies = x.rows().select("_x_af")
    entries: dict[str, hl.expr.Expression] = {}
    if "GT" in x.entry:
        entries["GT"] = diploid_call_expr(x.GT)
    if has_dosages(x) or xchr_model == 1:  # else the homozygous GT is the 0/2 coding
        entries["DS"] = x_coded_dosage_expr(x, xchr_model)
    x = x.select_entries(**entries)
    results: dict[str, hl.Table] = {}
    for sex in (True, False):
        group = [t for t, s in zip(traits, with_sex, strict=True) if s == sex]
        if group:
            names = [*covariates, X_SEX_FIELD] if sex else list(covariates)
            results |= _association_pass(x, group, phenotype, names, test, None)
    return {
        trait.name: results[trait.name].annotate(
            alt_af=frequencies[results[trait.name].key]._x_af[k]
        )
        for k, trait in enumerate(traits)
    }


def _association_pass(
    mt: hl.MatrixTable,
    traits: Sequence[TraitSpec],
    phenotype: Mapping[str, str],
    covariates: Sequence[str],
    test: str,
    silver: SilverBed | None,
) -> dict[str, hl.Table]:
    """The tests of :func:`association_tests` with every genotype as it stands (the
    caller codes the non-PAR X)."""
    import hail as hl

    from gwas_prs.engine.switch import numpy_engine

    def tested(trait: TraitSpec) -> hl.expr.BooleanExpression:
        """Column condition (on the current ``mt``, which the quantitative pass
        re-annotates): the trait's value and every covariate are present."""
        defined = hl.is_defined(mt[phenotype[trait.name]])
        for c in covariates:
            defined = defined & hl.is_defined(mt[c])
        return defined

    def alt_af_expr(trait: TraitSpec) -> hl.expr.Float64Expression:
        return hl.agg.filter(tested(trait), hl.agg.mean(alt_dosage_expr(mt))) / 2

    x = alt_dosage_expr(mt)
    covs = [1.0, *[mt[c] for c in covariates]]
    results: dict[str, hl.Table] = {}
    quantitative = [t for t in traits if not t.binary]
    if quantitative:
        mt = mt.annotate_rows(_alt_af=[alt_af_expr(t) for t in quantitative])
        x = alt_dosage_expr(mt)
        covs = [1.0, *[mt[c] for c in covariates]]
        ys = [[mt[phenotype[t.name]]] for t in quantitative]
        fit = hl.linear_regression_rows(y=ys, x=x, covariates=covs, pass_through=["_alt_af"])
        for k, trait in enumerate(quantitative):
            results[trait.name] = fit.select(
                n=fit.n[k],
                beta=fit.beta[k][0],
                standard_error=fit.standard_error[k][0],
                statistic=fit.t_stat[k][0],
                p_value=fit.p_value[k][0],
                alt_af=fit._alt_af[k],
                method="linear",
            )
    for trait in (t for t in traits if t.binary):
        first_test = "wald" if test in FIRTH_FALLBACK else test
        if first_test == "wald" and numpy_engine():
            table = local_wald_table(mt, trait, phenotype[trait.name], covariates, silver)
        else:
            table = _hail_logistic_table(mt, trait, phenotype[trait.name], covariates, first_test)
            table = table.annotate(
                alt_af=mt.annotate_rows(_af=alt_af_expr(trait)).rows()[table.key]._af
            )
        if test in FIRTH_FALLBACK:
            table = _firth_fallback(
                mt, table, trait, phenotype[trait.name], covariates, lrt=test == "firth-lrt"
            )
        results[trait.name] = table.drop("_ok")
    return results


def _hail_logistic_table(
    mt: hl.MatrixTable, trait: TraitSpec, y_field: str, covariates: Sequence[str], first_test: str
) -> hl.Table:
    """:func:`hail.logistic_regression_rows` as the table of :func:`association_tests`
    (without ``alt_af``), plus ``_ok`` (the fit converged and gave a finite p)."""
    import hail as hl

    y = mt[y_field]
    fit = hl.logistic_regression_rows(
        test=first_test,
        y=y,
        x=alt_dosage_expr(mt),
        covariates=[1.0, *[mt[c] for c in covariates]],
    )
    n_used = mt.aggregate_cols(
        hl.agg.count_where(
            hl.is_defined(y) & hl.all(*[hl.is_defined(mt[c]) for c in covariates])
            if covariates
            else hl.is_defined(y)
        )
    )
    return fit.select(
        n=hl.int32(n_used),
        beta=fit.beta,
        standard_error=fit.standard_error if first_test == "wald" else hl.missing(hl.tfloat64),
        statistic=fit.z_stat if first_test == "wald" else fit.chi_sq_stat,
        p_value=fit.p_value,
        method=first_test,
        _ok=fit.fit.converged & ~fit.fit.exploded & hl.is_finite(fit.p_value),
    )


def local_wald_table(
    mt: hl.MatrixTable,
    trait: TraitSpec,
    y_field: str,
    covariates: Sequence[str],
    silver: SilverBed | None = None,
) -> hl.Table:
    """The Wald test of :func:`hail.logistic_regression_rows` computed in numpy
    (:mod:`gwas_prs.methods.gwas.logistic_local`; Hail local mode), as the table of
    :func:`association_tests` plus ``_ok``. The genotypes come from ``silver``
    (the .bed qc kept, when ``mt``'s rows are its rows; its non-PAR X rows are left
    out) or from one .bed export of the tested samples."""
    import hail as hl

    from gwas_prs.engine.table_io import cols_in_column_order, variant_frame_to_table
    from gwas_prs.formats.plink_bed import exported_bed, read_bim
    from gwas_prs.methods.gwas.logistic_local import design_matrix, logistic_wald_rows

    defined = hl.is_defined(mt[y_field])
    for c in covariates:
        defined = defined & hl.is_defined(mt[c])
    tested_mt = mt.filter_cols(defined)
    cols = cols_in_column_order(tested_mt, y_field, *covariates)  # the .fam order
    y = cols[y_field].to_numpy(dtype=np.float64)
    cases = int((y == 1).sum())
    if cases in (0, len(y)):
        raise InputError(
            f"{trait.name}: the {len(y)} samples tested (discovery set, QC-passed, with every "
            f"covariate) are all {'controls' if cases == 0 else 'cases'}; a logistic model "
            "needs both (check the trait's coding, or use more samples)"
        )
    design = design_matrix(cols, list(covariates))
    if silver is not None:
        key = next(iter(mt.col_key))
        columns = column_indices(silver, cols[key].astype(str).tolist())
        fit = logistic_wald_rows(
            silver.bed,
            silver.n_samples,
            y,
            design,
            columns=columns,
            dosage_rows=None if silver.pgen is None else partial(silver_dosage_rows, silver),
        )
        bim = silver.variants.rename(columns={"chromosome": "contig"})
    else:
        with exported_bed(tested_mt) as (bed, n_samples, prefix):
            if n_samples != len(y):
                raise InputError(f"{trait.name}: {n_samples} samples exported, {len(y)} expected")
            bim = read_bim(prefix)
            dosage_rows = None
            if has_dosages(tested_mt):  # imputed: test the dosages, not the .bed's hard calls
                write_dosage_pgen(tested_mt, prefix + ".pgen", prefix + ".dosages.bm")
                exported = SilverBed(bed, n_samples, bim, [], prefix + ".pgen")
                dosage_rows = partial(silver_dosage_rows, exported)
            fit = logistic_wald_rows(bed, n_samples, y, design, dosage_rows=dosage_rows)
    ok = fit.converged & ~fit.exploded & np.isfinite(fit.p_value)
    frame = bim[["contig", "position", "ref", "alt"]].assign(
        beta=fit.beta,
        standard_error=fit.standard_error,
        statistic=fit.z,
        p_value=fit.p_value,
        alt_af=fit.alt_af,
        _ok=ok,
    )
    table = variant_frame_to_table(
        frame,
        {name: hl.tfloat64 for name in ("beta", "standard_error", "statistic", "p_value", "alt_af")}
        | {"_ok": hl.tbool},
        mt.locus.dtype.reference_genome,
    )
    if silver is not None:  # association_tests codes and tests the non-PAR X apart
        table = table.filter(~table.locus.in_x_nonpar())
    return table.select(
        n=hl.int32(len(y)),
        beta=table.beta,
        standard_error=table.standard_error,
        statistic=table.statistic,
        p_value=table.p_value,
        alt_af=table.alt_af,
        method="wald",
        _ok=table._ok,
    )


def _firth_fallback(
    mt: hl.MatrixTable,
    table: hl.Table,
    trait: TraitSpec,
    y_field: str,
    covariates: Sequence[str],
    *,
    lrt: bool = False,
) -> hl.Table:
    """Re-fit the variants whose Wald fit failed (``~_ok``) with Firth regression: by
    default plink2's statistic (:func:`gwas_prs.methods.gwas.firth_local.firth_wald_rows`
    on the driver: ``z = b/se`` from the penalised fit), with ``lrt`` Hail's penalised
    likelihood-ratio test (``statistic`` is then its χ², ``standard_error`` missing)."""
    import hail as hl

    table = table.checkpoint(hl.utils.new_temp_file("wald", "ht"))
    failed = table.filter(~table._ok)
    n_failed = failed.count()
    if not n_failed:
        return table
    logger.info("%s: %d variants re-fitted with Firth regression", trait.name, n_failed)
    # read only the blocks holding them (the MatrixTable index), not every row
    loci = failed.locus.collect()
    if not lrt:
        return _firth_wald_fallback(mt, loci, failed, table, y_field, covariates)
    retry = hl.filter_intervals(mt, [hl.Interval(x, x, includes_end=True) for x in loci])
    retry = retry.semi_join_rows(failed)
    firth = hl.logistic_regression_rows(
        test="firth",
        y=retry[y_field],
        x=alt_dosage_expr(retry),
        covariates=[1.0, *[retry[c] for c in covariates]],
    )
    f = firth[table.key]
    return table.annotate(
        beta=hl.if_else(table._ok, table.beta, f.beta),
        standard_error=hl.if_else(table._ok, table.standard_error, hl.missing(hl.tfloat64)),
        statistic=hl.if_else(table._ok, table.statistic, f.chi_sq_stat),
        p_value=hl.if_else(table._ok, table.p_value, f.p_value),
        method=hl.if_else(table._ok, "wald", "firth"),
    )


#: Genotypes the driver holds at once for the numpy Firth fits (rows × samples).
FIRTH_CHUNK_ENTRIES = 20_000_000


def _firth_wald_fallback(
    mt: hl.MatrixTable,
    loci: list[hl.Locus],
    failed: hl.Table,
    table: hl.Table,
    y_field: str,
    covariates: Sequence[str],
) -> hl.Table:
    """The Firth rows (``failed``, at ``loci``; few: the variants whose Wald fit failed)
    fitted on the driver in numpy, at most :data:`FIRTH_CHUNK_ENTRIES` genotypes at a
    time, joined into ``table``."""
    import hail as hl

    from gwas_prs.engine.table_io import variant_frame_to_table
    from gwas_prs.methods.gwas.firth_local import firth_wald_rows

    def tested(m: hl.MatrixTable) -> hl.MatrixTable:
        """The samples with the trait and every covariate; y, covariates, dosage."""
        defined = hl.is_defined(m[y_field])
        for c in covariates:
            defined = defined & hl.is_defined(m[c])
        m = m.filter_cols(defined)
        m = m.select_cols(_y=hl.float64(m[y_field]), _c=[hl.float64(m[c]) for c in covariates])
        m = m.select_entries(_x=alt_dosage_expr(m))
        return m.select_rows()

    # the column order of every localized row below (cols() would sort by key)
    cols = hl.eval(tested(mt).localize_entries("_entries", "_cols").index_globals()._cols)
    y = np.array([c._y for c in cols], dtype=np.float64)
    values = np.array([c._c for c in cols], dtype=np.float64).reshape(len(y), len(covariates))
    design = np.column_stack([np.ones(len(y)), values])
    step = max(1, FIRTH_CHUNK_ENTRIES // max(len(y), 1))
    frames = []
    for first in range(0, len(loci), step):
        # the intervals first, on the read MatrixTable: only the blocks holding the rows
        chunk = hl.filter_intervals(
            mt, [hl.Interval(x, x, includes_end=True) for x in loci[first : first + step]]
        )
        local = tested(chunk).semi_join_rows(failed).localize_entries("_entries", "_cols")
        rows = local.select(_x=local._entries._x).collect()
        dosages = np.array(
            [[np.nan if x is None else x for x in r._x] for r in rows], dtype=np.float64
        ).reshape(len(rows), len(y))
        fit = firth_wald_rows(dosages, y, design)
        frames.append(
            pd.DataFrame(
                {
                    "contig": [r.locus.contig for r in rows],
                    "position": [r.locus.position for r in rows],
                    "ref": [r.alleles[0] for r in rows],
                    "alt": [r.alleles[1] for r in rows],
                    "beta": fit.beta,
                    "standard_error": fit.standard_error,
                    "statistic": fit.z,
                    "p_value": fit.p_value,
                }
            )
        )
    firth = variant_frame_to_table(
        pd.concat(frames, ignore_index=True),
        {name: hl.tfloat64 for name in ("beta", "standard_error", "statistic", "p_value")},
        mt.locus.dtype.reference_genome,
    )
    f = firth[table.key]
    return table.annotate(
        beta=hl.if_else(table._ok, table.beta, f.beta),
        standard_error=hl.if_else(table._ok, table.standard_error, f.standard_error),
        statistic=hl.if_else(table._ok, table.statistic, f.statistic),
        p_value=hl.if_else(table._ok, table.p_value, f.p_value),
        method=hl.if_else(table._ok, "wald", "firth"),
    )
