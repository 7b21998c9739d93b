"""A dosage GWAS against the hard-call GWAS of the same cohort, with plink2 on both.

1. ``hard``: ``gwas-prs ingest`` (the bundled 1000 Genomes VCFs by default), ``qc``,
   ``simulate-phenotype`` (a binary and a quantitative trait), ``gwas``;
2. ``dose``: an imputed copy of the QC-passed genotypes — a share ``--imputed`` of
   the variants get ``DS = q·g + (1 − q)·2p + noise`` (q ~ U(0.3, 1), ``INFO/R2`` =
   q², the rest are typed: DS = g) — written as bgzipped VCFs, then ``ingest``,
   ``qc`` and ``gwas`` with the same phenotype file and options;
3. ``plink2 --glm firth-fallback`` on each (silver .bed / the dosage VCF as .pgen),
   with the same covariates (the qc PCs) and discovery samples.

Writes ``benchmarks/results/DATE-dosage-gwas.{json,md}``: the stage times (wall
seconds of each command, and the association step the manifest records), the
variants tested and plink2's time on the same work. Example::

    python -m benchmarks.dosage_gwas --work /tmp/dosage-bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.core.processes import run_command
from gwas_prs.formats.plink_bed import open_bed, read_bed_rows, read_bim

BUNDLED = Path(__file__).resolve().parents[1] / "gwas_prs" / "data" / "1kg"
RESULTS = Path(__file__).resolve().parent / "results"
TRAITS = ("disease", "height")


def gwas_prs(*args: str) -> float:
    """Run ``gwas-prs ARGS`` (this interpreter's); its wall seconds."""
    started = time.monotonic()
    run_command([sys.executable, "-m", "gwas_prs.cli.app", *args])
    return round(time.monotonic() - started, 2)


def timed(cmd: list[str], cwd: Path) -> float:
    started = time.monotonic()
    run_command(cmd, cwd=str(cwd))
    return round(time.monotonic() - started, 2)


def write_dosage_vcfs(run: Path, out: Path, imputed: float, seed: int) -> dict[str, int]:
    """The imputed copy of ``run``'s silver .bed as one bgzipped VCF per contig."""
    prefix = str(run / "silver" / "genotypes.plink" / "genotypes")
    bed, n = open_bed(prefix)
    bim = read_bim(prefix)
    samples = pd.read_csv(prefix + ".fam", sep=r"\s+", header=None)[1].astype(str).tolist()
    rng = np.random.default_rng(seed)
    grid = np.round(np.arange(0, 2001) / 1000, 3)
    text = np.array([f"{v:.3f}".rstrip("0").rstrip(".") or "0" for v in grid])
    counts = {"variants": len(bim), "imputed": 0}
    out.mkdir(parents=True, exist_ok=True)
    for contig, frame in bim.groupby("contig", sort=False):
        path = out / f"dose_chr{contig}.vcf"
        with path.open("w") as handle:
            handle.write("##fileformat=VCFv4.2\n")
            handle.write('##INFO=<ID=R2,Number=1,Type=Float,Description="Imputation r2">\n')
            handle.write('##INFO=<ID=TYPED,Number=0,Type=Flag,Description="Typed">\n')
            handle.write('##FORMAT=<ID=DS,Number=1,Type=Float,Description="ALT dosage">\n')
            handle.write(f"##contig=<ID={contig}>\n")
            handle.write("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER",
                                    "INFO", "FORMAT", *samples]) + "\n")  # fmt: skip
            rows = frame.index.to_numpy()
            for a in range(0, len(rows), 2048):
                block = rows[a : a + 2048]
                g = read_bed_rows(bed, int(block[0]), int(block[-1]) + 1, n).astype(float)
                g[g < 0] = np.nan
                p = np.nanmean(g, axis=1) / 2
                g = np.where(np.isnan(g), (2 * p)[:, None], g)
                is_imputed = rng.random(len(block)) < imputed
                q = np.where(is_imputed, rng.uniform(0.3, 1.0, len(block)), 1.0)
                noise = rng.normal(0, 0.05, g.shape) * is_imputed[:, None]
                ds = q[:, None] * g + (1 - q[:, None]) * 2 * p[:, None] + noise
                codes = np.clip(np.round(ds * 1000), 0, 2000).astype(np.int64)
                counts["imputed"] += int(is_imputed.sum())
                for k, j in enumerate(block):
                    v = bim.loc[j]
                    info = f"R2={q[k] ** 2:.4f}" if is_imputed[k] else "R2=1;TYPED"
                    varid = f"{contig}:{v.position}:{v.ref}:{v.alt}"
                    fixed = [
                        str(contig),
                        str(v.position),
                        varid,
                        v.ref,
                        v.alt,
                        ".",
                        "PASS",
                        info,
                        "DS",
                    ]
                    handle.write("\t".join(fixed) + "\t" + "\t".join(text[codes[k]]) + "\n")
        run_command(["bgzip", "-f", "-@", "2", str(path)])
    return counts


