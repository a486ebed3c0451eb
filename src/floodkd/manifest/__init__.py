"""Content manifests of folder outputs, so a folder rewritten identically reruns nothing.

Snakemake decides reruns by modification time, but skips a consumer whose input file is
newer yet has the checksum recorded when the consumer last ran (for files up to
``--max-checksum-file-size``, 1 MB by default; never for folders). An ingest folder or a
Zarr cube is a folder, so each comes with a small manifest file, written after the folder:
its consumers take the manifest as their input, and an identical rewrite of the folder
gives an identical manifest. The manifest holds the sha256 of every file (by relative
path) folded into one digest per top-level entry (a Zarr variable, an ingest table) and
one for the whole folder, so it stays a few kB for any size of store.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from floodkd.atomic import LEDGER_DIR, atomic_path
from floodkd.errors import InputError

__all__ = ["folder_manifest", "write_manifest"]

# bookkeeping, not content: Snakemake's mark in each folder output (it holds the write time)
_NOT_CONTENT = {".snakemake_timestamp"}


def _file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _fold(lines: list[str]) -> str:
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


def folder_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of ``folder``: file count, bytes, one sha256 per top-level entry and one
    for the folder. Only content and relative paths count, not times or the folder's name;
    floodkd's own output ledgers (bookkeeping of inodes and times) are left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "is not a folder, so it has no manifest",
                         "run the stage that writes it first")
    entries: dict[str, list[str]] = {}
    files = size = 0
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != LEDGER_DIR)
        for name in sorted(set(names) - _NOT_CONTENT):
            path = Path(root) / name
            relative = path.relative_to(folder).as_posix()
            entries.setdefault(relative.split("/", 1)[0], []).append(
                f"{relative}\0{_file_digest(path)}\n")
            files += 1
            size += path.stat().st_size
    digests = {entry: _fold(lines) for entry, lines in sorted(entries.items())}
    return {"files": files, "bytes": size,
            "sha256": _fold([f"{k}\0{v}\n" for k, v in digests.items()]), "entries": digests}


def write_manifest(folder: str | Path, path: str | Path) -> dict[str, Any]:
    """Write the manifest of ``folder`` to ``path`` (JSON, atomically); return it."""
    manifest = folder_manifest(folder)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest
