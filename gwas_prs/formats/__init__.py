"""File formats: VCF checks and BGZF, sample metadata, phenotypes, GWAS-SSF, PGS Catalog, the silver PLINK .bed."""
