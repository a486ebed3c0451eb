"""``floodkd demo``: write the synthetic demo coast."""

from __future__ import annotations

import argparse
import logging
import time

from floodkd.demo.generate import generate_demo

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``floodkd demo``."""
    parser.add_argument("--out", default="data/demo", help="output folder (replaced atomically)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--size", type=int, default=192,
                        help="radar grid side in 10 m pixels per region (default 192)")


def run(args: argparse.Namespace) -> None:
    """Generate the demo coast and log what was written."""
    started = time.perf_counter()
    manifest = generate_demo(args.out, seed=args.seed, size_px=args.size)
    log.info("demo: wrote %d files to %s in %.1f s", len(manifest["files"]) + 1, args.out,
             time.perf_counter() - started)
