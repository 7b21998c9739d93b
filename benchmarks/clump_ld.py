"""Clumping LD before/after: Hail BlockMatrix (``ld_edges``) vs numpy (``local_ld_edges``).

Usage (a run folder with a complete ``gwas:TRAIT``)::

    python -m benchmarks.clump_ld --run gwas-prs-demo --trait disease [--skip-blockmatrix]

Same discovery genotypes and candidates for both; the edge lists must be
identical. Also times the whole :func:`gwas_prs.methods.prs.clumping.clump_variants` (numpy
path) and prints a cProfile of it. Writes ``benchmarks/results/DATE-clump-NAME.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", required=True)
    parser.add_argument("--trait", default="disease")
    parser.add_argument("--name", default=None, help="label in the output file name")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--skip-blockmatrix", action="store_true")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)

    import hail as hl
    import numpy as np

    from gwas_prs.core.run_folder import RunFolder
    from gwas_prs.engine.hail_context import HailConfig, start_hail
    from gwas_prs.methods.ld_local import local_ld_edges
    from gwas_prs.methods.prs.clumping import ClumpParameters, clump_variants, ld_edges
    from gwas_prs.stages.gwas import read_split

    run = RunFolder(args.run)
    start_hail(HailConfig(run_dir=run.root, command="bench", seed=1, cores=args.cores))
    roles = read_split(run, args.trait)
    discovery = sorted(roles.index[roles == "discovery"])
    mt = hl.read_matrix_table(run.silver_mt)
    mt = mt.filter_cols(hl.literal(set(discovery)).contains(mt.s))
    sumstats = hl.import_table(
        run.path("gold", "gwas", args.trait, "sumstats.tsv.gz"), force=True, impute=True
    )
    sumstats = sumstats.key_by(
        locus=hl.locus(
            hl.str(sumstats.chromosome),
            hl.int32(sumstats.base_pair_location),
            reference_genome=mt.locus.dtype.reference_genome,
        ),
        alleles=[sumstats.other_allele, sumstats.effect_allele],
    )
    mt = mt.annotate_rows(p=sumstats[mt.row_key].p_value)
    mt = mt.filter_rows(hl.is_defined(mt.p)).select_rows("p").select_cols().select_entries("GT")
    mt = mt.checkpoint(run.path("tmp", "bench", "clump_ld.mt"), overwrite=True)
    n_variants, n_samples = mt.count()
    rows = mt.rows().collect()
    contigs = np.array([r.locus.contig for r in rows], dtype=object)
    positions = np.array([r.locus.position for r in rows], dtype=np.int64)
    params = ClumpParameters()
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "data": f"{args.run}: {n_samples} discovery samples x {n_variants} variants",
        "cores": args.cores,
    }

    def timed(key: str, action: Any) -> Any:
        load = os.getloadavg()
        started = time.perf_counter()
        value = action()
        result[key] = {
            "s": round(time.perf_counter() - started, 3),
            "loadavg": [round(x, 2) for x in load],
        }
        print(key, result[key], flush=True)
        return value

    new = timed(
        "numpy_ld_edges", lambda: local_ld_edges(mt, contigs, positions, params.kb, params.r2)
    )
    new_set = set(zip(new[0].tolist(), new[1].tolist(), strict=True))
    result["edges"] = len(new_set)
    if not args.skip_blockmatrix:
        old = timed("blockmatrix_ld_edges", lambda: ld_edges(mt, params))
        old_set = set(zip(old[0].tolist(), old[1].tolist(), strict=True))
        result["identical_edges"] = old_set == new_set
        print("identical edges:", old_set == new_set, len(old_set), len(new_set), flush=True)
    profile = cProfile.Profile()
    profile.enable()
    timed("clump_variants_numpy_total", lambda: clump_variants(mt, mt.p, params)._force_count())
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(18)
    result["profile_top"] = text.getvalue().splitlines()[:45]
    print(text.getvalue())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or Path(args.run).name
    (out / f"{result['date']}-clump-{name}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
