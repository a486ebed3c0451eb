"""Evaluation: metrics against truth and baselines, plots and the report."""
