"""The CLI's thread count reaches a stage's libraries before they load."""

from __future__ import annotations

import importlib
import os

import pytest

from floodkd import cli

VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def test_threads_are_set_before_the_stage_module_loads(monkeypatch):
    """torch and BLAS read their thread variables once, when they load: a stage run by hand
    must see them as a Snakemake job does, or its training takes another numerical path."""
    threads = str(os.cpu_count() or 1)  # the default: the test leaves torch's pool as it is
    for name in VARIABLES:
        monkeypatch.setenv(name, "7")
    seen: dict[str, dict[str, str | None]] = {}
    real_import = importlib.import_module

    def spying_import(name: str, *args):
        seen[name] = {variable: os.environ.get(variable) for variable in VARIABLES}
        return real_import(name, *args)

    monkeypatch.setattr(cli.importlib, "import_module", spying_import)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["holdout", "--threads", threads, "--help"])
    assert exit_info.value.code == 0
    assert seen["floodkd.distill.holdout_cli"] == dict.fromkeys(VARIABLES, threads)
