"""``floodkd report --region R [--config C] [--out results/R/report]``: the region page.

Writes ``index.html`` (standalone: every image embedded), and beside it the pieces that
Snakemake's report shows one by one: ``metrics.html``, ``benchmarks.html``,
``reliability.png`` (when the region was evaluated) and ``training_curves.png``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from floodkd.atomic import atomic_path
from floodkd.config import load_config
from floodkd.errors import InputError
from floodkd.outputs import check_outputs
from floodkd.report.collect import collect_region
from floodkd.report.figures import reliability_diagram, training_curves
from floodkd.report.page import render_page, render_section

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="config/config.yaml",
                        help="workflow config YAML (default: config/config.yaml)")
    parser.add_argument("--region", required=True, help="region name in the config")
    parser.add_argument("--out", help="output folder (default: <results_dir>/<region>/report)")


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    out = Path(args.out or Path(config["results_dir"]) / args.region / "report")
    check_outputs(config, args.config, folders=[out], cubes=True)
    results = collect_region(config, args.region)
    if results.metrics is None and not results.quicklooks:
        raise InputError(Path(config["results_dir"]) / args.region,
                         "holds neither maps nor an evaluation: nothing to report",
                         f"run the workflow for {args.region} first (snakemake --cores all)")
    out.mkdir(parents=True, exist_ok=True)
    figures = {}
    reliability = (results.metrics_details or {}).get("reliability")
    title = f"{args.region}" + (" (SYNTHETIC)" if results.synthetic else "")
    if reliability:
        figures["reliability"] = reliability_diagram(reliability, out / "reliability.png",
                                                     f"{title}: distilled student")
    if results.histories:
        figures["training"] = training_curves(results.histories, out / "training_curves.png",
                                              f"{title}: training")
    for section in ("metrics", "benchmarks"):
        _write_text(out / f"{section}.html", render_section(results, section))
    _write_text(out / "index.html", render_page(results, figures))  # last: the main output
    log.info("report for %s written to %s (%s)", args.region, out / "index.html",
             ", ".join(sorted(figures)) or "no figures")
