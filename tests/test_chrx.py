"""chrX association, scoring and HWE against plink2 on the same simulated VCF.

Data (numpy, seed 5, written in the fixture, as ``x.vcf`` with hard calls and
``xd.vcf`` with imputed dosages ``GT:DS``, a haploid call's DS on 0..1): 400 samples — 220 males with haploid
non-PAR X calls, 170 females, 10 of unknown sex — × 60 chr22 SNPs, 5 PAR1 SNPs and
200 non-PAR X SNPs (ALT frequency 0.1–0.5), plus 6 rare non-PAR X SNPs (0.5–1.5%)
for the Firth fallback; a quantitative trait with X effects and a male shift, a binary
trait, an ``age`` covariate. Reference commands, run in the fixture::

    plink2 --vcf x.vcf --update-sex sex.txt --split-par b37 --make-pgen --out x
    plink2 --vcf xd.vcf dosage=DS --update-sex sex.txt --split-par b37 --make-pgen --out xd
    plink2 --pfile x --pheno p.tsv --covar p.tsv --covar-name age --covar-variance-standardize
           --glm firth-fallback hide-covar [--xchr-model 1] --out g2|g1
    plink2 --pfile x --score w.tsv 1 2 header cols=+scoresums [--xchr-model 1]
    plink2 --pfile x --keep-females --hardy midp --out h   # h.hardy.x

plink2 (2.00a3.5, Debian) codes males 0/2 by default (model 2; ``--xchr-model 1``:
0/1), adds the sex as a covariate on the non-PAR X and leaves samples of unknown sex
out there (OBS_CT 390). Its chrX ``--hardy`` counts males too (the Graffelman–Weir
test); gwas-prs tests HWE on the non-PAR X over females only, as PLINK 1.9 does,
which is plink2's test with ``--keep-females``. Without ``--covar-variance-standardize`` this plink2 reports
CORR_TOO_HIGH on some chr22 rows (an unscaled age in 30–70); scaling a covariate
changes no genotype β or p. Tolerances next to each assertion.
"""

from __future__ import annotations

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

N_MALE, N_FEMALE, N_UNKNOWN = 220, 170, 10
N = N_MALE + N_FEMALE + N_UNKNOWN
AUTOSOMAL, PAR, NONPAR, RARE = 60, 5, 200, 6


def _simulate(folder: Path) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    sex = np.array([1] * N_MALE + [2] * N_FEMALE + [0] * N_UNKNOWN)
    samples = [f"S{i}" for i in range(N)]
    male = sex == 1
    rows: list[tuple[str, int, bool]] = [
        *(("22", 16_000_000 + 20_000 * j, False) for j in range(AUTOSOMAL)),
        *(("X", 100_000 + 1_000 * j, False) for j in range(PAR)),  # PAR1 (b37: to 2,699,520)
        *(("X", 3_000_000 + 400_000 * j, True) for j in range(NONPAR + RARE)),
    ]
    freqs = np.concatenate(
        [rng.uniform(0.1, 0.5, AUTOSOMAL + PAR + NONPAR), rng.uniform(0.005, 0.015, RARE)]
    )
    lines = [
        "##fileformat=VCFv4.2",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "##contig=<ID=22,length=51304566>",
        "##contig=<ID=X,length=155270560>",
        "\t".join(
            ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]
        ),
    ]
    dosage_lines = [*lines[:2], '##FORMAT=<ID=DS,Number=1,Type=Float,Description="ALT dosage">']
    dosage_lines += lines[2:]
    genotypes = np.zeros((len(rows), N))  # plink's coding: a male's hemizygous ALT is 2
    for j, ((contig, pos, nonpar), af) in enumerate(zip(rows, freqs, strict=True)):
        a = (rng.random((N, 2)) < af).astype(int)
        haploid = male & nonpar
        genotypes[j] = np.where(haploid, 2 * a[:, 0], a.sum(axis=1))
        calls = [f"{a[i, 0]}" if haploid[i] else f"{a[i, 0]}/{a[i, 1]}" for i in range(N)]
        fixed = [contig, str(pos), f"v{j}", "A", "G", ".", "PASS", "."]
        lines.append("\t".join([*fixed, "GT", *calls]))
        # imputed: the dosage on the call's own scale (a haploid call's DS is 0..1), on a
        # 1/16 grid, exact in VCF text and in plink2's .pgen
        ds = np.where(haploid, a[:, 0], a.sum(axis=1)) + rng.choice([-1, 0, 1], N) / 16
        ds = np.clip(ds, 0, np.where(haploid, 1, 2))
        entries = [f"{c}:{d:g}" for c, d in zip(calls, ds, strict=True)]
        dosage_lines.append("\t".join([*fixed, "GT:DS", *entries]))
    (folder / "x.vcf").write_text("\n".join(lines) + "\n")
    (folder / "xd.vcf").write_text("\n".join(dosage_lines) + "\n")
    x0 = AUTOSOMAL + PAR
    age = rng.uniform(30, 70, N)
    qt = (
        0.4 * genotypes[x0 + 10]
        + 0.3 * genotypes[x0 + 20]
        + 0.2 * genotypes[5]
        + 0.02 * age
        + 0.3 * male
        + rng.normal(size=N)
    )
    liability = -0.5 + 0.5 * genotypes[x0 + 30] + 0.01 * (age - 50)
    cc = (rng.random(N) < 1 / (1 + np.exp(-liability))).astype(int)
    (folder / "sex.txt").write_text(
        "#IID\tSEX\n" + "".join(f"{s}\t{x}\n" for s, x in zip(samples, sex, strict=True))
    )
    pheno = pd.DataFrame({"IID": samples, "qt": qt, "cc": cc + 1, "age": age})
    pheno.to_csv(folder / "p.tsv", sep="\t", index=False)
    gender = np.where(sex == 1, "male", np.where(sex == 2, "female", ""))
    return {"samples": samples, "pheno": pheno, "gender": gender, "rows": rows}