def glm_seconds(work: Path, source: list[str], phenotypes: Path, covar: Path, out: str) -> float:
    return timed(
        ["plink2", *source, "--pheno", str(phenotypes), "--pheno-name", ",".join(TRAITS),
         "--covar", str(covar), "--covar-variance-standardize", "--glm", "firth-fallback",
         "hide-covar", "--threads", "2", "--out", out],
        work,
    )  # fmt: skip


def plink_inputs(work: Path, run: Path, phenotypes: Path) -> tuple[Path, Path]:
    """Phenotypes of the discovery samples (others missing) and the PCs as covariates."""
    pheno = pd.read_csv(phenotypes, sep="\t").set_index("sample_id")
    out = pd.DataFrame(index=pheno.index)
    for trait in TRAITS:
        roles = pd.read_csv(run / "gold" / "splits" / f"{trait}.tsv", sep="\t")
        discovery = set(roles.loc[roles["role"] == "discovery", "sample_id"].astype(str))
        values = pheno[trait].where(pheno.index.astype(str).isin(discovery))
        out[trait] = values + 1 if trait == "disease" else values  # plink's 1/2 coding
    out.index.name = "IID"
    pheno_file = work / f"plink_pheno_{run.name}.tsv"
    out.to_csv(pheno_file, sep="\t", na_rep="NA")
    pcs = pd.read_csv(run / "silver" / "ancestry" / "scores.tsv", sep="\t").set_index("s")
    pcs = pcs[[f"PC{k}" for k in range(1, 11)]]
    pcs.index.name = "IID"
    covar_file = work / f"plink_covar_{run.name}.tsv"
    pcs.to_csv(covar_file, sep="\t")
    return pheno_file, covar_file


