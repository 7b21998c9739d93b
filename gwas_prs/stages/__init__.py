"""One runner per stage (bronze ingest, silver qc, gold gwas/prs/features/train, predict, export, pipeline): the only code that writes."""
