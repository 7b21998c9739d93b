"""The ``gwas-prs`` Typer application: one app, every command registered here."""

from __future__ import annotations

from typing import Any

import click
import typer
from typer.core import TyperGroup

from gwas_prs import __version__
from gwas_prs.cli import (
    dataproc_command,
    demo_command,
    export_command,
    gwas_command,
    ingest_command,
    qc_command,
    query_command,
    run_command,
    simulate_cohort_command,
    stage_command,
    train_command,
)
from gwas_prs.cli.console import configure_logging, print_error
from gwas_prs.cli.options import VerboseOption
from gwas_prs.core.errors import GwasPrsError, os_error_message


class GwasPrsGroup(TyperGroup):
    """Maps library errors to one-line messages and exit codes (2 input, 3 setup, …);
    a full disk, a read-only file system or a permission error is one line, exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GwasPrsError as exc:
            print_error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            message = os_error_message(exc)
            if message is None:
                raise
            print_error(message)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            print_error("interrupted; the stage in progress is left incomplete and will be redone")
            raise typer.Exit(130) from None


app = typer.Typer(
    name="gwas-prs",
    cls=GwasPrsGroup,
    help=(
        "Genotypes to disease-risk models on Hail: ingest VCFs, QC, ancestry PCA, GWAS, "
        "polygenic scores and an XGBoost classifier. Start with 'gwas-prs demo'."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        print(f"gwas-prs {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    verbose: VerboseOption = False,
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Genotypes to disease-risk models on Hail."""
    configure_logging(verbose)


app.command("ingest", no_args_is_help=True)(ingest_command.ingest)
app.command("qc", no_args_is_help=True)(qc_command.qc)
app.command("simulate-phenotype", no_args_is_help=True)(gwas_command.simulate_phenotype)
app.command("gwas", no_args_is_help=True)(gwas_command.gwas)
app.command("prs", no_args_is_help=True)(gwas_command.prs)
app.command("train", no_args_is_help=True)(train_command.train)
app.command("predict", no_args_is_help=True)(train_command.predict)
app.command("demo")(demo_command.demo)
app.command("stage", no_args_is_help=True)(stage_command.stage)
app.command("run", no_args_is_help=True)(run_command.run)
app.command("status", no_args_is_help=True)(run_command.status)
app.command("query", no_args_is_help=True)(query_command.query)
app.command("export", no_args_is_help=True)(export_command.export)
app.command("simulate-cohort")(simulate_cohort_command.simulate_cohort)
app.add_typer(dataproc_command.app, name="dataproc")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
