"""Read what the workflow wrote for a region into plain data for the report (the I/O edge).

Every result is optional except what makes the page worth having (see ``cli``): a region
mapped by the radar teacher has no evaluation, and the risk and plan stages may not have
run. Paths follow the workflow's layout under ``results_dir``.
"""

from __future__ import annotations

import csv
import glob
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rasterio

from floodkd.errors import InputError

__all__ = ["RegionResults", "collect_region"]

# the per-epoch CSVs of the training loop: <phase>_log.csv (teacher, source-0, distill-1, ...)
_HISTORY = re.compile(r"^(?P<phase>.+)_log\.csv$")


@dataclass
class RegionResults:
    """Everything the page shows for one region; None or empty where a stage has not run."""

    region: str
    synthetic: bool
    metrics: dict[str, Any] | None = None
    metrics_details: dict[str, Any] | None = None
    quicklooks: list[Path] = field(default_factory=list)
    map_tags: dict[str, dict[str, str]] = field(default_factory=dict)  # map file -> tags
    histories: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # modality -> glob, files
    return_levels: list[dict[str, str]] | None = None
    return_levels_png: Path | None = None
    plan: dict[str, Any] | None = None
    benchmarks: dict[str, dict[str, str]] = field(default_factory=dict)  # job -> first row


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot be read as JSON ({error})",
                         "rerun the stage that writes it") from error


def _read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def _histories(folder: Path, prefix: str = "") -> dict[str, list[dict[str, float]]]:
    histories = {}
    for path in sorted(folder.glob("*_log.csv")):
        rows = _read_csv(path)
        name = _HISTORY.match(path.name)["phase"]
        histories[prefix + name] = [{k: float(v) for k, v in row.items() if v not in ("", None)}
                                    for row in rows]
    return histories


def _benchmarks(folder: Path, region: str) -> dict[str, dict[str, str]]:
    """The benchmark files of the region's jobs and of the jobs every region shares."""
    found = {}
    for path in sorted(folder.glob("*.tsv")) + sorted((folder / region).glob("*.tsv")):
        rows = _read_csv(path, delimiter="\t")
        if rows:
            found[path.relative_to(folder).with_suffix("").as_posix()] = rows[0]
    return found


def collect_region(config: dict[str, Any], region: str) -> RegionResults:
    """Read the results of ``region`` (a name in ``config``) from the results folder."""
    if region not in config["regions"]:
        raise InputError("config", f"region '{region}' is not in the config",
                         f"pick one of {sorted(config['regions'])}")
    block = config["regions"][region]
    results = Path(config["results_dir"])
    here = results / region
    found = RegionResults(region=region, synthetic=bool(block.get("synthetic", False)))
    if (here / "eval" / "metrics.json").is_file():
        found.metrics = _read_json(here / "eval" / "metrics.json")
    if (here / "eval" / "metrics_by_subset.json").is_file():
        found.metrics_details = _read_json(here / "eval" / "metrics_by_subset.json")
    maps = here / "maps"
    found.quicklooks = sorted(maps.glob("*.png"))
    for path in sorted(maps.glob("flood_probability_*.tif")):
        with rasterio.open(path) as src:
            found.map_tags[path.name] = src.tags()
    found.histories = {**_histories(results / "teacher"), **_histories(here / "student")}
    for modality, spec in block["inputs"].items():
        files = sorted(glob.glob(spec["glob"]))
        found.inputs[modality] = {"glob": spec["glob"], "files": files}
    risk = here / "risk"
    if (risk / "return_levels.csv").is_file():
        found.return_levels = _read_csv(risk / "return_levels.csv")
    if (risk / "return_levels.png").is_file():
        found.return_levels_png = risk / "return_levels.png"
    if (here / "plan.json").is_file():
        found.plan = _read_json(here / "plan.json")
    found.benchmarks = _benchmarks(results / "benchmarks", region)
    return found
