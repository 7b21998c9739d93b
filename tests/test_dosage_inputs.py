"""Imputed dosages end to end against plink2 on the same files, and the PLINK fileset
and MatrixTable inputs against the VCF they were made from.

Data (written in the fixture, numpy, seed 5): 500 samples × 240 chr22 variants, ALT
dosages on a 1/16 grid (exact in VCF text, 8-bit BGEN aside, and in plink2's 1/16384
.pgen precision) mixing the true genotype with its expectation by an imputation
quality q (INFO/R2 = q² in the VCF); 12 rare variants (ALT frequency 0.4–1%) for the
Firth fallback, four of them without a carrier among the cases (quasi-separation: Wald
fails, both tools fall back to Firth); a quantitative and a binary trait with age and sex covariates.
Reference commands, run in the fixture::

    plink2 --vcf d.vcf dosage=DS --make-pgen --out d          # dosages, hard calls (0.1)
    plink2 --pfile d --make-bed --out h                        # plink2's hard calls
    plink2 --pfile d --export bgen-1.2 bits=8 ref-first --out b
    plink2 --pfile d --pheno p.tsv --covar p.tsv --covar-name age,sex
           --glm firth-fallback hide-covar --out g             # linear qt, logistic cc
    plink2 --bgen b.bgen ref-first --sample b.sample … --glm firth-fallback … --out gb
    plink2 --pfile d --score w.tsv 1 2 header cols=+scoresums --score-col-nums 3-4
    plink2 --pfile d --extract-if-info "R2 >= 0.8" --write-snplist --out i
    plink2 --bgen b.bgen ref-first --sample b.sample --freq cols=+machr2 --out f
    plink2 --bgen b.bgen ref-first --sample b.sample --mach-r2-filter 0.8 --write-snplist

Tolerances are next to each assertion (the issue's: β r ≥ 0.9999, |Δ −log10 p| ≤ 0.01,
scores 1e-6).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gwas_prs.core.processes import run_command
from tests.conftest import have_programs

pytestmark = [
    pytest.mark.inputs,
    pytest.mark.slow,
    pytest.mark.reference,
    pytest.mark.skipif(
        not have_programs("plink2"), reason="plink2 is not installed (CI installs it)"
    ),
]

N, M, RARE = 500, 240, 12


def _simulate(folder: Path) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    p = np.concatenate([rng.uniform(0.05, 0.5, M - RARE), rng.uniform(0.004, 0.01, RARE)])
    q = np.concatenate([rng.uniform(0.3, 1.0, M - RARE), np.ones(RARE)])
    g = rng.binomial(2, p[:, None], size=(M, N)).astype(float)
    ds = q[:, None] * g + (1 - q[:, None]) * 2 * p[:, None] + rng.normal(0, 0.05, (M, N))
    ds = np.clip(np.round(ds * 16) / 16, 0, 2)  # a 1/16 grid: exact everywhere
    age = rng.normal(50, 10, N)
    sex = rng.integers(0, 2, N).astype(float)
    causal = rng.choice(M - RARE, 10, replace=False)
    genetic = ds[causal].T @ rng.normal(0, 0.4, 10)
    qt = genetic + 0.02 * age + 0.3 * sex + rng.normal(0, 1, N)
    eta = -1.2 + genetic + 0.01 * (age - 50)
    cc = (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(int)
    ds[M - 4 :, cc == 1] = 0.0  # four rare SNPs without a case carrier: Wald fails, Firth fits
    samples = [f"S{i}" for i in range(N)]
    positions = 16_050_000 + 1_000 * np.arange(M)
    header = [
        "##fileformat=VCFv4.2",
        '##INFO=<ID=R2,Number=1,Type=Float,Description="Imputation r2">',
        '##FORMAT=<ID=DS,Number=1,Type=Float,Description="ALT dosage">',
        "##contig=<ID=22,length=51304566>",
        "\t".join(
            ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]
        ),
    ]
    body = [
        "\t".join(
            ["22", str(positions[j]), f"rs{j}", "A", "G", ".", "PASS", f"R2={q[j] ** 2:.4f}", "DS"]
            + [f"{v:.4f}" for v in ds[j]]
        )
        for j in range(M)
    ]
    (folder / "d.vcf").write_text("\n".join(header + body) + "\n")
    pheno = pd.DataFrame({"IID": samples, "qt": qt, "cc": cc + 1, "age": age, "sex": sex})
    pheno.rename(columns={"IID": "#IID"}).to_csv(folder / "p.tsv", sep="\t", index=False)
    return {"ds": ds, "q": q, "pheno": pheno, "samples": samples, "positions": positions}


def _plink2(folder: Path, *args: str) -> None:
    run_command(["plink2", *args, "--threads", "2", "--memory", "2000"], cwd=folder)


@pytest.fixture(scope="module")
def cohort(hail_context: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from gwas_prs.stages.ingest import IngestConfig, run_ingest

    folder = tmp_path_factory.mktemp("dosages")
    sim = _simulate(folder)
    _plink2(folder, "--vcf", "d.vcf", "dosage=DS", "--make-pgen", "--out", "d")
    _plink2(folder, "--pfile", "d", "--make-bed", "--out", "h")
    _plink2(folder, "--pfile", "d", "--export", "bgen-1.2", "bits=8", "ref-first", "--out", "b")
    runs = {}
    for name, source in (("vcf", "d.vcf"), ("bgen", "b.bgen")):
        runs[name] = folder / f"run-{name}"
        run_ingest(IngestConfig(vcfs=(str(folder / source),), run_dir=str(runs[name])))
    return {"dir": folder, "runs": runs, **sim}


def _bronze(run: Path) -> Any:
    import hail as hl

    return hl.read_matrix_table(str(run / "bronze" / "genotypes.mt"))


def _with_traits(mt: Any, pheno: pd.DataFrame) -> Any:
    import hail as hl

    table = hl.Table.from_pandas(
        pheno.rename(columns={"IID": "s"})[["s", "qt", "cc", "age", "sex"]].assign(
            cc=lambda f: (f.cc - 1).astype(float)
        ),
        key="s",
    )
    row = table[mt.s]
    return mt.annotate_cols(qt=row.qt, cc=row.cc, age=row.age, sex=row.sex)


def test_vcf_and_bgen_ingest_the_same_dosages_and_plink2_hard_calls(cohort: dict) -> None:
    import hail as hl

    from gwas_prs.core.run_folder import RunFolder, stage_record

    vcf, bgen = (_bronze(cohort["runs"][k]) for k in ("vcf", "bgen"))
    assert vcf.count() == bgen.count() == (M, N)
    for run in cohort["runs"].values():
        counts = stage_record(RunFolder(str(run)), "ingest").counts  # type: ignore[union-attr]
        assert counts["variants"] == M and counts["dosages"] is True
    ds_vcf = np.array(vcf.DS.collect()).reshape(M, N)
    np.testing.assert_array_equal(ds_vcf, cohort["ds"])  # exact: the 1/16 grid
    ds_bgen = np.array(bgen.DS.collect()).reshape(M, N)
    assert np.abs(ds_bgen - cohort["ds"]).max() <= 2 / 255  # 8-bit BGEN probabilities
    # hard calls: the dosage within 0.1 of an integer, exactly as plink2 imports them
    h = hl.import_plink(
        *(str(cohort["dir"] / f"h.{ext}") for ext in ("bed", "bim", "fam")),
        reference_genome="GRCh37",
        a2_reference=True,
    )
    theirs = np.array(h.GT.n_alt_alleles().collect(), dtype=float).reshape(M, N)
    ours = np.array(vcf.GT.n_alt_alleles().collect(), dtype=float).reshape(M, N)
    np.testing.assert_array_equal(np.nan_to_num(ours, nan=-1), np.nan_to_num(theirs, nan=-1))
    assert np.isnan(ours).mean() > 0.05  # the threshold leaves uncertain dosages uncalled


def _glm(folder: Path, source: list[str], out: str) -> dict[str, pd.DataFrame]:
    _plink2(
        folder, *source, "--pheno", "p.tsv", "--pheno-name", "qt,cc", "--covar", "p.tsv",
        "--covar-name", "age,sex", "--glm", "firth-fallback", "hide-covar", "--out", out,
    )  # fmt: skip
    linear = pd.read_csv(folder / f"{out}.qt.glm.linear", sep="\t")
    logistic = pd.read_csv(folder / f"{out}.cc.glm.logistic.hybrid", sep="\t")
    return {"qt": linear, "cc": logistic.assign(BETA=np.log(logistic["OR"]))}


@pytest.mark.parametrize(
    ("source", "engine"), [("vcf", "local"), ("vcf", "hail"), ("bgen", "local")]
)
def test_dosage_gwas_equals_plink2_glm(
    cohort: dict, source: str, engine: str, tmp_path: Path, record_property: Any
) -> None:
    from gwas_prs.engine.switch import engine_in_use
    from gwas_prs.formats.silver_bed import open_silver_bed, write_silver_bed
    from gwas_prs.methods.gwas.association import TraitSpec, association_tests

    folder = cohort["dir"]
    plink_source = (
        ["--pfile", "d"]
        if source == "vcf"
        else ["--bgen", "b.bgen", "ref-first", "--sample", "b.sample"]
    )
    expected = _glm(folder, plink_source, f"g-{source}")
    mt = _with_traits(_bronze(cohort["runs"][source]), cohort["pheno"])
    silver = None
    if engine == "local":  # the numpy engine reads the dosages from a silver .pgen
        write_silver_bed(mt, str(tmp_path / "genotypes"))
        silver = open_silver_bed(str(tmp_path), N, M)
        assert silver is not None and silver.pgen is not None
    traits = [TraitSpec("qt", False), TraitSpec("cc", True)]
    started = time.monotonic()
    with engine_in_use(engine):
        tables = association_tests(
            mt, traits, {"qt": "qt", "cc": "cc"}, ["age", "sex"], silver=silver, test="firth"
        )
        frames = {name: table.to_pandas() for name, table in tables.items()}
    record_property("dosage_gwas_s", round(time.monotonic() - started, 2))
    for trait, ours in frames.items():
        ours.index = [locus.position for locus in ours["locus"]]
        theirs = expected[trait].set_index("POS").loc[ours.index]
        # plink2 reports the effect of A1; orient it to the ALT allele
        beta = np.where(theirs["A1"] == theirs["ALT"], theirs["BETA"], -theirs["BETA"])
        r = np.corrcoef(ours["beta"], beta)[0, 1]
        delta = np.abs(np.log10(ours["p_value"].astype(float)) - np.log10(theirs["P"]))
        record_property(f"{trait}_beta_r", float(r))
        record_property(f"{trait}_max_delta_log10_p", float(delta.max()))
        assert r >= 0.9999, trait  # the tolerance
        assert delta.max() <= 0.01, trait  # the tolerance, every row
        if trait == "cc":
            firth = ours["method"] == "firth"
            assert list(ours.index[firth]) == list(theirs.index[theirs["FIRTH?"] == "Y"])
            record_property("firth_rows", int(firth.sum()))
            assert firth.sum() >= 4  # the separated SNPs (at least) fall back on both sides


def test_dosage_scores_equal_plink2_score(cohort: dict, tmp_path: Path) -> None:
    import hail as hl

    from gwas_prs.formats.silver_bed import open_silver_bed, write_silver_bed
    from gwas_prs.methods.prs.prs_local import bed_polygenic_scores
    from gwas_prs.methods.prs.scoring import polygenic_scores

    folder = cohort["dir"]
    rng = np.random.default_rng(8)
    picked = np.sort(rng.choice(M, 150, replace=False))
    effect_is_alt = rng.random(len(picked)) < 0.5
    weights = rng.normal(0, 0.001, (len(picked), 2))
    frame = pd.DataFrame(
        {
            "ID": [f"rs{j}" for j in picked],
            "A1": np.where(effect_is_alt, "G", "A"),
            "w0": weights[:, 0],
            "w1": weights[:, 1],
        }
    )
    frame.to_csv(folder / "w.tsv", sep="\t", index=False)
    _plink2(
        folder, "--pfile", "d", "--score", "w.tsv", "1", "2", "header", "cols=+scoresums",
        "--score-col-nums", "3-4", "--out", "s",
    )  # fmt: skip
    theirs = pd.read_csv(folder / "s.sscore", sep="\t").rename(columns={"#IID": "IID"})
    theirs = theirs.set_index("IID")
    mt = _bronze(cohort["runs"]["vcf"])
    table = hl.Table.from_pandas(
        frame.assign(effect_is_alt=effect_is_alt).rename(columns={"ID": "rsid"}), key="rsid"
    )
    w = table[mt.rsid]
    hail_scores = polygenic_scores(mt, hl.array([w.w0, w.w1]), w.effect_is_alt).to_pandas()
    hail_scores = np.vstack(hail_scores.set_index("s").loc[theirs.index, "scores"].to_numpy())
    write_silver_bed(mt, str(tmp_path / "genotypes"))
    silver = open_silver_bed(str(tmp_path), N, M)
    assert silver is not None
    alt_weights = np.where(effect_is_alt[:, None], weights, -weights)
    offset = np.where(effect_is_alt[:, None], 0.0, 2 * weights).sum(axis=0)
    local = bed_polygenic_scores(silver, picked.astype(np.int64), alt_weights, cohort["samples"])
    local_scores = np.vstack(local.loc[theirs.index, "scores"].to_numpy()) + offset
    for name, ours in (("hail", hail_scores), ("local", local_scores)):
        for k in range(2):
            worst = np.abs(ours[:, k] - theirs[f"SCORE{k + 1}_SUM"].to_numpy()).max()
            assert worst <= 1e-6, name  # the tolerance


def test_min_info_counts_equal_plink2(cohort: dict) -> None:
    from gwas_prs.methods.qc.variant_qc import VariantThresholds, info_source, variant_qc_table

    folder = cohort["dir"]
    thresholds = VariantThresholds(min_call_rate=0.0, min_maf=0.0, hwe_p=0.0, min_info=0.8)
    # VCF INFO/R2 against --extract-if-info
    _plink2(
        folder, "--pfile", "d", "--extract-if-info", "R2 >= 0.8", "--write-snplist", "--out", "i"
    )
    kept_plink = set((folder / "i.snplist").read_text().split())
    vcf = _bronze(cohort["runs"]["vcf"])
    assert info_source(vcf) == "R2"
    ht = variant_qc_table(vcf, thresholds)
    ht = ht.annotate(rsid=vcf.rows()[ht.key].rsid)
    kept = set(ht.filter(~ht.fail_info).rsid.collect())
    assert kept == kept_plink and 0 < len(kept) < M
    # BGEN: MaCH r² of the dosages against plink2 --freq cols=+machr2 / --mach-r2-filter
    bgen_args = ["--bgen", "b.bgen", "ref-first", "--sample", "b.sample"]
    _plink2(folder, *bgen_args, "--freq", "cols=+machr2", "--out", "f")
    _plink2(folder, *bgen_args, "--mach-r2-filter", "0.8", "--write-snplist", "--out", "m")
    bgen = _bronze(cohort["runs"]["bgen"])
    assert info_source(bgen) == "mach_r2"
    ht = variant_qc_table(bgen, thresholds)
    ours = ht.select(rsid=bgen.rows()[ht.key].rsid, info=ht.info_score, fail=ht.fail_info)
    ours_frame = ours.to_pandas().set_index("rsid")
    freq = pd.read_csv(folder / "f.afreq", sep="\t").set_index("ID")
    np.testing.assert_allclose(
        ours_frame.loc[freq.index, "info"], freq["MACH_R2"], atol=1e-4
    )  # plink2 prints 6 significant digits
    assert set(ours_frame.index[~ours_frame["fail"]]) == set(
        (folder / "m.snplist").read_text().split()
    )


def test_plink_fileset_and_matrix_table_give_the_vcf_bronze(cohort: dict) -> None:
    """A hard-call VCF (the dosages rounded), its plink2 .bed and its hl.import_vcf
    MatrixTable ingest to the same loci, alleles, samples and calls."""
    import hail as hl

    from gwas_prs.stages.ingest import IngestConfig, run_ingest

    folder = cohort["dir"]
    text = (folder / "d.vcf").read_text().splitlines()
    code = {0: "0/0", 1: "0/1", 2: "1/1"}
    hard = np.rint(cohort["ds"]).astype(int)
    lines = [line for line in text if line.startswith("##") and "DS" not in line]
    lines.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    lines.append(next(line for line in text if line.startswith("#CHROM")))
    for j, line in enumerate(line for line in text if not line.startswith("#")):
        fixed = line.split("\t")[:8]
        lines.append("\t".join([*fixed, "GT", *(code[v] for v in hard[j])]))
    (folder / "gt.vcf").write_text("\n".join(lines) + "\n")
    _plink2(folder, "--vcf", "gt.vcf", "--make-bed", "--out", "gt")
    hl.import_vcf(str(folder / "gt.vcf"), reference_genome="GRCh37").write(str(folder / "gt.mt"))
    bronze = {}
    for name, source in (("vcf", "gt.vcf"), ("plink", "gt.bed"), ("mt", "gt.mt")):
        run = folder / f"run-gt-{name}"
        run_ingest(IngestConfig(vcfs=(str(folder / source),), run_dir=str(run)))
        mt = _bronze(run)
        bronze[name] = mt.select_entries(n=mt.GT.n_alt_alleles()).select_rows().select_cols()
    reference = bronze["vcf"].entries().collect()
    for name in ("plink", "mt"):
        assert bronze[name].entries().collect() == reference, name


def _ld_dosage_vcf(path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """300 samples × 80 chr22 variants in 8 LD blocks (10 kb apart inside a block, 60 kb
    between blocks: a 250 kb window spans several), dosages on a 1/16 grid."""
    rng = np.random.default_rng(12)
    n, blocks, per_block = 300, 8, 10
    rows, positions = [], []
    for b in range(blocks):
        base = rng.binomial(2, rng.uniform(0.2, 0.5), n).astype(float)
        for k in range(per_block):
            g = base.copy()
            flip = rng.random(n) < 0.08 * (k + 1)  # LD decays along the block
            g[flip] = rng.binomial(2, 0.35, int(flip.sum()))
            rows.append(np.clip(g + rng.choice([-2, -1, 0, 1, 2], n) / 16, 0, 2))
            positions.append(16_000_000 + b * 150_000 + k * 10_000)
    ds = np.array(rows)
    samples = [f"L{i}" for i in range(n)]
    lines = [
        "##fileformat=VCFv4.2",
        '##FORMAT=<ID=DS,Number=1,Type=Float,Description="ALT dosage">',
        "##contig=<ID=22,length=51304566>",
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                   *samples]),
    ]  # fmt: skip
    for j, (pos, d) in enumerate(zip(positions, ds, strict=True)):
        values = "\t".join(f"{x:g}" for x in d)
        lines.append(f"22\t{pos}\tld{j}\tA\tG\t.\tPASS\t.\tDS\t{values}")
    path.write_text("\n".join(lines) + "\n")
    return ds, samples, np.array(positions)


def _reference_clumps(
    ds: np.ndarray, positions: np.ndarray, p: np.ndarray, r2: float, kb: int
) -> set[int]:
    """Index variants of PLINK's greedy clumping (p1 = p2 = 1) over the dosage r², by
    brute force: np.corrcoef of every pair, the most significant unclumped variant
    first, absorbing every unclumped variant within ``kb`` at r² >= ``r2``."""
    corr = np.corrcoef(ds) ** 2
    taken = np.zeros(len(p), dtype=bool)
    index = set()
    for v in np.lexsort((np.arange(len(p)), p)):
        if taken[v]:
            continue
        index.add(int(v))
        taken[v] = True
        near = (np.abs(positions - positions[v]) <= kb * 1000) & (corr[v] >= r2)
        taken |= near
    return index


def test_dosage_clumping_uses_dosage_r2_on_both_engines(hail_context: None, tmp_path: Path) -> None:
    """Imputed input: clumping's r² is the dosage correlation (as plink2 computes r² on
    dosages), on the numpy engine (silver .pgen) and the Hail engine (BlockMatrix of the
    dosages), both equal to a brute-force reference."""
    import hail as hl

    from gwas_prs.formats.silver_bed import open_silver_bed, write_silver_bed
    from gwas_prs.methods.prs.clumping import ClumpParameters, clump_frame
    from gwas_prs.methods.prs.prs_local import bed_clump_candidates
    from gwas_prs.stages.ingest import vcf_genotypes

    ds, samples, positions = _ld_dosage_vcf(tmp_path / "ld.vcf")
    rng = np.random.default_rng(3)
    p = rng.uniform(1e-8, 1, len(positions))
    params = ClumpParameters(r2=0.1, kb=250, p1=1.0, p2=1.0)
    expected = _reference_clumps(ds, positions, p, params.r2, params.kb)
    assert 8 <= len(expected) < len(p) / 2  # LD absorbs most variants, blocks stay apart

    mt = vcf_genotypes(hl.import_vcf(str(tmp_path / "ld.vcf"), reference_genome="GRCh37"))
    table = hl.Table.from_pandas(pd.DataFrame({"pos": positions, "p": p}), key="pos")
    hail_frame = clump_frame(mt, table[mt.locus.position].p, params)
    hail_index = set(np.flatnonzero(hail_frame["index_variant"].to_numpy()))

    write_silver_bed(mt, str(tmp_path / "genotypes"))
    silver = open_silver_bed(str(tmp_path), len(samples), len(positions))
    assert silver is not None and silver.pgen is not None
    sumstats = pd.DataFrame(
        {"chromosome": "22", "position": positions, "ref": "A", "alt": "G", "p_value": p,
         "beta": rng.normal(size=len(p))}
    )  # fmt: skip
    candidates, _ = bed_clump_candidates(silver, sumstats, samples, params)
    numpy_index = set(np.flatnonzero(candidates.result.is_index))
    assert hail_index == expected
    assert numpy_index == expected
