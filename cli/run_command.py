"""``gwas-prs run`` (every stage from a pipeline file) and ``gwas-prs status``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gwas_prs.cli.console import console, summary_table
from gwas_prs.cli.options import EngineOption, RunArgument, SparkMasterOption

if TYPE_CHECKING:
    from gwas_prs.stages.pipeline import Plan, Step


def run(
    pipeline_file: Annotated[
        str,
        typer.Argument(
            help="Pipeline file (YAML; a local path or gs://bucket/path): inputs, run folder, "
            "Hail settings, stage parameters. See examples/pipeline.yaml.",
            show_default=False,
        ),
    ],
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            show_default=False,
            help="Start at this stage; the earlier ones must be complete (their changes are ignored).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", show_default=False, help="Stop after this stage."),
    ] = None,
    force: Annotated[
        str | None,
        typer.Option(
            "--force",
            show_default=False,
            help="Re-run this stage and every stage after it, even if up to date.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the plan (what runs and why) and run nothing."),
    ] = False,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
) -> None:
    """Run the pipeline: ingest → qc → simulate-phenotype → gwas → prs → train.

    One YAML file gives the inputs, the run folder, Hail settings and every
    stage's parameters (keys are the stage commands' option names). Stages
    whose outputs are complete and whose parameters and input files are
    unchanged are skipped; a changed parameter re-runs that stage and every
    stage after it. A run that was killed continues from the last complete
    stage. Stages: ingest, qc, simulate-phenotype, gwas, prs, train.

    Example: gwas-prs run examples/pipeline.yaml --dry-run
    """
    from gwas_prs.stages.pipeline import execute, plan
    from gwas_prs.stages.pipeline_config import load_pipeline

    pipeline = load_pipeline(str(pipeline_file))
    if engine is not None:  # the command line wins over the file's hail.engine
        pipeline = dataclasses.replace(pipeline, engine=engine)
    if spark_master is not None:  # and over its hail.spark-master
        pipeline = dataclasses.replace(pipeline, spark_master=spark_master)
    the_plan = plan(pipeline, start=start, until=until, force=force)
    print_plan(the_plan)
    if dry_run:
        console.print("dry run: nothing was run", highlight=False)
        return
    if not the_plan.to_run:
        console.print(f"everything is up to date in {pipeline.run_dir}", highlight=False)
        return

    def on_start(step: Step) -> None:
        console.rule(f"{step.name}: {step.reason}")

    execute(the_plan, on_start=on_start, on_result=print_stage_result)
    console.print()
    print_status(pipeline.run_dir)


def print_plan(the_plan: Plan) -> None:
    rows = [(s.name, s.action, s.parameters_hash, s.reason) for s in the_plan.steps]
    console.print(
        summary_table(
            f"plan: {the_plan.pipeline.path} → {the_plan.pipeline.run_dir}",
            rows,
            ("stage", "action", "parameters", "why"),
        ),
        soft_wrap=True,
    )


def print_stage_result(step: Step, result: Any) -> None:
    """The summary of each stage command, as the stage's own command prints it."""
    from gwas_prs.cli import gwas_command, ingest_command, qc_command, train_command

    printers: dict[str, Callable[[Any], None]] = {
        "ingest": ingest_command.print_ingest_summary,
        "qc": qc_command.print_qc_summary,
        "simulate-phenotype": gwas_command.print_simulation_summary,
        "gwas": gwas_command.print_gwas_summary,
        "prs": gwas_command.print_prs_summary,
        "train": train_command.print_train_summary,
    }
    printer = printers.get(step.stage)
    if printer is not None:
        printer(result)
    else:
        console.print(f"{step.name}: complete", highlight=False)


def status(run: RunArgument) -> None:
    """The stages of a run folder: status, parameters hash, key counts, wall time.

    Reads RUN/manifest.json only (no JVM). 'parameters' is the hash that
    'gwas-prs run' compares to decide whether a stage is up to date (empty for
    stages run by their own command).

    Example: gwas-prs status runs/demo
    """
    print_status(run)


def print_status(run: str) -> None:
    from gwas_prs.stages.pipeline import status_rows

    rows = status_rows(run)
    table_rows = [
        (
            r["stage"],
            r["status"] + (f": {r['error']}" if r["status"] == "failed" and r["error"] else ""),
            r["parameters_hash"] or "",
            r["counts"],
            r["engine"] or "",
            "" if r["wall_time_s"] is None else f"{r['wall_time_s']:.1f}",
            r["finished"] or "",
        )
        for r in rows
    ]
    console.print(
        summary_table(
            f"status: {run}",
            table_rows,
            ("stage", "status", "parameters", "counts", "engine", "wall time (s)", "finished"),
        ),
        soft_wrap=True,
    )
