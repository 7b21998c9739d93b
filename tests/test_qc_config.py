"""QC parameters, the phenotype reader and the qc command's up-front checks (no JVM)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

# `gwas_prs.stages.ingest` must be imported before `no_jvm` patches hail_context.start_hail;
# otherwise its `from ... import start_hail` binds the patch for the rest of the session.
import gwas_prs.stages.ingest  # noqa: F401
from gwas_prs.core.errors import InputError, StageNotCompleteError
from gwas_prs.formats.phenotypes import read_binary_trait
from gwas_prs.stages.qc import QcConfig, run_qc


def test_defaults_are_the_design_defaults() -> None:
    config = QcConfig(run_dir="run")
    assert (config.min_sample_call_rate, config.het_sd, config.min_variant_call_rate) == (
        0.97,
        3.0,
        0.95,
    )
    assert (config.min_maf, config.hwe_p, config.kinship) == (0.01, 1e-6, 0.0884)
    assert (config.prune_r2, config.prune_window_kb, config.n_pcs) == (0.2, 500, 10)


@pytest.mark.parametrize(
    ("changes", "option"),
    [
        ({"min_maf": 0.7}, "--min-maf"),
        ({"min_maf": -0.01}, "--min-maf"),
        ({"min_sample_call_rate": -0.1}, "--min-sample-call-rate"),
        ({"min_variant_call_rate": 1.5}, "--min-variant-call-rate"),
        ({"hwe_p": 2.0}, "--hwe-p"),
        ({"kinship": 0.0}, "--kinship"),
        ({"kinship": 0.6}, "--kinship"),
        ({"prune_r2": 0.0}, "--prune-r2"),
        ({"prune_window_kb": 0}, "--prune-window-kb"),
        ({"n_pcs": 0}, "--n-pcs"),
        ({"het_sd": 0.0}, "--het-sd"),
        ({"min_maf": float("nan")}, "--min-maf"),
        ({"hwe_controls_only": True}, "--hwe-controls-only"),
        ({"phenotypes": "p.tsv", "trait": "t"}, "--phenotypes"),
    ],
)
def test_invalid_thresholds_are_refused_naming_the_option(
    changes: dict[str, object], option: str
) -> None:
    with pytest.raises(InputError) as info:
        QcConfig(run_dir="run", **changes)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(option)
    assert "\n" not in message


def test_boundary_thresholds_are_accepted() -> None:
    QcConfig(
        run_dir="run",
        min_maf=0.5,
        min_sample_call_rate=0.0,
        min_variant_call_rate=1.0,
        kinship=0.5,
        hwe_p=0.0,
    )


def test_qc_refuses_when_ingest_has_not_run(tmp_path: Path, no_jvm: None) -> None:
    with pytest.raises(
        StageNotCompleteError, match=r"needs the 'ingest' stage.*run 'gwas-prs ingest'"
    ):
        run_qc(QcConfig(run_dir=str(tmp_path / "empty-run")))


@pytest.mark.parametrize(
    ("column", "cases", "controls", "coding"),
    [
        (["0", "1", "NA", "1", ""], 2, 1, "0/1"),
        (["1", "2", "-9", "2", "1"], 2, 2, "1/2"),
        (["Control", "case", ".", "CASE", "control"], 2, 2, "case/control"),
    ],
)
def test_binary_trait_codings(
    tmp_path: Path, column: list[str], cases: int, controls: int, coding: str
) -> None:
    path = tmp_path / "pheno.tsv"
    lines = ["IID\tT2D\tage"] + [f"S{i}\t{v}\t{40 + i}" for i, v in enumerate(column)]
    path.write_text("\n".join(lines) + "\n")
    trait = read_binary_trait(str(path), "T2D")
    assert (trait.n_cases, trait.n_controls, trait.coding) == (cases, controls, coding)
    assert int(trait.is_case.isna().sum()) == len(column) - cases - controls


def test_binary_trait_errors(tmp_path: Path) -> None:
    path = tmp_path / "pheno.csv"
    path.write_text("sample,bmi,flag\nA,21.5,0\nB,30.1,1\n")
    with pytest.raises(InputError, match="no trait column 'T2D'"):
        read_binary_trait(str(path), "T2D")
    with pytest.raises(InputError, match="not binary"):
        read_binary_trait(str(path), "bmi")
    assert read_binary_trait(str(path), "flag").n_cases == 1
    with pytest.raises(InputError, match="not found"):
        read_binary_trait(str(tmp_path / "missing.tsv"), "flag")


def _cli(args: list[str]) -> tuple[int, str]:
    from gwas_prs.cli.app import app

    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_cli_bad_threshold_exits_2_with_one_line(tmp_path: Path, no_jvm: None) -> None:
    code, output = _cli(["qc", str(tmp_path), "--min-maf", "0.7"])
    assert code == 2
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines == ["error: --min-maf 0.7: must be in [0.0, 0.5]"]


def test_cli_refuses_without_ingest(tmp_path: Path, no_jvm: None) -> None:
    code, output = _cli(["qc", str(tmp_path / "run")])
    assert code == 2
    assert "needs the 'ingest' stage" in output
    assert len([line for line in output.splitlines() if line.strip()]) == 1


def test_cli_help_lists_qc() -> None:
    code, output = _cli(["--help"])
    assert code == 0
    assert "qc" in output


def test_gwas_refuses_an_unknown_xchr_model(no_jvm: None, tmp_path: Path) -> None:
    """--xchr-model takes plink2's 1 or 2: one line, exit 2, before anything runs."""
    from tests.cli_helpers import invoke

    pheno = tmp_path / "p.tsv"
    pheno.write_text("sample\tt\nA\t1\n")
    code, _, errors = invoke(
        "gwas", str(tmp_path / "run"), "--phenotypes", str(pheno), "--trait", "t",
        "--xchr-model", "3",
    )  # fmt: skip
    assert code == 2
    assert errors == (
        "error: --xchr-model 3: choose 2 (males 0/2, plink2's default) or 1 (males 0/1)\n"
    )
