"""The chrX sex check against ``plink1.9 --check-sex`` on a simulated X (the Debian
plink2, 2.00a3.5, has no --check-sex).

Data (numpy, seed 9, written as a VCF in the fixture): 300 samples, 160 male
(haploid non-PAR calls) and 140 female, 300 non-PAR chrX SNPs (ALT frequency
0.15–0.5, so no SNP falls under either tool's frequency filter), 6 PAR1 SNPs (left
out by both); three males reported female, two females reported male, and four
females with a male-like F (inbred runs of homozygosity) reported female. Reference::

    plink1.9 --vcf x.vcf --double-id --update-sex sex.txt --split-x b37 no-fail
             --make-bed --out x                 # --split-x: the PAR1 SNPs become XY
    plink1.9 --bfile x --check-sex 0.2 0.8 --out c

Tolerances next to the assertions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gwas_prs.core.processes import run_command
from tests.conftest import have_programs

pytestmark = [
    pytest.mark.inputs,
    pytest.mark.slow,
    pytest.mark.reference,
    pytest.mark.skipif(not have_programs("plink1.9"), reason="plink1.9 is not installed"),
]

N_MALE, N_FEMALE, M = 160, 140, 300


def _simulate(folder: Path) -> pd.DataFrame:
    rng = np.random.default_rng(9)
    n = N_MALE + N_FEMALE
    male = np.arange(n) < N_MALE
    p = rng.uniform(0.15, 0.5, M)
    samples = [f"S{i}" for i in range(n)]
    inbred = np.arange(N_MALE, N_MALE + 4)  # females homozygous on most of X
    lines = [
        "##fileformat=VCFv4.2",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "##contig=<ID=X,length=155270560>",
        "\t".join(
            ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]
        ),
    ]
    positions = [*(100_000 + 1_000 * np.arange(6)), *(3_000_000 + 400_000 * np.arange(M))]
    freqs = [*rng.uniform(0.2, 0.5, 6), *p]
    for j, (pos, af) in enumerate(zip(positions, freqs, strict=True)):
        a = rng.random((n, 2)) < af
        par = j < 6
        if not par:
            a[inbred, 1] = a[inbred, 0] if j % 10 else a[inbred, 1]
        calls = [
            f"{int(a[i, 0])}" if male[i] and not par else f"{int(a[i, 0])}/{int(a[i, 1])}"
            for i in range(n)
        ]
        lines.append("\t".join(["X", str(pos), f"x{j}", "A", "G", ".", "PASS", ".", "GT", *calls]))
    (folder / "x.vcf").write_text("\n".join(lines) + "\n")
    reported_female = ~male
    reported_female[[0, 1, 2]] = True  # males reported female
    reported_female[[N_MALE + 10, N_MALE + 11]] = False  # females reported male
    frame = pd.DataFrame({"s": samples, "is_female": reported_female})
    (folder / "sex.txt").write_text(
        "".join(f"{s} {s} {2 if f else 1}\n" for s, f in zip(samples, reported_female, strict=True))
    )
    return frame


def test_sex_check_equals_plink19_check_sex(
    hail_context: None, tmp_path: Path, record_property: object
) -> None:
    import hail as hl

    from gwas_prs.methods.qc.sample_qc import sex_check

    reported = _simulate(tmp_path)
    run_command(
        ["plink1.9", "--vcf", "x.vcf", "--double-id", "--update-sex", "sex.txt",
         "--split-x", "b37", "no-fail", "--make-bed", "--out", "x"],
        cwd=tmp_path,
    )  # fmt: skip
    run_command(
        ["plink1.9", "--bfile", "x", "--check-sex", "0.2", "0.8", "--out", "c"], cwd=tmp_path
    )
    theirs = pd.read_csv(tmp_path / "c.sexcheck", sep=r"\s+").set_index("IID")
    mt = hl.import_vcf(str(tmp_path / "x.vcf"), reference_genome="GRCh37")
    table = hl.Table.from_pandas(reported, key="s")
    mt = mt.annotate_cols(is_female=table[mt.s].is_female)
    ours = sex_check(mt, max_female_xf=0.2, min_male_xf=0.8)
    assert ours is not None
    ours = ours.loc[theirs.index]
    worst = float(np.abs(ours["x_f"].to_numpy() - theirs["F"].to_numpy()).max())
    record_property("max_abs_f_difference", worst)  # type: ignore[operator]
    assert worst <= 1e-3  # plink1.9 prints F with 4 significant digits
    snpsex = ours["imputed_female"].map({True: 2, False: 1}).fillna(0).astype(int)
    assert (snpsex.to_numpy() == theirs["SNPSEX"].to_numpy()).all()
    # a mismatch where both sexes are known, as plink's PROBLEM rows with SNPSEX 1/2
    plink_mismatch = (theirs["STATUS"] == "PROBLEM") & (theirs["SNPSEX"] > 0)
    assert (ours["sex_mismatch"].to_numpy() == plink_mismatch.to_numpy()).all()
    assert sorted(ours.index[ours["sex_mismatch"]]) == sorted(
        ["S0", "S1", "S2", f"S{N_MALE + 10}", f"S{N_MALE + 11}"]
        + [f"S{i}" for i in range(N_MALE, N_MALE + 4) if snpsex[f"S{i}"] == 1]
    )