def _plink2(folder: Path, *args: str) -> None:
    run_command(["plink2", *args, "--threads", "2", "--memory", "2000"], cwd=folder)


@pytest.fixture(scope="module")
def cohort(hail_context: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("chrx")
    sim = _simulate(folder)
    _plink2(
        folder, "--vcf", "x.vcf", "--update-sex", "sex.txt", "--split-par", "b37",
        "--make-pgen", "--out", "x",
    )  # fmt: skip
    _plink2(
        folder, "--vcf", "xd.vcf", "dosage=DS", "--update-sex", "sex.txt", "--split-par",
        "b37", "--make-pgen", "--out", "xd",
    )  # fmt: skip
    return {"dir": folder, **sim}


def _matrix_table(cohort: dict[str, Any], source: str = "x") -> Any:
    """The VCF as ingest reads it (:func:`gwas_prs.stages.ingest.vcf_genotypes`: for the
    dosage VCF, ``DS`` on the diploid scale and the derived hard calls)."""
    import hail as hl

    from gwas_prs.stages.ingest import vcf_genotypes

    mt = hl.import_vcf(str(cohort["dir"] / f"{source}.vcf"), reference_genome="GRCh37")
    mt = vcf_genotypes(mt)
    pheno = cohort["pheno"].assign(
        s=cohort["samples"],
        cc=lambda f: (f.cc - 1).astype(float),
        gender=[g or None for g in cohort["gender"]],
    )
    table = hl.Table.from_pandas(pheno[["s", "qt", "cc", "age", "gender"]], key="s")
    row = table[mt.s]
    return mt.annotate_cols(qt=row.qt, cc=row.cc, age=row.age, gender=row.gender)


def _glm(folder: Path, model: int, source: str = "x") -> dict[str, pd.DataFrame]:
    out = f"g{model}{source}"
    _plink2(
        folder, "--pfile", source, "--pheno", "p.tsv", "--pheno-name", "qt,cc", "--covar", "p.tsv",
        "--covar-name", "age", "--covar-variance-standardize", "--glm", "firth-fallback", "hide-covar",
        "--xchr-model", str(model), "--out", out,
    )  # fmt: skip
    linear = pd.read_csv(folder / f"{out}.qt.glm.linear", sep="\t")
    logistic = pd.read_csv(folder / f"{out}.cc.glm.logistic.hybrid", sep="\t")
    return {"qt": linear, "cc": logistic.assign(BETA=np.log(logistic["OR"]))}


@pytest.mark.parametrize(
    ("model", "engine", "source"),
    [(2, "local", "x"), (2, "hail", "x"), (1, "local", "x"), (2, "local", "xd"), (1, "hail", "xd")],
)
def test_chrx_gwas_equals_plink2_glm(
    cohort: dict, model: int, engine: str, source: str, tmp_path: Path, record_property: Any
) -> None:
    from gwas_prs.engine.switch import engine_in_use
    from gwas_prs.formats.silver_bed import open_silver_bed, write_silver_bed
    from gwas_prs.methods.gwas.association import TraitSpec, association_tests

    expected = _glm(cohort["dir"], model, source)
    mt = _matrix_table(cohort, source)
    n_rows = len(cohort["rows"])
    silver = None
    if engine == "local":  # the autosomes and PARs from the silver .bed, X apart
        write_silver_bed(mt, str(tmp_path / "genotypes"))
        silver = open_silver_bed(str(tmp_path), N, n_rows)
        assert silver is not None
    traits = [TraitSpec("qt", False), TraitSpec("cc", True)]
    with engine_in_use(engine):
        tables = association_tests(
            mt, traits, {"qt": "qt", "cc": "cc"}, ["age"], silver=silver, xchr_model=model
        )
        frames = {name: table.to_pandas() for name, table in tables.items()}
    for trait, ours in frames.items():
        assert len(ours) == n_rows, trait  # every variant once: autosomes, PARs, non-PAR X
        ours.index = [f"{locus.contig}:{locus.position}" for locus in ours["locus"]]
        theirs = expected[trait].assign(
            key=lambda f: (
                f["#CHROM"].replace({"PAR1": "X"}).astype(str) + ":" + f["POS"].astype(str)
            )
        )
        theirs = theirs.set_index("key").loc[ours.index]
        nonpar = theirs["#CHROM"].to_numpy() == "X"
        # samples of unknown sex are left out on the non-PAR X only, as plink2 does
        assert (ours["n"].to_numpy() == theirs["OBS_CT"].to_numpy()).all(), trait
        assert set(theirs.loc[nonpar, "OBS_CT"]) == {N_MALE + N_FEMALE}
        beta = np.where(theirs["A1"] == theirs["ALT"], theirs["BETA"], -theirs["BETA"])
        r = np.corrcoef(ours["beta"], beta)[0, 1]
        worst_beta = np.abs(ours["beta"].to_numpy() - beta)[nonpar].max()
        delta = np.abs(np.log10(ours["p_value"].astype(float)) - np.log10(theirs["P"]))
        record_property(
            f"{source}_model{model}_{engine}_{trait}_max_delta_log10_p", float(delta.max())
        )
        record_property(f"{source}_model{model}_{engine}_{trait}_beta_r", float(r))
        assert r >= 0.9999, trait  # the tolerance
        assert worst_beta <= 1e-3, trait  # the X coding itself: model 1 doubles the betas
        assert delta.max() <= 0.01, trait  # the tolerance, every row
        if trait == "cc":
            firth = ours["method"] == "firth"
            assert list(ours.index[firth]) == list(theirs.index[theirs["FIRTH?"] == "Y"])


def test_chrx_effect_depends_on_the_model(cohort: dict) -> None:
    """The two codings differ (the comparison above can fail): under model 1 a male's
    allele is worth half as much, so the X betas grow."""
    g1, g2 = (_glm(cohort["dir"], m)["qt"] for m in (1, 2))
    x = g1["#CHROM"] == "X"
    assert g1["BETA"].notna().all()
    assert not np.allclose(g1.loc[x, "BETA"], g2.loc[x, "BETA"], rtol=1e-3)
    assert np.allclose(g1.loc[~x, "BETA"], g2.loc[~x, "BETA"], rtol=1e-6)


def test_chrx_scores_equal_plink2_score(cohort: dict, tmp_path: Path) -> None:
    import hail as hl

    from gwas_prs.formats.silver_bed import open_silver_bed, write_silver_bed
    from gwas_prs.methods.prs.prs_local import bed_polygenic_scores
    from gwas_prs.methods.prs.scoring import polygenic_scores

    folder = cohort["dir"]
    rng = np.random.default_rng(8)
    n_rows = len(cohort["rows"])
    picked = np.sort(rng.choice(n_rows, 150, replace=False))
    assert (picked >= AUTOSOMAL + PAR).sum() > 50  # non-PAR X variants among them
    effect_is_alt = rng.random(len(picked)) < 0.5
    weights = rng.normal(0, 0.01, len(picked))
    frame = pd.DataFrame(
        {"ID": [f"v{j}" for j in picked], "A1": np.where(effect_is_alt, "G", "A"), "w": weights}
    )
    frame.to_csv(folder / "w.tsv", sep="\t", index=False)
    _plink2(
        folder, "--pfile", "x", "--score", "w.tsv", "1", "2", "3", "header", "cols=+scoresums",
        "--out", "s",
    )  # fmt: skip
    theirs = pd.read_csv(folder / "s.sscore", sep="\t").rename(columns={"#IID": "IID"})
    theirs = theirs.set_index("IID")["SCORE1_SUM"]
    mt = _matrix_table(cohort)
    table = hl.Table.from_pandas(
        frame.assign(effect_is_alt=effect_is_alt).rename(columns={"ID": "rsid"}), key="rsid"
    )
    w = table[mt.rsid]
    hail_scores = polygenic_scores(mt, hl.array([w.w]), w.effect_is_alt).to_pandas()
    hail_scores = np.array([s[0] for s in hail_scores.set_index("s").loc[theirs.index, "scores"]])
    write_silver_bed(mt, str(tmp_path / "genotypes"))
    silver = open_silver_bed(str(tmp_path), N, n_rows)
    assert silver is not None
    alt_weights = np.where(effect_is_alt, weights, -weights)[:, None]
    offset = np.where(effect_is_alt, 0.0, 2 * weights).sum()
    local = bed_polygenic_scores(silver, picked.astype(np.int64), alt_weights, cohort["samples"])
    local_scores = np.array([s[0] for s in local.loc[theirs.index, "scores"]]) + offset
    for name, ours in (("hail", hail_scores), ("local", local_scores)):
        worst = np.abs(ours - theirs.to_numpy()).max()
        assert worst <= 1e-6, name  # the tolerance (plink2 prints 6 digits)


def test_chrx_hwe_counts_females_only(cohort: dict) -> None:
    from gwas_prs.methods.qc.variant_qc import VariantThresholds, variant_qc_table

    folder = cohort["dir"]
    _plink2(folder, "--pfile", "x", "--keep-females", "--hardy", "midp", "--out", "h")
    theirs = pd.read_csv(folder / "h.hardy.x", sep="\t").set_index("ID")
    ours = variant_qc_table(_matrix_table(cohort), VariantThresholds()).to_pandas()
    ours = ours[[locus.contig == "X" and locus.position >= 3_000_000 for locus in ours["locus"]]]
    ours.index = [f"v{j}" for j in range(AUTOSOMAL + PAR, len(cohort["rows"]))]
    theirs = theirs.loc[ours.index]
    worst = np.abs(np.log10(ours["p_hwe"].astype(float)) - np.log10(theirs["MIDP"])).max()
    assert worst <= 1e-4  # -log10 p; plink2 prints 6 significant digits


def test_chrx_dosage_frequencies_equal_plink2_freq(cohort: dict) -> None:
    """Imputed input: variant QC's ALT frequency counts a male's non-PAR X dosage as one
    allele, as ``plink2 --pfile xd --freq`` does (PARs and chr22: two per sample)."""
    from gwas_prs.methods.qc.variant_qc import VariantThresholds, variant_qc_table

    folder = cohort["dir"]
    _plink2(folder, "--pfile", "xd", "--freq", "--out", "f")
    theirs = pd.read_csv(folder / "f.afreq", sep="\t").set_index("ID")["ALT_FREQS"]
    ours = variant_qc_table(_matrix_table(cohort, "xd"), VariantThresholds()).to_pandas()
    ours.index = [f"v{j}" for j in range(len(cohort["rows"]))]
    worst = np.abs(ours["AF"].to_numpy(dtype=float) - theirs.loc[ours.index].to_numpy()).max()
    assert worst <= 1e-6  # plink2 prints 6 significant digits
