"""The ``floodkd`` command line: one subcommand per stage, each a thin wrapper.

Each stage package has a ``cli`` module with ``add_arguments(parser)`` and ``run(args)``.
They are imported only when their subcommand runs, so ``floodkd demo`` does not pay for torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

from floodkd import __version__
from floodkd.runtime import LOG_FORMAT, run_logged, use_threads

# subcommand -> (module, one-line help)
COMMANDS = {
    "demo": ("floodkd.demo.cli", "write the synthetic demo coast in real file formats"),
    "ingest": ("floodkd.ingest.cli", "read, validate and normalise one modality of a region"),
    "align": ("floodkd.align.cli", "regrid a region's modalities into one datacube and tiles"),
    "holdout": ("floodkd.distill.holdout_cli", "a target region's held-out period, which no "
                "training phase may see"),
    "train-teacher": ("floodkd.distill.teacher_cli", "train the radar teacher on source regions"),
    "distill": ("floodkd.distill.cli", "distil the teacher into the student ensemble for a region"),
    "reference-water": ("floodkd.reference.cli", "map a region's reference (permanent) water, "
                        "kept apart from flood"),
    "waterline": ("floodkd.reference.waterline_cli", "the water level at which a region's "
                  "radar archive sees each pixel flood, a static layer for the student"),
    "teacher-passes": ("floodkd.evaluate.teacher_passes_cli", "the teacher's map of each "
                       "radar pass a region's evaluation scores"),
    "evaluate": ("floodkd.evaluate.cli", "score models and baselines for a region"),
    "predict": ("floodkd.predict.cli", "write flood probability and uncertainty maps"),
    "manifest": ("floodkd.manifest.cli", "write the content manifest of a folder output"),
    "report": ("floodkd.report.cli", "write a region's results as one standalone HTML page"),
    "risk": ("floodkd.risk.cli", "return levels of the gauges and sea-level change per scenario"),
    "exposure": ("floodkd.risk.exposure_cli", "flood probability and annual exceedance of "
                 "each asset per scenario"),
    "plan": ("floodkd.risk.plan_cli", "actions per zone from the latest conditions"),
    "catalogue": ("floodkd.catalogue.cli", "a region's QGIS project and the STAC Collection of "
                  "its maps"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="floodkd", description="Coastal flood-risk maps by cross-modal knowledge distillation."
    )
    parser.add_argument("--version", action="version", version=f"floodkd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM (Snakemake cancelling a job, a cluster's time limit) unwinds like an error, so
    every atomic output removes its temporaries; without this Python dies on the spot."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    top, rest = _parser().parse_known_args(argv)
    module_name, help_text = COMMANDS[top.command]
    threads = argparse.ArgumentParser(prog=f"floodkd {top.command}", add_help=False)
    threads.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                         help="threads for torch, Dask, BLAS and GDAL (default: all cores)")
    # before the stage's module loads torch: its thread pools read the variables once, as
    # they start, and a stage run by hand must take the numerical path a Snakemake job does
    use_threads(threads.parse_known_args(rest)[0].threads)
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"floodkd {top.command}", description=help_text,
                                     parents=[threads])
    module.add_arguments(parser)
    parser.add_argument("--log", help="write all output to this file; the console gets a "
                        "start and an end line (and the error, if any)")
    args = parser.parse_args(rest)
    logging.basicConfig(level=logging.DEBUG if top.verbose else logging.INFO, format=LOG_FORMAT)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return run_logged(_describe(top.command, args), args.log, lambda: _run(module, args))


def _run(module: object, args: argparse.Namespace) -> None:
    from floodkd.cube_store import explaining_read_errors  # zarr: only when a stage runs

    with explaining_read_errors():  # a corrupt cube chunk: an error naming store and variable
        module.run(args)  # type: ignore[attr-defined]


def _describe(command: str, args: argparse.Namespace) -> str:
    """``floodkd predict demo-target observed``: the stage and what it works on."""
    words = [getattr(args, key, None) for key in ("modality", "step", "region", "scenario")]
    return " ".join(["floodkd", command, *(str(word) for word in words if word)])


if __name__ == "__main__":
    sys.exit(main())
