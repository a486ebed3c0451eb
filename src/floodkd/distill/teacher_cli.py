"""``floodkd train-teacher --config C --out results/teacher [--holdout H ...]``, H being
the target regions' ``results/<region>/holdout.json``."""

from __future__ import annotations

import argparse
import json
import logging

from floodkd.config import load_config
from floodkd.distill.holdout_cli import read_train_before
from floodkd.distill.teacher_training import train_teacher
from floodkd.outputs import check_outputs

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--out", required=True,
                        help="output folder for teacher.safetensors, teacher.json and the log")
    parser.add_argument("--holdout", nargs="*", default=[],
                        help="the target regions' holdout.json (`floodkd holdout`): the "
                        "teacher trains only on passes before the earliest held-out start")


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    check_outputs(config, args.config, folders=[args.out], cubes=True, inputs=args.holdout)
    metrics = train_teacher(config, args.out, read_train_before(args.holdout))
    log.info("teacher written to %s: %s", args.out, json.dumps(metrics["val"]))
