"""Atomic outputs: write to a temporary sibling, rename into place only on success.

An interrupted or failed run never leaves a file (or folder) at the final path that
looks finished, so Snakemake and users can trust whatever exists.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_dir"]


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; move it to ``final`` when the block succeeds.

    The temporary name keeps the suffix so format-sniffing writers (GDAL, xarray) work.
    On any exception the temporary file (or folder, e.g. a Zarr store) is removed.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    os.unlink(tmp)  # writers create it themselves; some refuse to overwrite
    tmp = Path(tmp)
    try:
        yield tmp
        if final.is_dir():  # a previous Zarr store: os.replace cannot overwrite a folder
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``final``; it replaces ``final`` on success."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            _remove(final)
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
