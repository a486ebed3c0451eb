"""A cube's Zarr store is whole or refused: every chunk written, every chunk checksummed.

Zarr reads an absent chunk as its fill value, so a lost chunk file (a partial copy, a
deleted file) would become NaN and a map would quietly lose an input; and a chunk whose
bytes changed may decode into wrong numbers or fail deep inside a codec with no file
named. So ``align`` writes every chunk, even an all-missing one, behind a CRC32 checksum
(``CHUNK_ENCODING``); readers check at open that no chunk is absent (a listing, no reads,
``check_chunks``), and a read that fails in Zarr is explained by finding the bad chunk
(``explaining_read_errors``, which only reads the store after a failure).
"""

from __future__ import annotations

import itertools
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zarr
from numcodecs import CRC32

from floodkd.errors import InputError

__all__ = ["CHUNK_ENCODING", "check_chunks", "explaining_read_errors", "find_bad_chunk"]

# zarr encoding of every cube variable; CRC32 is a standard numcodecs filter any reader has
CHUNK_ENCODING: dict[str, Any] = {"write_empty_chunks": True, "filters": [CRC32()]}
FIX = "rerun `floodkd align` for this region, which rewrites the whole cube"
_watched: list[set[Path]] = []  # per explaining_read_errors block: the stores checked in it


def check_chunks(path: str | Path, variables: Iterable[str]) -> None:
    """Raise InputError naming the store and the variable if a chunk of ``variables`` is
    absent from the Zarr store at ``path``; inside ``explaining_read_errors``, the store is
    where a failed read is looked for."""
    path = Path(path)
    group = zarr.open_group(path, mode="r")
    for name in variables:
        array = group[name]
        if not isinstance(array, zarr.Array) or array.nchunks_initialized == array.nchunks:
            continue
        keys = [array.metadata.encode_chunk_key(coords)
                for coords in itertools.product(*map(range, array.cdata_shape))]
        absent = [key for key in keys if not (path / name / key).exists()] or ["?"]
        raise InputError(path, f"variable '{name}' lacks {len(keys) - array.nchunks_initialized}"
                         f" of its {len(keys)} chunks (e.g. {name}/{absent[0]}), which would "
                         "read as missing values", FIX)
    if _watched:
        _watched[-1].add(path)


def find_bad_chunk(path: str | Path) -> tuple[str, str, str] | None:
    """(variable, chunk key, error) of the first chunk of the store that does not decode."""
    group = zarr.open_group(Path(path), mode="r")
    for name, array in sorted(group.arrays()):
        for coords in itertools.product(*map(range, array.cdata_shape)):
            try:
                array.blocks[coords]
            except Exception as error:  # whatever the codec raises: the chunk is unreadable
                return name, array.metadata.encode_chunk_key(coords), f"{error}"
    return None


@contextmanager
def explaining_read_errors() -> Iterator[None]:
    """Turn an error raised inside Zarr while reading a checked store into an InputError
    naming the store, the variable and the chunk; other errors pass unchanged."""
    _watched.append(set())
    try:
        yield
    except InputError:
        raise
    except Exception as error:
        if not _raised_in_zarr(error):
            raise
        for path in sorted(_watched[-1]):
            bad = find_bad_chunk(path)
            if bad is not None:
                name, key, reason = bad
                raise InputError(path, f"chunk {name}/{key} of variable '{name}' is corrupt "
                                 f"({reason})", FIX) from error
        raise
    finally:
        _watched.pop()


def _raised_in_zarr(error: BaseException) -> bool:
    # the text too: a DataLoader worker's error arrives with its traceback as text
    text = "".join(traceback.format_exception(error))
    return "/zarr/" in text or "/numcodecs/" in text
