"""``floodkd manifest FOLDER --out FILE``: the content manifest of a folder output (see
``floodkd.manifest``); the workflow runs it right after the stage that wrote the folder."""

from __future__ import annotations

import argparse
import logging

from floodkd.manifest import write_manifest

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="the folder output (an ingest folder, a Zarr cube)")
    parser.add_argument("--out", required=True, help="the manifest file to write (JSON)")


def run(args: argparse.Namespace) -> None:
    manifest = write_manifest(args.folder, args.out)
    log.info("manifest of %s: %d files, sha256 %s", args.folder, manifest["files"],
             manifest["sha256"][:16])
