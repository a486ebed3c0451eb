"""``floodkd train-teacher --config C --out results/teacher``."""

from __future__ import annotations

import argparse
import json
import logging

from floodkd.config import load_config
from floodkd.distill.teacher_training import train_teacher
from floodkd.outputs import check_outputs

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--out", required=True,
                        help="output folder for teacher.safetensors, teacher.json and the log")


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    check_outputs(config, args.config, folders=[args.out], cubes=True)
    metrics = train_teacher(config, args.out)
    log.info("teacher written to %s: %s", args.out, json.dumps(metrics["val"]))
