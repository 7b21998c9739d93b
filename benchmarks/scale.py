"""Every stage, gwas-prs against PLINK, on a simulated cohort of a named size.

Usage::

    nox -s bench -- --size small            # 1,000 samples x 20k SNPs
    nox -s bench -- --size medium           # 2,504 x 200k
    nox -s bench -- --size large            # 10,000 x 1M (hours on 2 cores)
    python -m benchmarks.scale --size tiny  # 200 x 2k, a smoke test

1. The cohort (``gwas-prs simulate-cohort``, msprime) is generated once per
   size and seed into ``benchmarks/.cache/cohort-SIZE-sSEED`` and reused.
2. gwas-prs runs each stage as a subprocess (``python -m gwas_prs.cli.app``):
   ingest, qc (incl. PCA and KING), gwas, prs (clumping + scoring +
   evaluation), train when the command exists. Wall time is the process's;
   peak memory is the largest summed RSS of the process group (Python + JVM),
   polled every 0.1 s; the stage's own ``wall_time_s`` from the manifest
   separates start-up (Python imports, JVM, Hail init) from the work.
3. PLINK does the same on the same VCFs, in the same run: ``plink2 --vcf
   --make-pgen`` (one VCF concatenated by bcftools beforehand, not timed);
   ``--missing --freq --hardy`` then ``--mind/--geno/--maf/--hwe`` filters;
   ``--indep-pairwise 500kb 1 0.2`` + ``--pca 10``; ``--make-king-table``;
   ``--glm`` on the discovery samples of gwas-prs's split with age, sex and 10
   PCs; ``plink1.9 --clump`` (r² 0.1, 250 kb, p1 = p2 = 1) of that GWAS;
   ``plink2 --score`` of the index variants at 8 p-value thresholds.
4. Hail's fixed cost is an empty job (start + ``range_table(10).count()``) in
   a fresh process; throughput is genotypes / (stage wall - fixed cost).
5. The whole pipeline once more as users run it, ``gwas-prs run`` on a
   generated pipeline file (one process, one Hail start): total wall time and
   peak memory, and each stage's own time.
6. gwas and prs are re-run with ``--cores 1`` and ``--cores 2`` (local[1] vs
   local[2] scaling; ``--cores`` also caps numpy's BLAS threads).
7. A second table sets steps inside the stages (LD pruning, KING, PCA,
   clumping, scoring: the stage's own timings from the manifest) against the
   matching PLINK command.

Results: ``benchmarks/results/DATE-SIZE.json`` and ``.md``, with
``os.getloadavg()`` next to every measurement (other work on the machine
slows everything down; compare ratios, not seconds, across loaded runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.core.processes import run_command
from gwas_prs.stages.simulate_cohort import SIZES

CACHE = Path("benchmarks/.cache")
THRESHOLDS = (5e-8, 1e-6, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 1.0)


def process_group_rss(pgid: int) -> int:
    """Summed resident memory (bytes) of every process in group ``pgid``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # field 5 (pgrp), after state and ppid
                continue
            with open(f"/proc/{entry}/statm") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


