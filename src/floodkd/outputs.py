"""Which paths a stage may write: checked by every CLI before any work.

An output is refused when it is the working folder or one of its parents; when it is an
input (a region's input folders and files, the config, what the stage reads) or holds one;
when it lies inside another stage's output that this stage reads (a cube, a student); when
it is or holds a results folder (the results root, a region's folder, its ingest folder);
or when something floodkd did not write already sits there (see ``floodkd.atomic``).
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from floodkd.atomic import refuse_unowned
from floodkd.errors import InputError

__all__ = ["check_outputs", "glob_root"]

_FIX = "pass an output path of its own, e.g. under results/<region>/"


def check_outputs(
    config: dict[str, Any], config_path: str | Path | None, *,
    replaced: Iterable[str | Path] = (), folders: Iterable[str | Path] = (),
    inputs: Iterable[str | Path] = (), cubes: bool = False,
) -> None:
    """Raise InputError for the first output a stage must not write (see module docstring).

    ``replaced`` are paths the stage replaces as a whole (a file, a Zarr store, an ingest
    folder); ``folders`` are folders it writes its files into (maps, a student ensemble),
    where only files of floodkd's own are ever replaced; ``inputs`` are what it reads beyond
    the config's region inputs; with ``cubes`` every region's cube and tile index too.
    """
    replaced, folders = [Path(p) for p in replaced], [Path(p) for p in folders]
    outputs = replaced + folders
    cwd = Path.cwd().resolve()
    sources = [Path(p).resolve() for p in _config_inputs(config, config_path)]
    products = [Path(p).resolve() for p in [*inputs, *(_cubes(config) if cubes else [])]]
    holders = [p.resolve() for p in _results_folders(config)]
    for out in outputs:
        target = out.resolve()
        if cwd.is_relative_to(target):
            raise InputError(out, f"is the working folder {cwd} or a parent of it; writing "
                             "there would replace it", _FIX)
        for path in sources + products:
            if path.is_relative_to(target):
                what = "an input of this stage" if path == target else f"a parent of input {path}"
                raise InputError(out, f"is {what}; writing there would replace it", _FIX)
        for path in products:  # floodkd's own outputs read by this stage: never written into
            if target.is_relative_to(path):
                raise InputError(out, f"lies inside input {path}; the stage would write "
                                 "into what it reads", _FIX)
        for path in holders:
            if path.is_relative_to(target):
                raise InputError(out, f"is or holds the results folder {path}, which holds "
                                 "other stages' outputs", _FIX)
    for out in replaced:
        refuse_unowned(out)
    for out in folders:
        if out.exists() and not out.is_dir():
            raise InputError(out, "exists and is not a folder", "pass a folder path")
    for out in outputs:
        for other in outputs:
            if other is not out and other.resolve().is_relative_to(out.resolve()):
                raise InputError(out, f"holds the other output {other}",
                                 "give each output a path of its own")


def _config_inputs(config: dict[str, Any], config_path: str | Path | None) -> list[Path]:
    """The config file and every region's input folders and files."""
    paths = [Path(config_path)] if config_path is not None else []
    for region in config.get("regions", {}).values():
        paths += [glob_root(value) for value in _strings(region)]
    return paths


def _cubes(config: dict[str, Any]) -> list[Path]:
    results = Path(config.get("results_dir", "results"))
    return [results / name / part for name in config.get("regions", {})
            for part in ("cube.zarr", "tiles.parquet")]


def _results_folders(config: dict[str, Any]) -> list[Path]:
    if "regions" not in config:
        return []
    results = Path(config.get("results_dir", "results"))
    return [results] + [results / name / part for name in config["regions"]
                        for part in ("", "ingest")]


def glob_root(pattern: str) -> Path:
    """The folder a glob searches (its leading part without wildcards), or the path itself."""
    parts = Path(pattern).parts
    for index, part in enumerate(parts):
        if glob.has_magic(part):
            return Path(*parts[:index]) if index else Path(".")
    return Path(pattern)


def _strings(value: Any) -> Iterable[str]:
    """The path-like strings in a region block (globs, files); numbers and names skipped."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str) and ("/" in value or glob.has_magic(value)):
        yield value
