"""``floodkd evaluate --config C --region R --teacher-passes results/R/teacher_passes.tif
--student S --reference-water results/R/reference_water.tif --out results/R/eval``."""

from __future__ import annotations

import argparse
import logging

from floodkd.config import load_config
from floodkd.evaluate.evaluate import evaluate_region
from floodkd.outputs import check_outputs

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--region", required=True, help="region name in the config")
    parser.add_argument("--teacher-passes", required=True,
                        help="results/<region>/teacher_passes.tif (floodkd teacher-passes): "
                        "the teacher's map of each radar pass scored")
    parser.add_argument("--student", required=True, help="the region's student folder")
    parser.add_argument("--reference-water",
                        help="results/<region>/reference_water.tif (floodkd reference-water), "
                        "for flood_iou: water outside it; without it flood_iou is null")
    parser.add_argument("--out", required=True,
                        help="output folder for metrics.json, metrics.md, metrics_by_subset.json")


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    reference = [args.reference_water] if args.reference_water else []
    check_outputs(config, args.config, folders=[args.out],
                  inputs=[args.teacher_passes, args.student, *reference], cubes=True)
    metrics = evaluate_region(config, args.region, args.teacher_passes, args.student, args.out,
                              args.reference_water)
    log.info("evaluation written to %s: distilled student IoU %s, flood IoU %s", args.out,
             metrics["student_distilled"]["iou"], metrics["student_distilled"]["flood_iou"])
