"""`gwas-prs run` / `status`: YAML validation, plans, kill-and-resume, re-runs on change.

The real runs use chromosomes 21 and 22 of the bundled cohort with a simulated
trait (the shape of examples/pipeline-small.yaml): one uninterrupted run
in-process (the reference), one `gwas-prs run` subprocess killed with SIGKILL
in the middle of qc and then resumed.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.cli_helpers import invoke
from tests.conftest import DATA_1KG, REPO

SMALL = """\
run: {run}
inputs:
  vcfs:
    - {data}/1KG_phase3_subset_chr21.vcf.gz
    - {data}/1KG_phase3_subset_chr22.vcf.gz
  samples: {data}/samples.panel
hail: {{cores: 1, driver-memory: 2g, seed: 42}}
stages:
  # two chromosomes leave ~275 LD-pruned SNPs: KING calls ~38% of the samples related
  # (noise; all 22 autosomes remove ~1%), which qc refuses unless accepted
  qc: {{n-pcs: 4, max-removed-fraction: 0.5}}
  simulate-phenotype: {{trait: disease, h2: 0.8, n-causal: 50, prevalence: 0.3, covariate-effects: true}}
  gwas: {{covariates: [age, sex], n-pcs: {gwas_pcs}}}
  prs: {{thresholds: [1.0e-4, 0.01, 0.1, 1], clump-r2: {clump_r2}}}
  train: {{folds: 3, n-trials: 4}}
