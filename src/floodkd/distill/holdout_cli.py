"""``floodkd holdout --config C --region R --out results/R/holdout.json``: a target region's
held-out period, which no training phase may see, the teacher's included.

A file of its own, holding only when the period starts, so that the teacher depends on
that and not on the target's whole cube: new target data moves the start only when it adds
radar passes, and the teacher is retrained only then. (The held-out times themselves are in
the student's ``student.json``; listed here, a new optical date in the period would retrain
the teacher.)
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from floodkd.atomic import atomic_path
from floodkd.config import load_config, region_config
from floodkd.distill.data import holdout_mask, open_region, time_window_days
from floodkd.distill.loop import iso_times
from floodkd.distill.samples import held_out_start
from floodkd.distill.settings import training_settings
from floodkd.errors import InputError
from floodkd.outputs import check_outputs

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--region", required=True, help="target region name in the config")
    parser.add_argument("--out", required=True, help="output JSON (results/<region>/holdout.json)")


def holdout_document(config: dict[str, Any], region_name: str) -> dict[str, Any]:
    """``train_before`` of the region: the first of its held-out times (``holdout_mask``, as
    distillation cuts them) less the radar window, before which every training pass must
    lie (None when nothing is held out)."""
    region_config(config, region_name)
    settings = training_settings(config)
    region = open_region(config.get("results_dir", "results"), region_name, ["radar_present"])
    times = region.cube["time"].values
    radar = region.cube["radar_present"].values.astype(bool)
    window_days = time_window_days(config)
    held = holdout_mask(times, radar, settings.holdout_fraction, window_days)
    start = held_out_start(times, held, window_days)
    log.info("%s: %d held-out times; training passes must precede %s", region_name,
             int(held.sum()), start)
    return {"region": region_name,
            "train_before": None if start is None else iso_times(np.array([start]))[0]}


def read_train_before(paths: list[str]) -> np.datetime64 | None:
    """The earliest ``train_before`` of the given holdout files (None if none has one)."""
    starts = []
    for path in paths:
        try:
            value = json.loads(Path(path).read_text())["train_before"]
            if value is not None:
                starts.append(np.datetime64(value, "s"))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(path, f"not a floodkd holdout file ({error})",
                             "rerun `floodkd holdout` for that region") from error
    return min(starts) if starts else None


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    check_outputs(config, args.config, replaced=[args.out], cubes=True)
    document = holdout_document(config, args.region)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n")
