"""The cluster side of gwas-prs, shipped as ``gwas_prs.dataproc``.

- :mod:`~gwas_prs.dataproc.profiles` – cluster profiles (``profiles/*.yaml``).
- :mod:`~gwas_prs.dataproc.cluster` – ``hailctl``/``gcloud`` command lines.
- :mod:`~gwas_prs.dataproc.wheel` – build and stage the wheel and its init action
  (``init_actions/install-gwas-prs.sh``).
- :mod:`~gwas_prs.dataproc.jobs` – submit stage commands, Hail version check.
- ``job_entry.py`` – the script ``hailctl dataproc submit`` runs on the cluster.

Nothing here imports Typer except the job entry point, when it runs.
"""
