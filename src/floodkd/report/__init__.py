"""The region report: one standalone HTML page with the maps, the metrics, the reliability
diagram, the training curves, the inputs used, return levels and the plan (when present) and
the run's benchmark files, for people who never run Snakemake. ``floodkd report``."""
