"""The ``gwas`` stage: discovery/target split, association tests, GWAS-SSF output.

:func:`run_gwas` (the stage runner):

1. reads the phenotype file (traits + covariates) and the QC-passed genotypes;
2. assigns every phenotyped sample a role per trait — ``discovery``, ``train``,
   ``validation``, ``test`` — seeded and stratified by ancestry group × label
   (:mod:`gwas_prs.methods.gwas.splits`), written to ``RUN/gold/splits/TRAIT.tsv``;
3. tests all traits in one pass over the genotypes (quantitative traits in one
   linear regression pass; each binary trait's logistic pass), on the discovery
   samples only, with the covariates and the first ``n_pcs`` PCs;
4. writes ``RUN/gold/gwas/TRAIT/``: ``sumstats.tsv.gz`` (GWAS-SSF) with its
   ``-meta.yaml`` sidecar, ``sumstats.ht`` (for ``prs``), ``report.html`` (the summary
   page: N, λGC, Manhattan and QQ plots, top hits), ``manhattan.html``, ``qq.html``,
   ``top_hits.tsv``.

Each trait is its own manifest stage (``gwas:TRAIT``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gwas_prs import __version__
from gwas_prs.core import storage
from gwas_prs.core.errors import InputError
from gwas_prs.core.run_folder import (
    GWAS_REPORT,
    InputFile,
    RunFolder,
    check_can_write,
    require_complete,
    stage_run,
)
from gwas_prs.core.stage_options import GWAS
from gwas_prs.engine.hail_context import HailConfig, start_hail
from gwas_prs.engine.hail_errors import hail_errors_as_computation_errors
from gwas_prs.engine.switch import current_engine, stage_runner
from gwas_prs.engine.table_io import frame_to_table, variant_table_to_frame
from gwas_prs.formats.phenotypes import PhenotypeTable, read_phenotypes
from gwas_prs.formats.silver_bed import kept_silver_bed
from gwas_prs.methods.chrx import annotate_x_sex
from gwas_prs.methods.gwas.association import TraitSpec, association_tests, lambda_gc
from gwas_prs.methods.gwas.splits import assign_splits

if TYPE_CHECKING:
    import hail as hl


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GwasConfig:
    """Parameters of ``gwas-prs gwas``."""

    run_dir: str
    phenotypes_file: str
    traits: tuple[str, ...]
    covariates: tuple[str, ...] = GWAS.default("covariates")
    n_pcs: int = GWAS.default("n-pcs")
    test: str = GWAS.default("test")
    xchr_model: int = GWAS.default("xchr-model")
    split_seed: int = GWAS.default("split-seed")
    overwrite: bool = False

    def validate(self) -> None:
        if not self.traits:
            raise InputError("give at least one --trait")
        if len(set(self.traits)) != len(self.traits):
            raise InputError(f"--trait given twice: {', '.join(self.traits)}")
        GWAS.check_choice("test", self.test)
        if self.xchr_model not in (1, 2):
            raise InputError(
                f"--xchr-model {self.xchr_model}: choose 2 (males 0/2, plink2's default) or 1 "
                "(males 0/1)"
            )
        if self.n_pcs < 0:
            raise InputError(f"--n-pcs {self.n_pcs}: must be 0 or more")
        clash = set(self.traits) & set(self.covariates)
        if clash:
            raise InputError(f"{', '.join(sorted(clash))}: both a trait and a covariate")


@dataclass
class GwasResult:
    traits: dict[str, dict[str, Any]] = field(default_factory=dict)
    wall_time_s: float = 0.0
    log_path: str | None = None


def read_split(run: RunFolder, trait: str) -> pd.Series:
    """The recorded roles of ``trait`` (index: sample ID)."""
    frame = storage.read_table(run.split_file(trait), sep="\t", dtype=str)
    return frame.set_index("sample_id")["role"]


def _ancestry_groups(cols: pd.DataFrame) -> str | None:
    for name in ("ancestry", "super_pop", "pop"):
        if name in cols.columns and cols[name].notna().any():
            return name
    return None


#: A term whose residual, after regression on the terms before it, is below this
#: fraction of its own spread (R² > 1 - 1e-14) is taken as an exact linear combination.
COLLINEAR_TOLERANCE = 1e-7


def _term(name: str, pcs: Sequence[str]) -> str:
    return name if name in pcs else f"'{name}'"


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def check_covariates_independent(
    design: pd.DataFrame,
    covariates: Sequence[str],
    pcs: Sequence[str] = (),
    *,
    samples: str,
    source: str | None = None,
) -> None:
    """Refuse covariates that the regression cannot separate (numpy only, no Hail).

    The model of every variant is ``y ~ 1 + PCs + covariates + genotype`` over the
    rows of ``design`` where all those terms are present (as Hail drops samples with
    a missing covariate). Over those rows every term must add a dimension: each is
    regressed (least squares) on the intercept and the terms before it — PCs first,
    then the covariates in the order given, so that a covariate copying a PC is the
    one named — and one whose residual is below :data:`COLLINEAR_TOLERANCE` of its
    spread is a linear combination of the terms with non-zero coefficients.
    ``samples`` says which rows these are in messages (``"discovery samples of
    'T'"``); ``source`` (the phenotype file) starts them.

    Raises
    ------
    InputError
        A term is constant or a linear combination of earlier ones; a covariate is
        given twice; fewer complete rows than the model's terms + 1.
    """
    prefix = f"{source}: " if source else ""
    terms = [*pcs, *covariates]
    if not terms:
        return
    repeated = next((c for i, c in enumerate(covariates) if c in covariates[:i]), None)
    if repeated is not None:
        raise InputError(
            f"{prefix}covariate '{repeated}' is given twice; list it once in --covariates"
        )
    numeric = design[terms].apply(pd.to_numeric, errors="coerce")
    values = numeric.to_numpy(dtype="float64", na_value=np.nan)
    complete = np.isfinite(values).all(axis=1)
    x = values[complete]
    n = len(x)
    what = "covariate and PC" if pcs and covariates else ("PC" if pcs else "covariate")
    if n == 0:
        raise InputError(
            f"{prefix}none of the {len(design)} {samples} has a value for every {what} "
            f"({', '.join(terms)}); check their missing values"
        )
    if n < len(terms) + 3:  # intercept, terms, genotype and one residual degree of freedom
        raise InputError(
            f"{prefix}only {n} {samples} have a value for every {what}, too few for the "
            f"{len(terms) + 2} terms of the model (intercept, {what}s, genotype); drop covariates "
            "or lower --n-pcs"
        )
    accepted, names = [np.ones(n)], ["the intercept"]
    for j, name in enumerate(terms):
        column = x[:, j]
        fix = "lower --n-pcs" if name in pcs else "drop it from --covariates"
        label = name if name in pcs else f"covariate '{name}'"
        scale = float(np.abs(column).max())
        centred = column - column.mean()
        if scale == 0 or float(np.abs(centred).max()) <= COLLINEAR_TOLERANCE * scale:
            raise InputError(
                f"{prefix}{label} is constant ({column[0]:g}) over the {n} {samples}; {fix}"
            )
        scaled, spread = column / scale, float(np.linalg.norm(centred)) / scale
        basis = np.column_stack(accepted)
        coef, *_ = np.linalg.lstsq(basis, scaled, rcond=None)
        residual = float(np.linalg.norm(scaled - basis @ coef))
        if residual <= COLLINEAR_TOLERANCE * spread:
            weight = np.abs(coef) * np.linalg.norm(basis, axis=0)
            involved = [names[k] for k in range(1, len(names)) if weight[k] > 1e-6 * spread]
            intercept = " (and the intercept)" if weight[0] > 1e-6 * spread else ""
            others = _listed([_term(t, pcs) for t in involved])
            raise InputError(
                f"{prefix}{label} is a linear combination of {others}{intercept} over the "
                f"{n} {samples}; {fix}"
            )
        accepted.append(scaled)
        names.append(name)


def check_discovery_design(
    samples: pd.DataFrame,
    pcs: pd.DataFrame,
    roles: pd.Series,
    trait: str,
    covariates: Sequence[str],
    source: str,
) -> None:
    """:func:`check_covariates_independent` over the samples the GWAS of ``trait``
    analyses: the discovery samples with a trait value (covariates from ``samples``,
    PCs from ``pcs``, both indexed by sample ID)."""
    analysed = (roles.reindex(samples.index) == "discovery") & samples[trait].notna()
    design = samples.loc[analysed.to_numpy(), list(covariates)].join(pcs, how="left")
    check_covariates_independent(
        design,
        tuple(covariates),
        list(pcs.columns),
        samples=f"discovery samples of '{trait}'",
        source=source,
    )


@stage_runner("gwas")
def run_gwas(config: GwasConfig, hail: HailConfig | None = None) -> GwasResult:
    """Stage runner (see the module docstring). Checks inputs before Hail starts."""
    started = time.monotonic()
    config.validate()
    run = RunFolder(config.run_dir)
    qc = require_complete(run, "qc", needed_by="gwas")
    available_pcs = int(qc.parameters.get("n_pcs", 10))
    if config.n_pcs > available_pcs:
        raise InputError(f"--n-pcs {config.n_pcs}: qc computed only {available_pcs} PCs")
    pheno = read_phenotypes(config.phenotypes_file, config.traits, config.covariates)
    # collinear over every phenotyped sample is collinear over any subset: fail before Hail
    check_covariates_independent(
        pheno.frame, config.covariates, samples="phenotyped samples", source=config.phenotypes_file
    )
    for trait in config.traits:
        check_can_write(run, f"gwas:{trait}", [run.gwas_dir(trait)], overwrite=config.overwrite)
    result = GwasResult()
    hail = hail or HailConfig(run_dir=run.root, command="gwas")
    log = start_hail(hail)
    result.log_path = log
    import hail as hl

    with hail_errors_as_computation_errors("reading the QC-passed genotypes", log):
        mt = hl.read_matrix_table(run.silver_mt)
        col_fields = [f for f in ("ancestry", "super_pop", "pop") if f in mt.col]
        pc_names = [f"PC{k + 1}" for k in range(config.n_pcs)]
        col_table = mt.cols()
        pc_fields = {name: col_table.pcs[k] for k, name in enumerate(pc_names)}
        cols = col_table.select(*col_fields, **pc_fields).to_pandas().set_index("s")
        pcs, cols = cols[pc_names], cols.drop(columns=pc_names)  # PCs for the covariate check
    cohort = cols.index.astype(str)
    in_both = pheno.frame.index.intersection(cohort)
    if len(in_both) == 0:
        raise InputError(
            f"{config.phenotypes_file}: none of its {len(pheno.frame)} samples are in the QC-passed cohort "
            f"(e.g. '{cohort[0]}'); check the sample-ID column"
        )
    not_in_cohort = len(pheno.frame) - len(in_both)
    if not_in_cohort:
        logger.warning(
            "%d phenotyped samples are not in the QC-passed cohort (removed by QC or absent)",
            not_in_cohort,
        )
    group = _ancestry_groups(cols)
    samples = cols.join(pheno.frame, how="left")
    roles: dict[str, pd.Series] = {}
    for trait in config.traits:
        roles[trait] = assign_splits(samples, label=trait, group=group, seed=config.split_seed)
        check_discovery_design(
            samples, pcs, roles[trait], trait, config.covariates, config.phenotypes_file
        )

    table = samples.copy()
    for trait in config.traits:
        table[f"_role_{trait}"] = roles[trait]
        table[f"_y_{trait}"] = table[trait].where(roles[trait] == "discovery")
    keep = [c for c in table.columns if c.startswith("_y_") or c in config.covariates]
    columns = table[keep].astype("float64").rename_axis("s").reset_index()
    columns["s"] = columns["s"].astype(str)
    ht = frame_to_table(columns, {"s": hl.tstr, **{c: hl.tfloat64 for c in keep}}, key=["s"])
    # the reported sex of chrX's coding, from the sample metadata, before a phenotype
    # covariate (e.g. ``sex``) can replace a metadata column of the same name
    mt = annotate_x_sex(mt)
    # NaN (pandas' missing) arrives as missing
    mt = mt.annotate_cols(**{c: ht[mt.s][c] for c in keep})
    mt = mt.annotate_cols(**{name: mt.pcs[k] for k, name in enumerate(pc_names)})
    specs = [TraitSpec(t, pheno.binary[t]) for t in config.traits]
    parameters = {
        # run-relative when inside the run folder (simulated traits), else absolute:
        # later stages find it from any working directory and in a moved run folder
        "phenotypes_file": run.stored_path(config.phenotypes_file),
        "covariates": list(config.covariates),
        "n_pcs": config.n_pcs,
        "test": config.test,
        "xchr_model": config.xchr_model,
        "split_seed": config.split_seed,
        "split_groups": group,
    }
    inputs = [
        InputFile(
            config.phenotypes_file,
            storage.file_size(config.phenotypes_file),
            storage.sha256_file(config.phenotypes_file),
        )
    ]
    with ExitStack() as stack:
        stages = {
            t: stack.enter_context(
                stage_run(
                    run,
                    f"gwas:{t}",
                    parameters={**parameters, "trait": t, "binary": pheno.binary[t]},
                    inputs=inputs,
                    final_outputs=[run.gwas_dir(t)],
                    overwrite=config.overwrite,
                    engine=current_engine(),
                )
            )
            for t in config.traits
        }
        with hail_errors_as_computation_errors("the association tests", log):
            t = time.monotonic()
            tables = association_tests(
                mt,
                specs,
                {t: f"_y_{t}" for t in config.traits},
                [*config.covariates, *pc_names],
                test=config.test,
                silver=kept_silver_bed(run, hail),  # mt's rows are silver's rows
                xchr_model=config.xchr_model,
            )
            association_s = time.monotonic() - t  # the numpy Wald fits run here
            for trait in config.traits:
                stage = stages[trait]
                t = time.monotonic()
                result.traits[trait] = _write_trait(
                    run, stage, trait, tables[trait], pheno, roles[trait], parameters
                )
                stage.counts["association_s"] = round(association_s, 3)
                stage.counts["results_reports_s"] = round(time.monotonic() - t, 3)
    result.wall_time_s = round(time.monotonic() - started, 3)
    return result


def _write_trait(
    run: RunFolder,
    stage: Any,
    trait: str,
    table: hl.Table,
    pheno: PhenotypeTable,
    roles: pd.Series,
    parameters: dict[str, Any],
) -> dict[str, Any]:
    import hail as hl

    from gwas_prs.formats.sumstats import SumstatsMetadata, write_gwas_ssf
    from gwas_prs.reports.gwas import gwas_report, manhattan_figure, qq_figure, thin_for_plot
    from gwas_prs.reports.html import write_html

    final = run.gwas_dir(trait)
    tmp = stage.temporary_path(final)
    storage.makedirs(tmp)
    # the split
    split_file = run.split_file(trait)
    split_frame = roles.dropna().rename("role").rename_axis("sample_id").reset_index()
    storage.write_text_atomic(split_file, split_frame.to_csv(sep="\t", index=False))
    table = table.checkpoint(storage.join(tmp, "sumstats.ht"))
    frame = variant_table_to_frame(
        table,
        {
            "beta": table.beta,
            "standard_error": table.standard_error,
            "effect_allele_frequency": table.alt_af,
            "p_value": table.p_value,
            "n": table.n,
            "method": table.method,
        },
        names=("chromosome", "base_pair_location", "other_allele", "effect_allele"),
    )
    n_firth = int((frame["method"] == "firth").sum())
    frame = frame.drop(columns="method")
    lam = lambda_gc(frame["p_value"].to_numpy())
    discovery = roles[roles == "discovery"].index
    y = pheno.frame.reindex(discovery)[trait]
    binary = pheno.binary[trait]
    metadata = SumstatsMetadata(
        genome_assembly=str(hl.default_reference().name),
        trait_description=trait,
        sample_size=int(y.notna().sum()),
        case_count=int((y == 1).sum()) if binary else None,
        control_count=int((y == 0).sum()) if binary else None,
        effect_size="odds_ratio" if binary else "beta",
        test=parameters["test"] if binary else "linear",
        covariates=tuple(parameters["covariates"]),
        n_pcs=parameters["n_pcs"],
        lambda_gc=lam,
        versions={"gwas-prs": __version__, "hail": hl.__version__},
    )
    write_gwas_ssf(frame, storage.join(tmp, "sumstats.tsv.gz"), metadata)
    top = frame.sort_values("p_value").head(10)
    storage.write_text_atomic(storage.join(tmp, "top_hits.tsv"), top.to_csv(sep="\t", index=False))
    plotted = thin_for_plot(frame)
    p_values = frame["p_value"].to_numpy()
    n, cases, controls = metadata.sample_size, metadata.case_count, metadata.control_count
    test = "linear regression" if not binary else f"logistic regression ({parameters['test']})"
    facts = {
        "test": test + (f"; {n_firth:,} variants re-fitted with Firth" if n_firth else ""),
        "covariates": ", ".join(parameters["covariates"]) or "none",
        "principal components": parameters["n_pcs"],
        "genome build": metadata.genome_assembly,
    }
    write_html(
        gwas_report(
            plotted, p_values, trait=trait, lambda_gc=lam, n=n, cases=cases, controls=controls,
            top=top, binary=binary, facts=facts,
        ),
        storage.join(tmp, GWAS_REPORT),
        f"{trait} GWAS summary",
    )  # fmt: skip
    write_html(
        manhattan_figure(
            plotted, f"{trait}: Manhattan plot", n=n, cases=cases, controls=controls,
            lambda_gc=lam,
        ),
        storage.join(tmp, "manhattan.html"),
        f"{trait} Manhattan plot",
    )  # fmt: skip
    write_html(
        qq_figure(p_values, f"{trait}: QQ plot", lam, n=n),
        storage.join(tmp, "qq.html"),
        f"{trait} QQ plot",
    )
    stage.publish(tmp, final, "gwas")
    counts = {
        "variants_tested": len(frame),
        "variants_with_p": int(frame["p_value"].notna().sum()),
        "genome_wide_significant": int((frame["p_value"] < 5e-8).sum()),
        "lambda_gc": round(lam, 4),
        "discovery_samples": int(y.notna().sum()),
        "roles": {k: int(v) for k, v in roles.value_counts().items()},
    }
    if binary:
        counts["cases"] = int((y == 1).sum())
        counts["controls"] = int((y == 0).sum())
        counts["firth_fallback"] = n_firth
    stage.counts.update(counts)
    return {"counts": counts, "top": top, "dir": final, "split": split_file}
