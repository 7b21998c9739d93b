"""Firth regression with plink2's statistic: the numpy kernel against
``plink2 --glm firth`` on every row, and ``gwas --test firth`` (Wald with Firth
fallback, through the project's dispatch, both engines) against
``plink2 --glm firth-fallback`` row by row, Firth rows included.

Data: 400 samples x 40 rare SNPs (MAF 0.3-5%) written as a PLINK 1 fileset in
the test, a logistic trait (age, sex covariates; two causal SNPs); four SNPs
have no carrier among the cases (quasi-separation), where Wald fails and both
tools fall back to Firth. Reference commands, run in the test::

    plink2 --bfile t --covar t.cov --glm firth hide-covar --out all
    plink2 --bfile t --covar t.cov --glm firth-fallback hide-covar --out fallback

Tolerances (next to each assertion): |Δβ| 1e-3 and |Δ se| 1e-3 (plink2 prints
OR with 6 significant digits), |Δ −log10 p| 0.01 (the issue's bar; observed 5e-5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gwas_prs.core.processes import run_command
from gwas_prs.methods.gwas.firth_local import firth_wald_rows
from tests.conftest import have_programs

pytestmark = pytest.mark.skipif(
    not have_programs("plink2"), reason="plink2 is not installed (CI installs it)"
)

N, M = 400, 40


def _simulate(folder: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    maf = rng.uniform(0.003, 0.05, M)
    g = rng.binomial(2, maf[:, None], size=(M, N)).astype(float)
    age = rng.normal(50, 10, N)
    sex = rng.integers(0, 2, N).astype(float)
    eta = -2 + 0.02 * (age - 50) + 0.3 * sex + 0.8 * g[0] + 1.2 * g[1]
    y = (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(float)
    # .bed, SNP-major: A1 (the ALT, counted) homozygous 00, het 10, REF homozygous 11
    code = {2: 0b00, 1: 0b10, 0: 0b11}
    with open(folder / "t.bed", "wb") as handle:
        handle.write(bytes([0x6C, 0x1B, 0x01]))
        for j in range(M):
            row = bytearray((N + 3) // 4)
            for i in range(N):
                row[i // 4] |= code[int(g[j, i])] << (2 * (i % 4))
            handle.write(bytes(row))
    (folder / "t.bim").write_text("".join(f"1\tv{j}\t0\t{1000 + j}\tA\tG\n" for j in range(M)))
    (folder / "t.fam").write_text(
        "".join(f"s{i}\ts{i}\t0\t0\t0\t{int(y[i]) + 1}\n" for i in range(N))
    )
    (folder / "t.cov").write_text(
        "#FID\tIID\tage\tsex\n"
        + "".join(f"s{i}\ts{i}\t{float(age[i])!r}\t{sex[i]:g}\n" for i in range(N))
    )
    return {"g": g, "y": y, "age": age, "sex": sex}


def _plink2(folder: Path, mode: str, out: str) -> pd.DataFrame:
    run_command(
        ["plink2", "--bfile", "t", "--covar", "t.cov", "--glm", mode, "hide-covar",
         "--threads", "1", "--memory", "2000", "--out", out],
        cwd=folder,
    )  # fmt: skip
    suffix = "glm.firth" if mode == "firth" else "glm.logistic.hybrid"
    frame = pd.read_csv(folder / f"{out}.PHENO1.{suffix}", sep="\t")
    return frame.assign(beta=np.log(frame["OR"]))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("firth")
    return folder, _simulate(folder)


def test_firth_kernel_equals_plink2_glm_firth(data: tuple[Path, dict[str, np.ndarray]]) -> None:
    folder, sim = data
    expected = _plink2(folder, "firth", "all")
    design = np.column_stack([np.ones(N), sim["age"], sim["sex"]])
    fit = firth_wald_rows(sim["g"], sim["y"], design)
    assert fit.converged.all()
    np.testing.assert_allclose(fit.beta, expected["beta"], atol=1e-3)  # OR printed to 6 digits
    np.testing.assert_allclose(fit.standard_error, expected["LOG(OR)_SE"], atol=1e-3)
    np.testing.assert_allclose(fit.z, expected["Z_STAT"], atol=1e-3)
    assert np.abs(np.log10(fit.p_value) - np.log10(expected["P"])).max() <= 0.01


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["local", "hail"])
def test_gwas_firth_fallback_equals_plink2_on_every_row(
    engine: str,
    data: tuple[Path, dict[str, np.ndarray]],
    hail_context: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hail as hl

    from gwas_prs.methods.gwas import association

    if engine == "local":  # the driver holds one row of genotypes at a time: 4 chunks
        monkeypatch.setattr(association, "FIRTH_CHUNK_ENTRIES", N)

    from gwas_prs.engine.switch import engine_in_use
    from gwas_prs.methods.gwas.association import TraitSpec, association_tests

    folder, sim = data
    expected = _plink2(folder, "firth-fallback", "fallback").set_index("POS")
    mt = hl.import_plink(
        bed=str(folder / "t.bed"), bim=str(folder / "t.bim"), fam=str(folder / "t.fam"),
        reference_genome="GRCh37", a2_reference=True,
    )  # fmt: skip
    cov = hl.Table.from_pandas(
        pd.DataFrame({"s": [f"s{i}" for i in range(N)], "age": sim["age"], "sex": sim["sex"]}),
        key="s",
    )
    mt = mt.annotate_cols(y=hl.float64(hl.int(mt.is_case)), age=cov[mt.s].age, sex=cov[mt.s].sex)
    with engine_in_use(engine):
        tables = {
            test: association_tests(
                mt, [TraitSpec("y", True)], {"y": "y"}, ["age", "sex"], test=test
            )
            for test in ("firth", "firth-lrt")
        }
    got = tables["firth"]["y"].to_pandas()
    got.index = [locus.position for locus in got["locus"]]
    got = got.loc[expected.index]
    firth_rows = got.index[got["method"] == "firth"]
    # the same rows fall back (the 4 SNPs without a carrier among the cases)
    assert list(firth_rows) == list(expected.index[expected["FIRTH?"] == "Y"])
    assert len(firth_rows) == 4
    np.testing.assert_allclose(got["beta"], expected["beta"], atol=1e-3)
    np.testing.assert_allclose(got["standard_error"], expected["LOG(OR)_SE"], atol=1e-3)
    np.testing.assert_allclose(got["statistic"], expected["Z_STAT"], atol=1e-3)
    assert np.abs(np.log10(got["p_value"]) - np.log10(expected["P"])).max() <= 0.01
    # firth-lrt: Hail's penalised LRT on the same rows — same β (1e-3), another statistic
    lrt = tables["firth-lrt"]["y"].to_pandas()
    lrt.index = [locus.position for locus in lrt["locus"]]
    lrt = lrt.loc[firth_rows]
    np.testing.assert_allclose(lrt["beta"], got.loc[firth_rows, "beta"], atol=1e-3)
    assert lrt["standard_error"].isna().all() and (lrt["statistic"] > 0).all()
