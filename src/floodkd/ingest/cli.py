"""``floodkd ingest <modality>``: read, validate and normalise one modality of a region."""

from __future__ import annotations

import argparse
import importlib

from floodkd.atomic import atomic_dir
from floodkd.config import load_config, region_config
from floodkd.errors import InputError
from floodkd.ingest import MODALITIES
from floodkd.outputs import check_outputs

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("modality", choices=MODALITIES, help="which input to ingest")
    parser.add_argument("--config", required=True, help="the workflow config YAML")
    parser.add_argument("--region", required=True, help="a region name under regions:")
    parser.add_argument("--out", required=True, help="output folder (replaced atomically)")


def run(args: argparse.Namespace) -> None:
    """Ingest ``args.modality`` of ``args.region`` into ``args.out``; nothing is left on error."""
    config = load_config(args.config)
    region = region_config(config, args.region)
    if args.modality not in region["inputs"]:
        raise InputError(
            args.config,
            f"region '{args.region}' has no inputs.{args.modality}",
            f"add regions.{args.region}.inputs.{args.modality} with a glob for its files",
        )
    check_outputs(config, args.config, replaced=[args.out])
    module = importlib.import_module(f"floodkd.ingest.{args.modality}")
    with atomic_dir(args.out) as tmp:
        module.ingest(region, tmp)
