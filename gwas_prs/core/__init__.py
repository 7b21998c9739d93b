"""Storage (local and gs://), the run folder's layout and manifest, processes, errors, stage options."""
