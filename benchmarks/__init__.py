"""Benchmarks of gwas-prs against PLINK (``nox -s bench``)."""
