"""The adaptive plan: a belief per zone, mapped through the config's rules to actions.

A zone's belief is read over its land pixels (permanent water and sea left out: a creek is
always wet and says nothing about flooding): the mean, max and 90th percentile of P(flood),
the mean std of P(flood), the share of land pixels at or above ``plan.flooded_probability``,
the water level of the latest time (the cube's gauge field over the zone), and that level
minus each return level of the zone's nearest gauge (``water_level_over_rp<T>_m``).

A rule fires in a zone when every condition of its ``when`` holds there; a condition on a
variable the zone has no value for (no gauge reading, no return level) does not hold, and
the plan says which rule could not be evaluated and why. Every fired action carries the
numbers that triggered it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from affine import Affine
from rasterio.features import geometry_mask
from shapely.geometry import box

__all__ = ["COMPARISONS", "RETURN_LEVEL_VARIABLE", "zone_grid", "zone_masks", "zone_belief",
           "over_return_levels", "evaluate_rules", "RuleOutcome"]

COMPARISONS = {
    "above": lambda value, threshold: value > threshold,
    "below": lambda value, threshold: value < threshold,
    "at_least": lambda value, threshold: value >= threshold,
    "at_most": lambda value, threshold: value <= threshold,
}
RETURN_LEVEL_VARIABLE = re.compile(r"^water_level_over_rp(?P<years>[0-9]+(\.[0-9]+)?)_m$")
_PERCENTILE = 90


def zone_grid(transform: Affine, shape: tuple[int, int], crs: Any, size_m: float
              ) -> gpd.GeoDataFrame:
    """Square zones of ``size_m`` from the grid's top-left corner, clipped to the grid;
    named ``r<row>c<col>`` (row 0 at the top)."""
    left, top = transform * (0, 0)
    right, bottom = transform * (shape[1], shape[0])
    n_rows, n_cols = int(np.ceil((top - bottom) / size_m)), int(np.ceil((right - left) / size_m))
    rows = []
    for i in range(n_rows):
        for j in range(n_cols):
            x0, y1 = left + j * size_m, top - i * size_m
            cell = box(x0, max(y1 - size_m, bottom), min(x0 + size_m, right), y1)
            rows.append({"zone_id": f"r{i}c{j}", "name": f"grid zone r{i}c{j}",
                         "geometry": cell})
    return gpd.GeoDataFrame(rows, crs=crs)


def zone_masks(zones: gpd.GeoSeries, transform: Affine, shape: tuple[int, int]
               ) -> list[np.ndarray]:
    """Per zone (in the grid's CRS), the pixels whose centre lies inside it."""
    return [geometry_mask([geometry], out_shape=shape, transform=transform, invert=True)
            for geometry in zones]


def zone_belief(
    mask: np.ndarray, land: np.ndarray, probability: np.ndarray, std: np.ndarray,
    water_level_m: np.ndarray | None, flooded_probability: float,
) -> dict[str, float | int | None]:
    """The belief variables of one zone (None where the zone has no value for one)."""
    where = mask & land & np.isfinite(probability)
    belief: dict[str, float | int | None] = {"land_pixels": int((mask & land).sum()),
                                             "predicted_pixels": int(where.sum())}
    values = probability[where]
    if values.size:
        belief |= {
            "flood_probability_mean": float(values.mean()),
            "flood_probability_max": float(values.max()),
            "flood_probability_p90": float(np.percentile(values, _PERCENTILE)),
            "flood_uncertainty_std_mean": float(np.nanmean(std[where])),
            "flooded_share": float((values >= flooded_probability).mean()),
        }
    else:
        belief |= dict.fromkeys(("flood_probability_mean", "flood_probability_max",
                                 "flood_probability_p90", "flood_uncertainty_std_mean",
                                 "flooded_share"))
    level = None
    if water_level_m is not None:
        in_zone = water_level_m[mask]
        in_zone = in_zone[np.isfinite(in_zone)]
        level = float(in_zone.mean()) if in_zone.size else None
    belief["water_level_m"] = level
    return belief


def over_return_levels(water_level_m: float | None, return_levels: pd.DataFrame
                       ) -> dict[str, float | None]:
    """``water_level_over_rp<T>_m`` for each return period of one station's levels."""
    out: dict[str, float | None] = {}
    for row in return_levels.itertuples():
        name = f"water_level_over_rp{row.return_period_years:g}_m"
        out[name] = None if water_level_m is None else float(water_level_m - row.level_m)
    return out


@dataclass(frozen=True)
class RuleOutcome:
    """What the rules made of one zone's belief."""

    fired: list[dict[str, Any]]  # {rule, actions, triggers: [{variable, value, ...}]}
    not_evaluated: list[dict[str, str]]  # {rule, variable, reason}


def evaluate_rules(belief: dict[str, Any], rules: Iterable[dict[str, Any]]) -> RuleOutcome:
    """Apply the config's rules to a zone's belief (see the module docstring)."""
    fired, not_evaluated = [], []
    for rule in rules:
        triggers, holds = [], True
        for variable, tests in rule["when"].items():
            value = belief.get(variable)
            if value is None:
                holds = False
                not_evaluated.append({"rule": rule["name"], "variable": variable,
                                      "reason": _why_missing(variable, belief)})
                continue
            for comparison, threshold in tests.items():
                if not COMPARISONS[comparison](value, threshold):
                    holds = False
                triggers.append({"variable": variable, "value": value,
                                 "comparison": comparison, "threshold": threshold})
        if holds:
            fired.append({"rule": rule["name"], "actions": list(rule["actions"]),
                          "triggers": triggers})
    return RuleOutcome(fired, not_evaluated)


def _why_missing(variable: str, belief: dict[str, Any]) -> str:
    if variable.startswith(("flood_", "flooded_")):
        return "no land pixel of the zone has a prediction"
    if belief.get("water_level_m") is None:
        return "no water level at the latest time (no gauge reading and no tide prediction)"
    return "the nearest gauge has no return level for that return period"
