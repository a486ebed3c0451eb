"""Atomic outputs: write to a temporary sibling, rename into place only on success.

An interrupted or failed run never leaves a file (or folder) at the final path that
looks finished, so Snakemake and users can trust whatever exists.

Nothing a user owns is ever replaced: each output floodkd writes gets an entry in a ledger
beside it (``<parent>/.floodkd-outputs/<name>.json``: its inode, size and time and, for a
folder, every file in it). An existing final path is replaced only when the ledger says
floodkd wrote it and a folder holds no file that floodkd did not put there; anything else
is refused.

Temporary names carry a tag (``.<stem>.floodkd-tmp-<host>-<pid>-<random><suffix>``) so the
next run can tell its own leftovers from a kill (-9) apart and remove them, and never touches
a name it did not make.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from floodkd import __version__
from floodkd.errors import InputError

__all__ = ["atomic_path", "atomic_dir", "scratch_dir", "refuse_unowned", "remove_outputs",
           "remove_stale_temps", "LEDGER_DIR"]

LEDGER_DIR = ".floodkd-outputs"
_TAG = "floodkd"
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname()) or "host"
_SHOWN_EXTRAS = 3


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; move it to ``final`` when the block succeeds.

    The temporary name keeps the suffix so format-sniffing writers (GDAL, xarray) work.
    The writer may create a file or a folder (e.g. a Zarr store) there. On any exception
    the temporary path is removed. An existing ``final`` that floodkd did not write is
    refused before anything is written.
    """
    final = Path(final)
    created = _missing_parents(final)
    final = _prepare(final)
    tmp = _temp_name(final, "tmp")
    try:
        yield tmp
        _replace(tmp, final)
    except BaseException:
        _remove(tmp)
        _remove_empty(created)
        raise


@contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``final``; it replaces ``final`` on success."""
    with atomic_path(final) as tmp:
        tmp.mkdir()
        yield tmp


@contextmanager
def scratch_dir(final: str | Path) -> Iterator[Path]:
    """A scratch folder beside ``final`` (same disk, tagged name), removed when the block ends.

    An existing ``final`` that floodkd did not write is refused before any work is done.
    """
    final = Path(final)
    created = _missing_parents(final)
    final = _prepare(final)
    scratch = _temp_name(final, "scratch")
    scratch.mkdir()
    try:
        yield scratch
    except BaseException:
        _remove(scratch)
        _remove_empty(created)
        raise
    _remove(scratch)


def refuse_unowned(final: str | Path) -> None:
    """Raise InputError unless ``final`` is absent, an empty folder (Snakemake may make one)
    or an intact output that floodkd wrote."""
    final = Path(final)
    if not os.path.lexists(final) or _empty_folder(final):  # nothing there to lose
        return
    entry = _ledger_entry(final)
    if final.is_symlink() or entry is None or entry.get("identity") != _identity(final):
        raise InputError(final, "exists and was not written by floodkd, so it is not replaced",
                         "choose an output path that does not exist yet, or move this one "
                         "away yourself if it is an old floodkd output")
    if final.is_dir():
        extra = sorted(_files(final) - set(entry.get("files", [])))
        if extra:
            shown = ", ".join(extra[:_SHOWN_EXTRAS]) + (", ..." if len(extra) > _SHOWN_EXTRAS
                                                        else "")
            raise InputError(final, f"is a floodkd output but now also holds {len(extra)} "
                             f"file(s) floodkd did not write ({shown}); replacing it would "
                             "delete them", "move those files out, or choose another output "
                             "path")


def remove_outputs(folder: str | Path) -> None:
    """Remove the outputs floodkd wrote in ``folder`` (and the folder once it is empty);
    anything else in it stays."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.name != LEDGER_DIR:
            try:
                refuse_unowned(path)
            except InputError:
                continue
            _remove(path)
            _ledger_path(path).unlink(missing_ok=True)
    for path in (folder / LEDGER_DIR, folder):
        try:
            path.rmdir()
        except OSError:  # not empty: something that is not ours is kept
            pass


def remove_stale_temps(final: str | Path) -> list[Path]:
    """Remove the temporaries of ``final`` left by a killed floodkd run on this host.

    Only names floodkd makes for this very ``final`` are considered, and only those whose
    process no longer runs. Returns what was removed.
    """
    final = Path(final)
    pattern = re.compile(rf"^\.{re.escape(final.stem)}\.{_TAG}-(tmp|old|scratch)-{_HOST}-"
                         r"(\d+)-[0-9a-f]{8}(\..*)?$")
    removed = []
    if not final.parent.is_dir():
        return removed
    for path in final.parent.iterdir():
        match = pattern.match(path.name)
        if match and not _process_alive(int(match.group(2))):
            _remove(path)
            removed.append(path)
    return removed


def _prepare(final: str | Path) -> Path:
    final = Path(final)
    refuse_unowned(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final)
    return final


def _missing_parents(final: Path) -> list[Path]:
    """The folders above ``final`` that do not exist yet, deepest first."""
    return [parent for parent in final.parents if not parent.exists()]


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed write created, deepest first, as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _temp_name(final: Path, kind: str) -> Path:
    name = f".{final.stem}.{_TAG}-{kind}-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
    return final.parent / (name + final.suffix)


def _replace(tmp: Path, final: Path) -> None:
    """Move ``tmp`` to ``final``; a folder of ours there is first moved aside, then removed."""
    refuse_unowned(final)  # again: the user may have changed it while the stage ran
    entry: dict = {"written_by": f"floodkd {__version__}"}
    if tmp.is_dir():
        entry["files"] = sorted(_files(tmp))
    if final.is_dir():  # os.replace cannot overwrite a folder: move it aside first
        old = _temp_name(final, "old")
        os.replace(final, old)
        os.replace(tmp, final)
        _remove(old)
    else:
        os.replace(tmp, final)
    entry["identity"] = _identity(final)
    _write_ledger_entry(final, entry)


def _identity(path: Path) -> list[int]:
    """What tells our output from another put at its name: the inode, and for a file also
    its size and modification time (a freed inode is often reused at once)."""
    stat = path.stat()
    return [stat.st_ino] if path.is_dir() else [stat.st_ino, stat.st_size, stat.st_mtime_ns]


def _ledger_path(final: Path) -> Path:
    return final.parent / LEDGER_DIR / f"{final.name}.json"


def _ledger_entry(final: Path) -> dict | None:
    try:
        return json.loads(_ledger_path(final).read_text())
    except (OSError, ValueError):
        return None


def _write_ledger_entry(final: Path, entry: dict) -> None:
    path = _ledger_path(final)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}")
    tmp.write_text(json.dumps(entry))
    os.replace(tmp, path)


def _empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _files(folder: Path) -> set[str]:
    return {str(Path(root, name).relative_to(folder))
            for root, _, names in os.walk(folder) for name in names}


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink()