def manifest_counts(run: Path, stage: str) -> dict[str, Any]:
    manifest = json.loads((run / "manifest.json").read_text())
    return dict(manifest["stages"][stage].get("counts", {}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--work", default="dosage-bench", help="scratch folder (an earlier run's is replaced)"
    )
    parser.add_argument("--vcfs", default=str(BUNDLED / "*.vcf.gz"), help="input VCF glob")
    parser.add_argument("--samples", default=str(BUNDLED / "samples.panel"))
    parser.add_argument("--imputed", type=float, default=0.5, help="share of imputed variants")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--name", default="dosage-gwas")
    args = parser.parse_args(argv)
    work = Path(args.work).resolve()
    marker = work / ".dosage-gwas-bench"
    if work.exists() and any(work.iterdir()) and not marker.exists():
        parser.error(f"--work {work}: exists and is not this benchmark's folder; choose another")
    shutil.rmtree(work, ignore_errors=True)  # only an empty folder or an earlier run of this
    work.mkdir(parents=True)
    marker.write_text("scratch folder of benchmarks/dosage_gwas.py; replaced by each run\n")
    hard, dose = work / "hard", work / "dose"
    vcfs = sorted(glob.glob(args.vcfs))
    times: dict[str, dict[str, float]] = {"hard": {}, "dose": {}}
    times["hard"]["ingest"] = gwas_prs(
        "ingest", *vcfs, "--samples", args.samples, "--run", str(hard)
    )
    times["hard"]["qc"] = gwas_prs("qc", str(hard))
    gwas_prs("simulate-phenotype", str(hard), "--trait", "disease", "--seed", "3")
    gwas_prs("simulate-phenotype", str(hard), "--trait", "height", "--quantitative",
             "--seed", "4")  # fmt: skip
    merged = pd.read_csv(hard / "simulated" / "disease" / "phenotypes.tsv", sep="\t")
    height = pd.read_csv(hard / "simulated" / "height" / "phenotypes.tsv", sep="\t")
    phenotypes = work / "phenotypes.tsv"
    merged.merge(height, on="sample_id").to_csv(phenotypes, sep="\t", index=False)
    trait_args = [a for t in TRAITS for a in ("--trait", t)]
    times["hard"]["gwas"] = gwas_prs(
        "gwas", str(hard), "--phenotypes", str(phenotypes), *trait_args
    )
    started = time.monotonic()
    made = write_dosage_vcfs(hard, work / "vcf", args.imputed, args.seed)
    write_s = round(time.monotonic() - started, 2)
    dose_vcfs = sorted(str(p) for p in (work / "vcf").glob("*.vcf.gz"))
    times["dose"]["ingest"] = gwas_prs(
        "ingest", *dose_vcfs, "--samples", args.samples, "--run", str(dose)
    )
    times["dose"]["qc"] = gwas_prs("qc", str(dose))
    times["dose"]["gwas"] = gwas_prs(
        "gwas", str(dose), "--phenotypes", str(phenotypes), *trait_args
    )
    results: dict[str, Any] = {"date": dt.date.today().isoformat(), "machine": platform.node()}
    for name, run in (("hard", hard), ("dose", dose)):
        gwas = manifest_counts(run, f"gwas:{TRAITS[0]}")
        qc = manifest_counts(run, "qc")
        pheno_file, covar_file = plink_inputs(work, run, phenotypes)
        source = (
            ["--bfile", str(run / "silver" / "genotypes.plink" / "genotypes")]
            if name == "hard"
            else ["--vcf", str(work / "dose_all.vcf.gz"), "dosage=DS"]
        )
        if name == "dose":  # the QC-passed dosages in one file, for plink2
            run_command(
                ["bcftools", "concat", "-Oz", "-o", str(work / "dose_all.vcf.gz"), *dose_vcfs]
            )
            run_command(["plink2", "--vcf", str(work / "dose_all.vcf.gz"), "dosage=DS",
                         "--extract", str(write_kept(run, work)), "--make-pgen",
                         "--out", str(work / "dose_pgen"), "--threads", "2"])  # fmt: skip
            source = ["--pfile", str(work / "dose_pgen")]
        results[name] = {
            "stage_wall_s": times[name],
            "association_s": gwas.get("association_s"),
            "variants_tested": qc.get("variants_out"),
            "samples_qc": qc.get("samples_out"),
            "plink2_glm_s": glm_seconds(work, source, pheno_file, covar_file, f"plink_{name}"),
        }
    results["dosage_vcfs"] = {**made, "write_s": write_s}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{results['date']}-{args.name}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = markdown(results)
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {stem}.json and .md")


def markdown(results: dict[str, Any]) -> list[str]:
    """The results as the Markdown table of ``DATE-NAME.md``."""
    made = results["dosage_vcfs"]
    lines = [
        f"# Dosage vs hard-call GWAS ({results['date']})",
        "",
        f"The bundled 1000 Genomes cohort after qc: {made['variants']} variants, "
        f"{made['imputed']} of them given imputed dosages (DS = q·g + (1 − q)·2p + noise, "
        f"R2 = q², q ~ U(0.3, 1)); traits {', '.join(TRAITS)} (one gwas call); 10 PCs; "
        "each run's qc and discovery split (the dose run's qc works on hard calls derived "
        "from the dosages, missing where uncertain, so it keeps slightly other samples and "
        "variants); plink2 --glm firth-fallback on the same files and samples. "
        "`association s` is the stage's association step (manifest); the wall time "
        "includes starting Hail, reading, the reports and the GWAS-SSF files.",
        "",
        "| cohort | QC samples | variants tested | ingest s | qc s | gwas s (wall) | association s | plink2 --glm s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("hard", "dose"):
        r = results[name]
        wall = r["stage_wall_s"]
        lines.append(
            f"| {name} | {r.get('samples_qc')} | {r['variants_tested']} | {wall['ingest']} | {wall['qc']} | "
            f"{wall['gwas']} | {r['association_s']} | {r['plink2_glm_s']} |"
        )
    return lines


def write_kept(run: Path, work: Path) -> Path:
    """The IDs of ``run``'s QC-passed variants (its silver .bim), for plink2 --extract."""
    bim = read_bim(str(run / "silver" / "genotypes.plink" / "genotypes"))
    path = work / f"kept_{run.name}.txt"
    path.write_text("\n".join(bim["varid"]) + "\n")
    return path


if __name__ == "__main__":
    main()
