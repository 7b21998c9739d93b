"""gwas-prs: genotypes to disease-risk models on Hail.

The library never imports Typer and never starts a JVM at import time; Hail is
imported inside the functions that need it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gwas-prs")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
