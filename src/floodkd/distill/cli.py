"""``floodkd distill --config C --region R --teacher results/teacher --out results/R/student``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from floodkd.config import load_config
from floodkd.distill.student_training import distill_region
from floodkd.outputs import check_outputs

log = logging.getLogger(__name__)


def add_region_teacher_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--region`` and ``--teacher``, as the commands that run the teacher
    over a region take them."""
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--region", required=True, help="region name in the config")
    parser.add_argument("--teacher", required=True,
                        help="teacher folder (holding teacher.safetensors) or the file itself")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_region_teacher_arguments(parser)
    parser.add_argument("--out", required=True, help="output folder for the student ensemble")


def teacher_weights(path: str | Path) -> Path:
    """``results/teacher`` or ``results/teacher/teacher.safetensors`` -> the weights file."""
    path = Path(path)
    return path / "teacher.safetensors" if path.is_dir() else path


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    teacher = teacher_weights(args.teacher)
    check_outputs(config, args.config, folders=[args.out], inputs=[teacher], cubes=True)
    document = distill_region(config, args.region, teacher, args.out)
    log.info("student ensemble written to %s (temperature %.3f, water bias %.3f, %d held-out "
             "times)", args.out, document["temperature"], document["water_bias"],
             len(document["holdout_times"]))
