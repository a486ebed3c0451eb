"""``floodkd train-teacher --config C --out results/teacher``."""

from __future__ import annotations

import argparse
import json
import logging

from floodkd.config import load_config
from floodkd.distill.teacher_training import train_teacher

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--out", required=True,
                        help="output folder for teacher.safetensors, teacher.json and the log")


def run(args: argparse.Namespace) -> None:
    metrics = train_teacher(load_config(args.config), args.out)
    log.info("teacher written to %s: %s", args.out, json.dumps(metrics["val"]))