"""


def write_pipeline(folder: Path, run: Path, *, gwas_pcs: int = 4, clump_r2: float = 0.1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"pipeline-{gwas_pcs}-{clump_r2}.yaml"
    path.write_text(SMALL.format(run=run, data=DATA_1KG, gwas_pcs=gwas_pcs, clump_r2=clump_r2))
    return path


def stages_of(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())["stages"]


def comparable(value: object) -> object:
    """Counts without timings/partitioning (which depend on load and cores), floats to 9 digits."""
    if isinstance(value, dict):
        return {
            k: comparable(v)
            for k, v in value.items()
            if not k.endswith("_s") and k not in ("partitions", "timings")
        }
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return float(f"{value:.9g}") if isinstance(value, float) else value


def plan_of(*args: str) -> dict[str, tuple[str, str]]:
    from gwas_prs.stages.pipeline import plan
    from gwas_prs.stages.pipeline_config import load_pipeline

    options = dict(zip(args[1::2], args[2::2], strict=True))
    the_plan = plan(
        load_pipeline(args[0]),
        start=options.get("--from"),
        until=options.get("--until"),
        force=options.get("--force"),
    )
    return {s.name: (s.action, s.reason) for s in the_plan.steps}


# --------------------------------------------------------------- validation (no JVM)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "stages:\n  qc:\n    min_maf: 0.05\n",
            ":5: unknown key 'min_maf' in 'stages.qc' (did you mean 'min-maf'?); allowed keys: min-sample-call-rate, het-sd",
        ),
        ("stages:\n  qc:\n    n-pcs: ten\n", ":5: 'stages.qc.n-pcs' must be an integer, not 'ten'"),
        (
            "stages:\n  plink:\n    x: 1\n",
            ":4: unknown stage 'plink' in 'stages'; allowed stages: ingest, qc, simulate-phenotype, gwas, prs, train",
        ),
        (
            "colour: red\n",
            ":3: unknown key 'colour' in 'pipeline file'; allowed keys: run, inputs, hail, stages",
        ),
        (
            "stages:\n  gwas:\n    trait: t\n",
            ":4: stage 'gwas' needs phenotypes: set inputs.phenotypes",
        ),
        ("stages:\n  prs: {}\n", ":4: stage 'prs' needs the stage 'gwas'; add it"),
        ("hail:\n  cores: true\n", ":4: 'hail.cores' must be an integer, not True"),
        ("stages:\n  qc:\n    min-maf: 0.9\n", "stages.qc: --min-maf 0.9"),
    ],
)
def test_bad_pipeline_files_fail_in_one_line_without_hail(
    no_jvm: None, tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"run: r\ninputs: {{vcfs: {DATA_1KG}/1KG_phase3_subset_chr22.vcf.gz}}\n{text}")
    code, _, errors = invoke("run", str(path))
    assert code == 2, errors
    assert errors.count("\n") == 1 and errors.startswith(f"error: {path}")
    assert expected in errors


def test_missing_inputs_and_bad_options(no_jvm: None, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("run: r\ninputs:\n  vcfs: nothing/chr*.vcf.gz\n")
    code, _, errors = invoke("run", str(path))
    assert (
        code == 2
        and f"{path}:3: inputs.vcfs: {tmp_path}/nothing/chr*.vcf.gz matches no file" in errors
    )
    path.write_text("run: r\n")
    assert "the section 'inputs' (with 'vcfs') is missing" in invoke("run", str(path))[2]
    good = write_pipeline(tmp_path, tmp_path / "run")
    code, _, errors = invoke("run", str(good), "--force", "clumping")
    assert code == 2 and "--force clumping: unknown stage; choose one of ingest, qc" in errors
    code, _, errors = invoke("run", str(good), "--from", "gwas", "--dry-run")
    assert (
        code == 2
        and "--from gwas: the earlier stage 'ingest' is not complete (never ran)" in errors
    )
    code, out, _ = invoke("run", str(good), "--dry-run")
    assert code == 0 and "dry run: nothing was run" in out and not (tmp_path / "run").exists()
    assert invoke("status", str(tmp_path))[2].startswith(f"error: {tmp_path}: no manifest.json")


def test_real_phenotypes_plan_without_hwe_in_controls(no_jvm: None, tmp_path: Path) -> None:
    """inputs.phenotypes with a gwas section and default qc (the usual real-data file)."""
    pheno = tmp_path / "pheno.tsv"
    pheno.write_text("sample_id\tdisease\tage\tsex\nHG00096\t1\t50\t0\n")
    path = tmp_path / "p.yaml"
    path.write_text(
        f"run: run\ninputs:\n  vcfs: {DATA_1KG}/1KG_phase3_subset_chr22.vcf.gz\n"
        f"  phenotypes: {pheno}\nstages:\n  gwas: {{trait: disease, covariates: [age, sex]}}\n"
        "  prs: {}\n"
    )
    code, out, errors = invoke("run", str(path), "--dry-run")
    assert code == 0, errors
    assert "dry run: nothing was run" in out and "gwas:disease" in out


def test_example_pipelines_validate(no_jvm: None) -> None:
    from gwas_prs.stages.pipeline_config import load_pipeline

    demo = load_pipeline(str(REPO / "examples" / "pipeline.yaml"))
    assert len(demo.vcfs) == 1 and demo.traits == ("disease",)
    assert demo.stages["simulate-phenotype"]["h2"] == 0.8 and demo.seed == 42
    assert demo.run_dir == str(REPO / "gwas-prs-demo")
    small = load_pipeline(str(REPO / "examples" / "pipeline-small.yaml"))
    assert [Path(v).name for v in small.vcfs] == [
        "1KG_phase3_subset_chr21.vcf.gz",
        "1KG_phase3_subset_chr22.vcf.gz",
    ]


# --------------------------------------------------------------- real runs


def start_run(pipeline: Path, log: Path) -> subprocess.Popen:
    """``gwas-prs run PIPELINE`` in a fresh process (own process group, own JVM).

    The runs that are compared are separate processes: Hail's PCA draws from the
    global seed's stream, so two qc runs in one Hail session differ slightly."""
    return subprocess.Popen(
        [sys.executable, "-m", "gwas_prs.cli.app", "run", str(pipeline)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@pytest.fixture(scope="module")
def reference_run(hail_context: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of the small pipeline."""
    folder = tmp_path_factory.mktemp("pipeline")
    run = folder / "reference"
    log = folder / "reference.log"
    assert start_run(write_pipeline(folder, run), log).wait() == 0, log.read_text()[-2000:]
    return run


@pytest.mark.slow
def test_uninterrupted_run_and_status(reference_run: Path) -> None:
    stages = stages_of(reference_run)
    names = [
        "ingest", "qc", "simulate-phenotype:disease", "gwas:disease", "prs:disease", "train:disease"
    ]  # fmt: skip
    assert list(stages) == names
    assert all(stages[n]["status"] == "complete" for n in names)
    assert all(len(stages[n]["pipeline"]["parameters_hash"]) == 12 for n in names)
    from gwas_prs.stages.pipeline import status_rows

    rows = {r["stage"]: r for r in status_rows(str(reference_run))}
    assert list(rows) == names and {r["status"] for r in rows.values()} == {"complete"}
    assert rows["ingest"]["counts"] == "samples=1,126 variants=2,285"  # chr21+22
    code, out, _ = invoke("status", str(reference_run))
    assert (
        code == 0 and "status:" in out and "complete" in out
    )  # (column widths follow the terminal)
    # a second run does nothing
    pipeline = next(reference_run.parent.glob("pipeline-4-0.1.yaml"))
    code, out, _ = invoke("run", str(pipeline))
    assert code == 0 and "everything is up to date" in out


@pytest.mark.slow
@pytest.mark.engines
def test_engines_agree_on_every_stage(reference_run: Path, tmp_path: Path) -> None:
    """The same pipeline with ``--engine hail`` (Hail's methods: ``hl.ld_prune``,
    ``hwe_normalized_pca``, ``hl.king``, ``logistic_regression_rows``, BlockMatrix
    clumping LD, Hail scoring) against the reference run (``auto`` = the numpy engine),
    stage by stage. Measured on chr21+22 (2026-12-03; tolerances in
    tests/engine_comparison.py next to each quantity):

    =========  ===========================================  ==============
    stage      quantity                                     max difference
    =========  ===========================================  ==============
    qc         kept samples, kept variants, filter counts   identical
    qc         LD-pruned variants, KING pairs               identical
    qc         KING kinship                                 0
    qc         PC scores (one sign convention)              |r| = 1 - 2e-16
    qc         eigenvalues                                  1.3e-15 relative
    qc         allele counts per population                 identical
    gwas       odds ratio / SE (relative), −log10 p         8e-9 / 1e-11, 7e-11
    prs        clump index variants, scored samples         identical
    prs        C+T scores                                   2.5e-10
    prs        LDpred2/lassosum2 scores (relative)          1.4e-11
    features   numeric columns / others                     8e-11 / identical
    train      metrics.json numbers                         6e-11
    =========  ===========================================  ==============
    """
    import dataclasses

    from gwas_prs.stages.pipeline import execute, plan
    from gwas_prs.stages.pipeline_config import load_pipeline
    from tests.engine_comparison import compare_runs, table

    hail_run = tmp_path / "hail-engine"
    pipeline = load_pipeline(str(write_pipeline(tmp_path, hail_run)))
    execute(plan(dataclasses.replace(pipeline, engine="hail")))
    assert {raw["engine"] for raw in stages_of(hail_run).values()} == {"hail"}
    assert {raw["engine"] for raw in stages_of(reference_run).values()} == {"local"}
    rows = compare_runs(reference_run, hail_run)
    print(table(rows))
    assert [r for r in rows if not r.ok] == []
    # prs on the numpy engine after a qc on the Hail engine (which kept no .bed): it
    # exports the silver genotypes for itself, and scores as the reference run does
    assert not (hail_run / "silver" / "genotypes.plink").exists()
    code, _, errors = invoke(
        "prs", str(hail_run), "--trait", "disease", "--overwrite", "--engine", "local",
        "--thresholds", "1e-4,0.01,0.1,1",
    )  # fmt: skip
    assert code == 0, errors
    prs = stages_of(hail_run)["prs:disease"]
    assert prs["engine"] == "local" and prs["counts"]["genotypes_from"] == "silver .bed (numpy)"
    scores = "gold/prs/disease/scores.tsv"
    local = pd.read_csv(reference_run / scores, sep="\t", index_col="sample_id")
    again = pd.read_csv(hail_run / scores, sep="\t", index_col="sample_id").loc[local.index]
    prs_columns = [c for c in local.columns if c.startswith("prs_")]
    assert (local[prs_columns] - again[prs_columns]).abs().max().max() < 1e-9
    assert not list((hail_run / "tmp").glob("prs-bed-*"))  # the export was removed


@pytest.mark.slow
def test_plans_follow_parameter_changes(reference_run: Path) -> None:
    folder = reference_run.parent
    same = write_pipeline(folder, reference_run)
    assert {a for a, _ in plan_of(str(same)).values()} == {"skip"}
    changed = write_pipeline(folder, reference_run, gwas_pcs=3)
    plan = plan_of(str(changed))
    assert [plan[s][0] for s in plan] == ["skip", "skip", "skip", "run", "run", "run"]
    assert plan["gwas:disease"][1].startswith("parameters changed (")
    assert plan["prs:disease"][1] == "upstream stage gwas:disease re-runs"
    plan = plan_of(str(same), "--force", "qc")
    assert [plan[s] for s in plan][1:] == [
        ("run", "--force qc"),
        ("run", "downstream of --force qc"),
        ("run", "downstream of --force qc"),
        ("run", "downstream of --force qc"),
        ("run", "downstream of --force qc"),
    ]
    plan = plan_of(str(changed), "--until", "simulate-phenotype")
    assert plan["gwas:disease"] == ("not run", "after --until simulate-phenotype")
    # --from ignores changes before it
    plan = plan_of(str(write_pipeline(folder, reference_run, gwas_pcs=3)), "--from", "prs")
    assert plan["gwas:disease"] == ("skip", "before --from prs")
    assert plan["prs:disease"][0] == "skip"


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_outputs(reference_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "killed"
    pipeline = write_pipeline(tmp_path, run)
    process = start_run(pipeline, tmp_path / "killed.log")
    try:
        deadline = time.monotonic() + 300
        # wait until qc is running and has a partial output on disk
        while time.monotonic() < deadline and process.poll() is None:
            manifest = run / "manifest.json"
            running = manifest.exists() and (
                json.loads(manifest.read_text())["stages"].get("qc", {}).get("status") == "running"
            )
            if running and list((run / "silver").glob(".*.partial-*")):
                break
            time.sleep(0.2)
        assert process.poll() is None, (tmp_path / "killed.log").read_text()[-2000:]
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the JVM is in the same process group
        process.wait()
    stages = stages_of(run)
    assert stages["ingest"]["status"] == "complete" and stages["qc"]["status"] == "running"
    assert not (run / "silver" / "genotypes.mt").exists()
    # nothing downstream accepts the interrupted qc
    code, _, errors = invoke("gwas", str(run), "--phenotypes", "x.tsv", "--trait", "disease")
    assert code == 2 and "the 'qc' stage did not finish" in errors

    plan = plan_of(str(pipeline))
    assert plan["ingest"][0] == "skip"
    assert plan["qc"] == ("run", "interrupted (left 'running')")
    resumed_log = tmp_path / "resumed.log"
    assert start_run(pipeline, resumed_log).wait() == 0, resumed_log.read_text()[-2000:]
    assert "qc: interrupted (left 'running')" in resumed_log.read_text()
    assert not list(run.glob("**/.*.partial-*"))  # the stage removed the partial outputs

    resumed, reference = stages_of(run), stages_of(reference_run)
    assert {k: v["status"] for k, v in resumed.items()} == {
        k: v["status"] for k, v in reference.items()
    }
    for name in resumed:
        assert (
            resumed[name]["pipeline"]["parameters_hash"]
            == (reference[name]["pipeline"]["parameters_hash"])
        )
        assert comparable(resumed[name]["counts"]) == comparable(reference[name]["counts"]), name
    sumstats = "gold/gwas/disease/sumstats.tsv.gz"
    with gzip.open(run / sumstats) as a, gzip.open(reference_run / sumstats) as b:
        assert a.read() == b.read()
    scores = "gold/prs/disease/scores.tsv"
    assert (run / scores).read_bytes() == (reference_run / scores).read_bytes()
    metrics = "gold/models/disease/metrics.json"
    assert json.loads((run / metrics).read_text()) == json.loads(
        (reference_run / metrics).read_text()
    )  # the model trained after the resume is the same model


@pytest.mark.slow
def test_changed_prs_parameter_reruns_prs_only(reference_run: Path) -> None:
    before = stages_of(reference_run)
    pipeline = write_pipeline(reference_run.parent, reference_run, clump_r2=0.2)
    code, _, errors = invoke("run", str(pipeline))
    assert code == 0, errors
    after = stages_of(reference_run)
    for name in ("ingest", "qc", "simulate-phenotype:disease", "gwas:disease"):
        assert after[name]["finished"] == before[name]["finished"], name
    assert after["prs:disease"]["parameters"]["clump_r2"] == 0.2
    assert (
        after["prs:disease"]["pipeline"]["parameters_hash"]
        != (before["prs:disease"]["pipeline"]["parameters_hash"])
    )
    clumps = pd.read_csv(reference_run / "gold" / "prs" / "disease" / "clumps.tsv", sep="\t")
    assert clumps["index_variant"].sum() > 0


@pytest.mark.slow
def test_copied_run_works_without_the_original(
    reference_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished run folder copied elsewhere, with the original out of the way: every
    stage is complete in the copy, the manifest names nothing of the original, and prs
    re-runs from another working directory on the copy's own simulated phenotypes."""
    import shutil

    from gwas_prs.stages.pipeline import status_rows

    copy = tmp_path / "copied run"
    shutil.copytree(reference_run, copy)
    hidden = reference_run.with_name(reference_run.name + "-hidden")
    reference_run.rename(hidden)
    try:
        monkeypatch.chdir(tmp_path)
        rows = status_rows("copied run")
        assert {r["status"] for r in rows} == {"complete"}, rows
        stages = stages_of(copy)
        portable = {
            name: {k: v for k, v in raw.items() if k != "pipeline"} for name, raw in stages.items()
        }
        assert str(reference_run) not in json.dumps(portable)
        assert stages["gwas:disease"]["parameters"]["phenotypes_file"] == (
            "simulated/disease/phenotypes.tsv"
        )
        # the parameters the reference's prs ran with (an earlier test may change them)
        prs = stages["prs:disease"]["parameters"]
        code, _, errors = invoke(
            "prs", "copied run", "--trait", "disease", "--overwrite",
            "--clump-r2", str(prs["clump_r2"]),
            "--thresholds", ",".join(f"{t:g}" for t in prs["thresholds"]),
        )  # fmt: skip
        assert code == 0, errors
        scores = "gold/prs/disease/scores.tsv"
        assert (copy / scores).read_bytes() == (hidden / scores).read_bytes()
    finally:
        hidden.rename(reference_run)
