"""Bundled data: the 1000 Genomes phase 3 demo cohort (see 1kg/README.md)."""