def measured(argv: list[str], log: Path, cwd: str | None = None) -> dict[str, Any]:
    """Run ``argv`` in its own process group; wall time, peak group RSS, exit code, load.

    (A Popen rather than :func:`gwas_prs.core.processes.run_command`: the benchmark
    needs the live process group to poll its memory.)
    """
    load_before = os.getloadavg()
    started = time.perf_counter()
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd
        )
        peak = 0
        stop = threading.Event()

        def poll() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, process_group_rss(proc.pid))
                stop.wait(0.1)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        rc = proc.wait()
        stop.set()
        poller.join()
    wall = time.perf_counter() - started
    return {
        "wall_s": round(wall, 3),
        "peak_rss_mib": round(peak / 2**20, 1),
        "rc": rc,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def gwas_prs_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gwas_prs.cli.app", *args]


def have_train() -> bool:
    result = subprocess.run(gwas_prs_cli("train", "--help"), capture_output=True, check=False)
    return result.returncode == 0


#: The numpy steps timed inside the stages for the local[1] vs local[2] table.
SCALING_STEPS = {"gwas": ("association_s",), "prs": ("weights_s", "scoring_s")}


def stage_counts(run: Path, stage: str) -> dict[str, Any]:
    manifest = json.loads((run / "manifest.json").read_text())
    return dict(manifest.get("stages", {}).get(stage, {}).get("counts", {}))


def stage_wall(run: Path, stage: str) -> float | None:
    manifest = json.loads((run / "manifest.json").read_text())
    record = manifest.get("stages", {}).get(stage)
    return None if record is None else record.get("wall_time_s")


def ensure_cohort(size: str, seed: int, log: Path) -> tuple[Path, dict[str, Any] | None]:
    samples, variants = SIZES[size]
    cohort = CACHE / f"cohort-{size}-s{seed}"
    if (cohort / "phenotypes.tsv").exists():
        return cohort, None
    tmp = cohort.with_name(cohort.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    chromosomes = 2 if variants <= 20_000 else (4 if variants <= 200_000 else 10)
    cmd = gwas_prs_cli(
        "simulate-cohort",
        "--out",
        str(tmp),
        "--samples",
        str(samples),
        "--variants",
        str(variants),
        "--chromosomes",
        str(chromosomes),
        "--seed",
        str(seed),
    )
    timing = measured(cmd, log)
    if timing["rc"] != 0:
        raise SystemExit(f"simulate-cohort failed; see {log}")
    tmp.rename(cohort)
    return cohort, timing


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--no-scaling", action="store_true", help="skip the --cores 1/2 re-runs")
    parser.add_argument(
        "--no-pipeline", action="store_true", help="skip the whole-pipeline run (gwas-prs run)"
    )
    args = parser.parse_args(argv)

    CACHE.mkdir(parents=True, exist_ok=True)
    date = time.strftime("%Y-%m-%d")
    log = (CACHE / f"{date}-{args.size}.log").resolve()
    cohort, simulate_timing = ensure_cohort(args.size, args.seed, log)
    cohort = cohort.resolve()
    run = (CACHE / f"run-{args.size}").resolve()
    plink_dir = (CACHE / f"plink-{args.size}").resolve()
    shutil.rmtree(run, ignore_errors=True)
    shutil.rmtree(plink_dir, ignore_errors=True)
    plink_dir.mkdir(parents=True)
    vcfs = sorted(cohort.glob("chr*.vcf.bgz"), key=lambda p: int(p.name[3:].split(".")[0]))
    panel = pd.read_csv(cohort / "samples.panel", sep="\t")
    n_samples, n_variants = len(panel), SIZES[args.size][1]
    genotypes = n_samples * n_variants
    pheno = str(cohort / "phenotypes.tsv")
    n_pcs = 2 if args.size == "tiny" else 10  # 60 samples cannot fit 10 PCs + covariates
    ours: dict[str, dict[str, Any]] = {}
    theirs: dict[str, dict[str, Any]] = {}

    def step(table: dict[str, dict[str, Any]], name: str, cmd: list[str], **kw: Any) -> None:
        print(f"[bench {args.size}] {name}: {' '.join(cmd[:6])} …", flush=True)
        table[name] = measured(cmd, log, **kw)
        if table[name]["rc"] != 0:
            print(f"[bench] {name} failed (exit {table[name]['rc']}); see {log}", flush=True)
        print(f"[bench {args.size}] {name}: {table[name]}", flush=True)

    # Hail's fixed cost: a fresh process, start + a trivial job
    empty = (
        "import time,hail as hl;t=time.perf_counter();"
        "hl.init(master='local[2]',quiet=True,tmp_dir='/tmp');s=time.perf_counter();"
        "hl.utils.range_table(10).count();e=time.perf_counter();"
        "print(f'HAILFIXED {s-t:.3f} {e-s:.3f}')"
    )
    fixed = measured([sys.executable, "-c", empty], log)
    lines = [x for x in log.read_text().splitlines() if x.startswith("HAILFIXED")]
    if lines:
        init_s, count_s = (float(v) for v in lines[-1].split()[1:])
        fixed.update(hl_init_s=init_s, first_count_s=count_s)

    # gwas-prs, stage by stage
    step(
        ours,
        "ingest",
        gwas_prs_cli(
            "ingest", *map(str, vcfs), "--samples", str(cohort / "samples.panel"), "--run", str(run)
        ),
    )
    step(ours, "qc", gwas_prs_cli("qc", str(run)))
    gwas_args = (
        "gwas",
        str(run),
        "--phenotypes",
        pheno,
        "--trait",
        "disease",
        "--covariates",
        "age,sex",
        "--n-pcs",
        str(n_pcs),
    )
    step(ours, "gwas", gwas_prs_cli(*gwas_args))
    prs_args = ("prs", str(run), "--trait", "disease", "--phenotypes", pheno)
    step(ours, "prs", gwas_prs_cli(*prs_args))
    if have_train():
        step(ours, "train", gwas_prs_cli("train", str(run), "--trait", "disease"))
    else:
        ours["train"] = {"rc": None, "note": "gwas-prs train not available on this branch"}
    for stage, record in (
        ("ingest", "ingest"),
        ("qc", "qc"),
        ("gwas", "gwas:disease"),
        ("prs", "prs:disease"),
        ("train", "train:disease"),
    ):
        if ours[stage].get("rc") == 0:
            own_s = stage_wall(run, record)
            ours[stage]["stage_wall_time_s"] = own_s
            if own_s is not None:
                ours[stage]["startup_s"] = round(ours[stage]["wall_s"] - own_s, 2)

    # the stages' own timings, before the scaling re-runs overwrite the manifest
    manifest_path = run / "manifest.json"
    first_manifest = (
        json.loads(manifest_path.read_text()).get("stages", {}) if manifest_path.exists() else {}
    )

    # PLINK on the same data
    def plink(name: str, *cmd: str) -> None:
        step(theirs, name, list(cmd), cwd=str(plink_dir))

    run_command(["bcftools", "concat", "-Oz", "-o", str(plink_dir / "all.vcf.gz"), *map(str, vcfs)])
    plink("import", "plink2", "--vcf", "all.vcf.gz", "--make-pgen", "--threads", "2", "--out", "g")
    plink(
        "qc_stats",
        "plink2",
        "--pfile",
        "g",
        "--missing",
        "--freq",
        "--hardy",
        "--threads",
        "2",
        "--out",
        "stats",
    )
    plink(
        "qc_filter",
        "plink2",
        "--pfile",
        "g",
        "--mind",
        "0.03",
        "--geno",
        "0.05",
        "--maf",
        "0.01",
        "--hwe",
        "1e-6",
        "--make-pgen",
        "--threads",
        "2",
        "--out",
        "qc",
    )
    plink(
        "ld_prune",
        "plink2",
        "--pfile",
        "qc",
        "--indep-pairwise",
        "500kb",
        "1",
        "0.2",
        "--threads",
        "2",
        "--out",
        "prune",
    )
    plink(
        "pca",
        "plink2",
        "--pfile",
        "qc",
        "--extract",
        "prune.prune.in",
        "--pca",
        "10",
        "--threads",
        "2",
        "--out",
        "pca",
    )
    plink(
        "king",
        "plink2",
        "--pfile",
        "qc",
        "--extract",
        "prune.prune.in",
        "--make-king-table",
        "--threads",
        "2",
        "--out",
        "king",
    )
    splits = run / "gold" / "splits" / "disease.tsv"
    if splits.exists():
        roles = pd.read_csv(splits, sep="\t", dtype=str)
        disc = roles.loc[roles.role == "discovery", "sample_id"]
    else:
        disc = panel["sample"]
    pd.DataFrame({"IID": disc}).to_csv(plink_dir / "disc.txt", sep="\t", index=False, header=False)
    ph = pd.read_csv(pheno, sep="\t").rename(columns={"sample_id": "IID"})
    ph["disease"] = ph["disease"] + 1
    if (plink_dir / "pca.eigenvec").exists():
        pcs = pd.read_csv(plink_dir / "pca.eigenvec", sep="\t").rename(
            columns={"#IID": "IID", "#FID": "FID"}
        )
        ph = ph.merge(pcs[["IID", *[f"PC{k}" for k in range(1, n_pcs + 1)]]], on="IID")
    ph.drop(columns=["genetic_value"]).to_csv(plink_dir / "pheno.tsv", sep="\t", index=False)
    covars = ",".join(["age", "sex", *[f"PC{k}" for k in range(1, n_pcs + 1)]])
    plink(
        "gwas",
        "plink2",
        "--pfile",
        "qc",
        "--keep",
        "disc.txt",
        "--pheno",
        "pheno.tsv",
        "--pheno-name",
        "disease",
        "--covar",
        "pheno.tsv",
        "--covar-name",
        covars,
        "--covar-variance-standardize",
        "--glm",
        "hide-covar",
        "--threads",
        "2",
        "--out",
        "gwas",
    )
    glm = next(iter(plink_dir.glob("gwas.disease.glm.*")), None)
    run_command(
        ["plink2", "--pfile", "qc", "--keep", "disc.txt", "--make-bed", "--out", "disc"],
        cwd=str(plink_dir),
    )
    if glm is not None:
        plink(
            "clump",
            "plink1.9",
            "--bfile",
            "disc",
            "--clump",
            glm.name,
            "--clump-snp-field",
            "ID",
            "--clump-field",
            "P",
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
            "clump",
        )
        sumstats = pd.read_csv(glm, sep="\t")
        index = set(pd.read_csv(plink_dir / "clump.clumped", sep=r"\s+").SNP)
        w = sumstats[sumstats.ID.isin(index)].copy()
        beta = np.log(w["OR"]) if "OR" in w else w["BETA"]
        for t in THRESHOLDS:
            w[f"w{t:g}"] = np.where(w["P"] <= t, beta, 0.0)
        w[["ID", "A1", *[f"w{t:g}" for t in THRESHOLDS]]].to_csv(
            plink_dir / "w.tsv", sep="\t", index=False
        )
        plink(
            "score",
            "plink2",
            "--pfile",
            "qc",
            "--score",
            "w.tsv",
            "1",
            "2",
            "header",
            "cols=+scoresums",
            "--score-col-nums",
            f"3-{2 + len(THRESHOLDS)}",
            "--threads",
            "2",
            "--out",
            "score",
        )

    # the whole pipeline in one process (one Hail start), as users run it
    pipeline: dict[str, Any] = {}
    if not args.no_pipeline:
        pipeline_run = (CACHE / f"run-{args.size}-pipeline").resolve()
        shutil.rmtree(pipeline_run, ignore_errors=True)
        pipeline_file = CACHE / f"pipeline-{args.size}.yaml"
        pipeline_file.write_text(
            json.dumps(  # JSON is YAML
                {
                    "run": str(pipeline_run),
                    "inputs": {
                        "vcfs": [str(v) for v in vcfs],
                        "samples": str(cohort / "samples.panel"),
                        "phenotypes": pheno,
                    },
                    "stages": {
                        "gwas": {"trait": "disease", "covariates": ["age", "sex"], "n-pcs": n_pcs},
                        "prs": {},
                        "train": {},
                    },
                },
                indent=2,
            )
        )
        step(pipeline, "run", gwas_prs_cli("run", str(pipeline_file)))
        if pipeline["run"]["rc"] == 0:
            manifest = json.loads((pipeline_run / "manifest.json").read_text())
            pipeline["run"]["stage_wall_time_s"] = {
                name: record.get("wall_time_s") for name, record in manifest["stages"].items()
            }

    # local[1] vs local[2]
    scaling: dict[str, dict[str, Any]] = {}
    if not args.no_scaling:
        for cores in (1, 2):
            for name, stage_args, record in (
                ("gwas", gwas_args, "gwas:disease"),
                ("prs", prs_args, "prs:disease"),
            ):
                key = f"{name}_local{cores}"
                step(scaling, key, gwas_prs_cli(*stage_args, "--overwrite", "--cores", str(cores)))
                if scaling[key]["rc"] == 0:
                    scaling[key]["stage_wall_time_s"] = stage_wall(run, record)
                    counts = stage_counts(run, record)
                    scaling[key]["numpy_step_s"] = round(  # the fits / clumping + scoring
                        sum(float(counts.get(k, 0.0)) for k in SCALING_STEPS[name]), 3
                    )

    def ratio(a: dict[str, Any] | None, b: float | None) -> float | None:
        if not a or a.get("rc") != 0 or not b:
            return None
        return round(a["wall_s"] / b, 1)

    def plink_wall(*names: str) -> float | None:
        if not all(theirs.get(n, {}).get("rc") == 0 for n in names):
            return None
        return round(sum(theirs[n]["wall_s"] for n in names), 3)

    fixed_cost = fixed["wall_s"]
    equivalents = {
        "ingest": ("plink2 --vcf --make-pgen", ("import",)),
        "qc": (
            "plink2 qc stats + filters + prune + PCA + KING",
            ("qc_stats", "qc_filter", "ld_prune", "pca", "king"),
        ),
        "gwas": ("plink2 --glm", ("gwas",)),
        "prs": ("plink1.9 --clump + plink2 --score", ("clump", "score")),
        "train": ("(no PLINK equivalent)", ()),
    }
    rows = []
    for stage, (label, names) in equivalents.items():
        mine = ours.get(stage, {})
        p = plink_wall(*names) if names else None
        work = (mine.get("wall_s") or 0) - fixed_cost
        rows.append(
            {
                "stage": stage,
                "gwas_prs_s": mine.get("wall_s"),
                "stage_internal_s": mine.get("stage_wall_time_s"),
                "peak_mib": mine.get("peak_rss_mib"),
                "plink": label,
                "plink_s": p,
                "plink_peak_mib": max(
                    (theirs[n]["peak_rss_mib"] for n in names if n in theirs), default=None
                ),
                "ratio": ratio(mine, p),
                "Mgenotypes_per_s_beyond_fixed": float(f"{genotypes / work / 1e6:.3g}")
                if mine.get("rc") == 0 and work > 0
                else None,
                "load1": mine.get("loadavg_before", [None])[0],
            }
        )

    # steps inside the stages (the manifest's timings) against the matching PLINK step
    def internal(record: str, key: str) -> float | None:
        value = first_manifest.get(record, {}).get("counts", {}).get(key)
        return None if value is None else float(value)

    inside_rows = []
    for label, record, key, plink_step in (
        ("LD pruning", "qc", "prune_s", "ld_prune"),
        ("KING", "qc", "king_s", "king"),
        ("PCA", "qc", "pca_s", "pca"),
        ("association tests (gwas)", "gwas:disease", "association_s", "gwas"),
        ("clumping (weights)", "prs:disease", "weights_s", "clump"),
        ("scoring", "prs:disease", "scoring_s", "score"),
    ):
        ours_s = internal(record, key)
        theirs_s = theirs.get(plink_step, {}).get("wall_s")
        inside_rows.append(
            {
                "step": label,
                "gwas-prs (s, inside its stage)": ours_s,
                "PLINK (s, whole process)": theirs_s,
                "ratio": round(ours_s / theirs_s, 1) if ours_s and theirs_s else None,
            }
        )
    result = {
        "date": date,
        "size": args.size,
        "data": f"simulated cohort (msprime out-of-Africa, seed {args.seed}): {n_samples} samples x {n_variants} SNPs",
        "machine": f"{os.cpu_count()} cores, {platform.platform()}",
        "simulate_cohort": simulate_timing,
        "hail_fixed_cost": fixed,
        "gwas_prs": ours,
        "plink": theirs,
        "scaling": scaling,
        "pipeline": pipeline,
        "table": rows,
        "inside_stages": inside_rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{date}-{args.size}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    scale_rows = []
    for name in ("gwas", "prs"):
        one, two = scaling.get(f"{name}_local1"), scaling.get(f"{name}_local2")
        if one and two and one.get("rc") == 0 and two.get("rc") == 0:
            scale_rows.append(
                {
                    "stage": name,
                    "local[1] s": one["wall_s"],
                    "local[2] s": two["wall_s"],
                    "speed-up": round(one["wall_s"] / two["wall_s"], 2),
                    "internal local[1] s": one.get("stage_wall_time_s"),
                    "internal local[2] s": two.get("stage_wall_time_s"),
                    "numpy steps local[1] s": one.get("numpy_step_s"),
                    "numpy steps local[2] s": two.get("numpy_step_s"),
                    "numpy steps speed-up": round(one["numpy_step_s"] / two["numpy_step_s"], 2)
                    if one.get("numpy_step_s") and two.get("numpy_step_s")
                    else None,
                    "load1": f"{one['loadavg_before'][0]} / {two['loadavg_before'][0]}",
                }
            )
    md = [
        f"# {result['data']}",
        "",
        f"{result['machine']}. Hail fixed cost (fresh process: start + range_table(10).count()): "
        f"{fixed['wall_s']} s wall (hl.init {fixed.get('hl_init_s')} s, first job {fixed.get('first_count_s')} s), "
        f"peak {fixed['peak_rss_mib']} MiB; load {fixed['loadavg_before']}.",
        "",
        "gwas-prs stages are whole CLI processes (start-up included); `stage_internal_s` is the stage's own "
        "wall_time_s from the manifest. `ratio` = gwas-prs / PLINK wall time. Throughput = "
        "samples x variants / (wall - Hail fixed cost). `load1` = 1-minute load average when the stage started "
        "(2 cores: above ~1 the machine was shared with other work).",
        "",
        pd.DataFrame(rows).to_markdown(index=False),
        "",
        "PLINK steps:",
        "",
        pd.DataFrame(
            [
                {
                    "step": k,
                    **{x: v[x] for x in ("wall_s", "peak_rss_mib", "rc")},
                    "load1": v["loadavg_before"][0],
                }
                for k, v in theirs.items()
            ]
        ).to_markdown(index=False),
        "",
    ]
    md += [
        "Steps inside the stages (the stage's own timing from the manifest, no start-up):",
        "",
        pd.DataFrame(inside_rows).to_markdown(index=False),
        "",
    ]
    if pipeline.get("run"):
        p = pipeline["run"]
        md += [
            f"Whole pipeline, one process (`gwas-prs run`: ingest → qc → gwas → prs → train): "
            f"{p['wall_s']} s wall, peak {p['peak_rss_mib']} MiB, exit {p['rc']}; stages: "
            + ", ".join(f"{k} {v} s" for k, v in (p.get("stage_wall_time_s") or {}).items()),
            "",
        ]
    if scale_rows:
        md += ["local[1] vs local[2]:", "", pd.DataFrame(scale_rows).to_markdown(index=False), ""]
    stem.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
