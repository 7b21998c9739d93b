"""The ``gwas-prs`` command-line interface (Typer), shipped as ``gwas_prs.cli``.

Only this package imports Typer. Commands parse options into the library's
frozen config dataclasses, call the library, print a summary and map
:class:`gwas_prs.core.errors.GwasPrsError` to exit codes. Hail is imported inside
commands, so ``gwas-prs --help`` never starts a JVM.
"""
