"""Time gwas, clumping and scoring with gwas-prs and with PLINK on the same data.

Usage (after ``gwas-prs demo``, or any run folder with a complete ``prs:TRAIT``)::

    nox -s bench -- --run gwas-prs-demo --trait disease
    python -m benchmarks.run --run gwas-prs-demo --trait disease

Both tools get the same genotypes (the run's QC-passed MatrixTable, exported once
as a PLINK 1 fileset), the same discovery samples, phenotype, covariates and PCs,
and the same weights. Each step is timed end to end (wall clock, best of
``--repeat``); Hail's timings include its per-job overhead but not the JVM start,
which is measured separately as an empty job. Results go to
``benchmarks/results/DATE-bundled.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.core.processes import run_command


def best_of(repeat: int, action: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run", default="gwas-prs-demo", help="run folder with a complete prs stage"
    )
    parser.add_argument("--trait", default="disease")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="bundled", help="results file: DATE-NAME.json/.md")
    args = parser.parse_args(argv)

    import hail as hl

    from gwas_prs.core.run_folder import RunFolder, require_complete
    from gwas_prs.engine.hail_context import HailConfig, start_hail
    from gwas_prs.formats.phenotypes import read_phenotypes
    from gwas_prs.methods.gwas.association import TraitSpec, association_tests
    from gwas_prs.methods.prs.clumping import ClumpParameters, clump_variants
    from gwas_prs.methods.prs.scoring import (
        DEFAULT_THRESHOLDS,
        polygenic_scores,
        threshold_weights_expr,
    )
    from gwas_prs.stages.gwas import read_split

    run = RunFolder(args.run)
    gwas_record = require_complete(run, f"gwas:{args.trait}", needed_by="bench")
    covariates = list(gwas_record.parameters["covariates"])
    n_pcs = int(gwas_record.parameters["n_pcs"])
    work = Path(run.path("tmp", "bench"))
    work.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    start_hail(HailConfig(run_dir=run.root, command="bench", seed=1))
    hail_start = time.perf_counter() - started
    empty_job = best_of(args.repeat, lambda: hl.utils.range_table(10).count())

    mt = hl.read_matrix_table(run.silver_mt)
    roles = read_split(run, args.trait)
    pheno = read_phenotypes(
        run.resolve(gwas_record.parameters["phenotypes_file"]), (args.trait,), covariates
    )
    discovery = sorted(roles.index[roles == "discovery"])
    disc = mt.filter_cols(hl.literal(set(discovery)).contains(mt.s))
    table = pheno.frame.reindex(discovery).copy()
    pcs = disc.cols().select("pcs").to_pandas().set_index("s")
    for k in range(n_pcs):
        table[f"PC{k + 1}"] = [pcs.loc[s, "pcs"][k] for s in table.index]
    ht = hl.Table.from_pandas(
        table.reset_index().rename(columns={"s": "sample_id"}), key="sample_id"
    )
    fields = [args.trait, *covariates, *[f"PC{k + 1}" for k in range(n_pcs)]]
    disc = disc.annotate_cols(**{f: ht[disc.s][f] for f in fields})
    disc = disc.annotate_rows(varid=hl.variant_str(disc.locus, disc.alleles))
    disc = disc.checkpoint(str(work / "discovery.mt"), overwrite=True)
    n_variants, n_samples = disc.count()

    # the same data for PLINK
    hl.export_plink(disc, str(work / "disc"), ind_id=disc.s, fam_id=disc.s, varid=disc.varid)
    plink_pheno = table.reset_index().rename(columns={"s": "IID"})
    plink_pheno.insert(0, "FID", plink_pheno["IID"])
    plink_pheno[args.trait] = plink_pheno[args.trait] + 1
    plink_pheno.to_csv(work / "pheno.tsv", sep="\t", index=False, na_rep="NA")
    covar_names = ",".join(fields[1:])

    spec = [TraitSpec(args.trait, pheno.binary[args.trait])]
    ours: dict[str, float] = {}
    ours["gwas"] = best_of(
        args.repeat,
        lambda: association_tests(disc, spec, {args.trait: args.trait}, fields[1:], test="wald")[
            args.trait
        ]._force_count(),
    )
    sumstats = association_tests(disc, spec, {args.trait: args.trait}, fields[1:], test="wald")[
        args.trait
    ]
    sumstats = sumstats.checkpoint(str(work / "sumstats.ht"), overwrite=True)
    disc = disc.annotate_rows(p=sumstats[disc.row_key].p_value, beta=sumstats[disc.row_key].beta)
    ours["clump"] = best_of(
        args.repeat, lambda: clump_variants(disc, disc.p, ClumpParameters())._force_count()
    )
    clumps = clump_variants(disc, disc.p, ClumpParameters()).checkpoint(
        str(work / "clumps.ht"), overwrite=True
    )
    index = clumps.filter(clumps.index_variant)
    row = index[disc.row_key]
    weights = hl.or_missing(
        hl.is_defined(row), threshold_weights_expr(disc.beta, disc.p, DEFAULT_THRESHOLDS)
    )
    ours["score"] = best_of(
        args.repeat, lambda: polygenic_scores(disc, weights, hl.bool(True))._force_count()
    )

    assoc = disc.rows().key_by()
    assoc = assoc.select(SNP=assoc.varid, P=assoc.p)
    assoc.export(str(work / "assoc.tsv"))
    w = index.annotate(
        varid=hl.variant_str(index.locus, index.alleles), A1=index.alleles[1]
    ).key_by()
    w = w.annotate(beta=sumstats[w.locus, w.alleles].beta)
    frame = w.select("varid", "A1", "p", "beta").to_pandas()
    for t in DEFAULT_THRESHOLDS:
        frame[f"w{t:g}"] = np.where(frame["p"] <= t, frame["beta"], 0.0)
    frame.drop(columns=["p", "beta"]).to_csv(work / "w.tsv", sep="\t", index=False)

    def plink(cmd: list[str]) -> Callable[[], Any]:
        return lambda: run_command(cmd, cwd=str(work))

    theirs: dict[str, float] = {}
    theirs["gwas"] = best_of(
        args.repeat,
        plink(
            [
                "plink2",
                "--bfile",
                "disc",
                "--pheno",
                "pheno.tsv",
                "--pheno-name",
                args.trait,
                "--covar",
                "pheno.tsv",
                "--covar-name",
                covar_names,
                "--covar-variance-standardize",
                "--glm",
                "no-firth",
                "hide-covar",
                "--threads",
                "2",
                "--out",
                "g",
            ]
        ),
    )
    theirs["clump"] = best_of(
        args.repeat,
        plink(
            [
                "plink1.9",
                "--bfile",
                "disc",
                "--clump",
                "assoc.tsv",
                "--clump-p1",
                "1",
                "--clump-p2",
                "1",
                "--clump-r2",
                "0.1",
                "--clump-kb",
                "250",
                "--threads",
                "2",
                "--out",
                "c",
            ]
        ),
    )
    theirs["score"] = best_of(
        args.repeat,
        plink(
            [
                "plink2",
                "--bfile",
                "disc",
                "--score",
                "w.tsv",
                "1",
                "2",
                "header",
                "cols=+scoresums",
                "--score-col-nums",
                f"3-{2 + len(DEFAULT_THRESHOLDS)}",
                "--threads",
                "2",
                "--out",
                "s",
            ]
        ),
    )
    rows = [
        {
            "stage": s,
            "gwas_prs_s": round(ours[s], 2),
            "plink_s": round(theirs[s], 3),
            "ratio": round(ours[s] / theirs[s], 1),
        }
        for s in ("gwas", "clump", "score")
    ]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "data": f"{args.run} (bundled 1000 Genomes, QC-passed): {n_samples} discovery samples x {n_variants} variants",
        "machine": f"{os.cpu_count()} cores, {platform.platform()}",
        "hail_start_s": round(hail_start, 1),
        "hail_empty_job_s": round(empty_job, 3),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "stages": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{result['date']}-{args.name}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    table_md = pd.DataFrame(rows).to_markdown(index=False)
    stem.with_suffix(".md").write_text(
        f"# {result['data']}\n\n{result['machine']}; Hail start {result['hail_start_s']} s, empty job {result['hail_empty_job_s']} s\n\n{table_md}\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
