"""Climate scenario forcing: the student's inputs for a storm of a return period, now or later.

A scenario ``{return_period_years: T}`` (present climate) or ``{experiment: E, horizon: H,
return_period_years: T}`` sets, at every gauge with a return level, the scenario level

    level = RL_T (risk/return_levels.csv) + delta_E(H) - delta_E(reference year)

where delta is the sea-level change against the baseline (risk/sea_level_change.csv) and its
value at the gauge record's reference year (interpolated linearly from 0 at the baseline's
middle through the experiment's horizons) is taken off, because the return levels already
stand on that year's sea. Uncertainty: ``risk.scenario_draws`` draws, stratified over the
central ``confidence`` interval of the return level and, independently, of the sea-level
change (quantiles interpolated between each interval's bounds and its central value), every
draw run through the whole student ensemble. Draws use the same quantiles in every scenario,
so a higher scenario is higher in every draw.

Per draw the student sees: the water-level field interpolated from the gauges' scenario
levels as align does (inverse distance), each gauge's history as the region's largest
observed storm shifted to peak at the scenario level at the map's hour
(risk/design_storm.csv), the most recent clear optical value of each pixel, no radar, and
the GCM fields of the cube's latest month: the projected change enters through the water
level, in which the student is monotone by construction (shifting zos too would count it
twice, in a channel where the student is not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from pyproj import Transformer

from floodkd.align.gauges import idw_field
from floodkd.errors import InputError

__all__ = ["CLIMATE_KEYS", "is_climate", "ScenarioLevels", "scenario_levels",
           "clear_composite", "storm_histories", "climate_window_predictor",
           "read_risk_tables"]

CLIMATE_KEYS = ("return_period_years", "experiment", "horizon")
# draws run through the ensemble together: the model's activations and the logits of every
# member x MC draw are held for one batch at a time, not for all of a tile's draws (all 20
# draws of a 288 px context tile took 940 MB at once, 4 draws 380 MB, 1 draw 180 MB but
# twice the time)
DRAWS_PER_BATCH = 2
OPTICAL = ("b02", "b03", "b04", "b08", "b11", "b12", "ndwi", "mndwi")


def is_climate(spec: dict[str, Any]) -> bool:
    return "return_period_years" in spec


@dataclass(frozen=True)
class ScenarioLevels:
    """Scenario levels (m, station datum) per gauge with a return level, one per draw."""

    stations: list[str]
    draws_m: np.ndarray  # (stations, draws)
    sea_level_change_m: np.ndarray  # (draws,) the climate part, 0 for present climate
    description: str  # how the draws were made, for band descriptions and tags


def read_risk_tables(risk_dir: str | Path, climate: bool) -> dict[str, pd.DataFrame]:
    """return_levels.csv, design_storm.csv and (for a future climate) sea_level_change.csv."""
    names = ["return_levels", "design_storm"] + (["sea_level_change"] if climate else [])
    tables = {}
    for name in names:
        path = Path(risk_dir) / f"{name}.csv"
        if not path.is_file():
            raise InputError(path, "missing: climate scenarios need the region's risk tables",
                             "run `floodkd risk extremes` and `floodkd risk climate` first")
        tables[name] = pd.read_csv(path)
    return tables


def _quantiles(draws: int, confidence: float) -> np.ndarray:
    """Stratified probabilities over the central ``confidence`` interval."""
    alpha = (1.0 - confidence) / 2.0
    return alpha + (1.0 - 2 * alpha) * (np.arange(draws) + 0.5) / draws


def _interval_quantile(p: np.ndarray, lower: float, central: float, upper: float,
                       confidence: float) -> np.ndarray:
    """Values at probabilities ``p`` inside the interval: linear between its bounds and the
    central value (the interval's quantiles alpha, 0.5, 1 - alpha)."""
    alpha = (1.0 - confidence) / 2.0
    return np.interp(p, [alpha, 0.5, 1.0 - alpha], [lower, central, upper])


def scenario_levels(spec: dict[str, Any], tables: dict[str, pd.DataFrame], draws: int,
                    confidence: float, baseline: tuple[int, int], seed: int = 0,
                    source: str | Path = "risk") -> ScenarioLevels:
    """The gauges' scenario levels in ``draws`` draws (see the module docstring)."""
    period = float(spec["return_period_years"])
    levels = tables["return_levels"]
    rows = levels[np.isclose(levels["return_period_years"], period) & levels["level_m"].notna()]
    if rows.empty:
        have = sorted(set(levels["return_period_years"]))
        raise InputError(Path(source) / "return_levels.csv",
                         f"no return level for {period:g} years (it has {have})",
                         "add it to risk.extremes.return_periods_years")
    p = _quantiles(draws, confidence)
    q = np.random.default_rng(seed).permutation(p)  # the climate draws, independent of p
    station_draws = np.stack([_interval_quantile(p, r.lower_m, r.level_m, r.upper_m, confidence)
                              for r in rows.itertuples()])
    change = np.zeros(draws)
    text = (f"{draws} draws of the {period:g}-year level within its {confidence:.0%} "
            "interval (risk/return_levels.csv)")
    if "experiment" in spec:
        change = _climate_draws(spec, tables["sea_level_change"], q, confidence, baseline,
                                float(rows["reference_year"].mean()), source)
        text += (f" plus independent draws of the {spec['experiment']} sea-level change to "
                 f"{spec['horizon']} within its interval (risk/sea_level_change.csv)")
    return ScenarioLevels([str(s) for s in rows["station"]], station_draws + change[None],
                          change, text)


def _climate_draws(spec: dict[str, Any], table: pd.DataFrame, q: np.ndarray,
                   confidence: float, baseline: tuple[int, int], reference_year: float,
                   source: str | Path) -> np.ndarray:
    experiment, horizon = str(spec["experiment"]), int(spec["horizon"])
    mine = table[table["experiment"].astype(str) == experiment].sort_values("horizon")
    row = mine[mine["horizon"] == horizon]
    if row.empty:
        raise InputError(Path(source) / "sea_level_change.csv",
                         f"no sea-level change for {experiment} {horizon}",
                         "rerun `floodkd risk climate` with this scenario in the config")
    row = row.iloc[0]
    middle = (baseline[0] + baseline[1] + 1) / 2.0
    already = np.interp(reference_year, [middle, *mine["horizon"]], [0.0, *mine["delta_m"]])
    return _interval_quantile(q, row.lower_m, row.delta_m, row.upper_m, confidence) - already


def storm_histories(levels_m: np.ndarray, shape: pd.DataFrame, stations: list[str],
                    cube_gauges: list[str], lags: int) -> np.ndarray:
    """(draws, cube gauges, lags) histories: each gauge's design storm (levels relative to
    its peak, lag 0 oldest) shifted to end at its scenario level; NaN for gauges without."""
    out = np.full((levels_m.shape[1], len(cube_gauges), lags), np.nan, np.float32)
    for i, station in enumerate(stations):
        if station not in cube_gauges:
            continue
        mine = shape[shape["station"].astype(str) == station].sort_values("lag")
        if len(mine) != lags:
            raise InputError("design_storm.csv", f"{len(mine)} hours for {station}, the cube's "
                             f"gauge history has {lags}",
                             "rerun `floodkd risk extremes` with this config")
        relative = mine["level_below_peak_m"].values.astype(np.float32)
        out[:, cube_gauges.index(station)] = levels_m[i][:, None] + relative[None]
    return out


def clear_composite(cube: xr.Dataset, rows: slice, cols: slice) -> dict[str, np.ndarray]:
    """Each optical channel at its most recent clear observation per pixel (NaN where never
    clear), and clear_sky 1 where there is one."""
    if "clear_sky" not in cube:
        return {}
    clear = np.nan_to_num(cube["clear_sky"].isel(y=rows, x=cols).values) == 1  # (T, h, w)
    ever = clear.any(0)
    latest = clear.shape[0] - 1 - np.argmax(clear[::-1], axis=0)  # last clear time index
    out = {"clear_sky": np.where(ever, 1.0, 0.0).astype(np.float32)}
    for name in OPTICAL:
        if name in cube:
            values = cube[name].isel(y=rows, x=cols).values
            picked = np.take_along_axis(values, latest[None], axis=0)[0]
            out[name] = np.where(ever, picked, np.nan).astype(np.float32)
    return out


def gauge_weights(cube: xr.Dataset, stations: list[str], grid: Any,
                  chunk_px: int) -> Any:
    """Lazy (stations, y, x) inverse-distance weights of each gauge, as align builds the
    field: the field of any gauge levels L is sum_g L_g w_g."""
    gauges = [str(g) for g in cube["gauge"].values]
    index = [gauges.index(s) for s in stations if s in gauges]
    if not index:
        raise InputError("return_levels.csv", f"none of its stations {stations} is a gauge of "
                         f"the cube ({gauges})", "rerun align and risk with the same tide input")
    lon = cube["gauge_lon"].values[index].astype(float)
    lat = cube["gauge_lat"].values[index].astype(float)
    gx, gy = Transformer.from_crs("EPSG:4326", grid.crs.to_wkt(), always_xy=True).transform(
        lon, lat)
    return idw_field(np.eye(len(index), dtype=np.float32), np.asarray(gx), np.asarray(gy),
                     grid, chunk_px)


def climate_window_predictor(
    cube: xr.Dataset, time_index: int, ensemble: Any, levels: ScenarioLevels,
    histories: np.ndarray, weights: Any, mc_samples: int, multiple: int, seed: int = 0,
) -> Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray]]:
    """predict_window for a climate scenario: (members x MC per draw x draws, h, w) samples,
    and the input flags.

    Levels and dropout are sampled jointly, as one Monte Carlo over both: every level draw
    runs each member with fresh dropout masks, so a draw needs only ceil(mc_samples / draws)
    of them for each member to see ``mc_samples`` masks in all (one per draw for 20 draws and
    4 MC samples: a quarter of the forward passes of all masks at all levels).
    Like ``student_window_predictor``, each tile is read with context around it, mirrored
    beyond the region's edge, so the region's border maps like its inside."""
    from floodkd.distill.data import PRESENCE_FLAGS, collate, sample_tensors
    from floodkd.predict.cli import input_flags, window_reader
    from floodkd.predict.tiled import CONTEXT_CELLS, INPUT_FLAGS, context_window, mirror_pad

    shape = (cube.sizes["y"], cube.sizes["x"])
    margin = CONTEXT_CELLS * multiple
    draws = levels.draws_m.shape[1]
    mc_per_draw = -(-mc_samples // draws) if mc_samples > 0 else 0  # 0: dropout off
    read = window_reader(cube, time_index)  # the student's variables only: no radar, labels

    def predict_window(row_off: int, col_off: int, height: int, width: int):
        context = context_window(row_off, col_off, height, width, shape, margin, multiple)
        r0, c0, h, w_px = context.read
        rows, cols = slice(r0, r0 + h), slice(c0, c0 + w_px)
        base = read(r0, c0, h, w_px)
        base = base.drop_vars("water_depth_m", errors="ignore")
        composite = clear_composite(cube, rows, cols)
        for name, values in composite.items():
            base[name] = (("y", "x"), values)
        base["optical_present"] = bool(composite) and bool(composite["clear_sky"].any())
        base["radar_present"] = False
        base["gauge_present"] = True
        w = np.asarray(weights[:, rows, cols])  # (stations, h, w)
        samples = None  # (members x MC per draw, draws, h, w), a batch of draws at a time
        for first in range(0, draws, DRAWS_PER_BATCH):
            batch = range(first, min(first + DRAWS_PER_BATCH, draws))
            windows = []
            for d in batch:
                window = base.copy()
                window["water_level_m"] = (("y", "x"),
                                           np.tensordot(levels.draws_m[:, d], w, axes=1))
                window["gauge_history_m"] = (("gauge", "lag"), histories[d])
                sample = sample_tensors(window, (h, w_px), context.read, time_index)
                sample["student_image"] = torch.from_numpy(
                    mirror_pad(sample["student_image"].numpy(), context.pad))
                windows.append(sample)
            # the same dropout in every scenario: seeded by the tile and the batch of draws
            torch.manual_seed(seed + 7919 * row_off + col_off + 104729 * first)
            probabilities = ensemble.predict_probabilities(collate(windows), mc_per_draw)
            if samples is None:
                samples = np.empty((probabilities.shape[0], draws, height, width), np.float32)
            samples[:, batch.start:batch.stop] = probabilities[
                :, :, margin:margin + height, margin:margin + width]
            del probabilities, windows
        samples = samples.reshape(-1, height, width)  # (S x draws, h, w)
        tile = base.isel(y=slice(row_off - r0, row_off - r0 + height),
                         x=slice(col_off - c0, col_off - c0 + width))
        presence = {m: bool(tile[f].values) if f in tile else False
                    for m, f in PRESENCE_FLAGS.items()}
        flags = input_flags(tile, presence)
        samples[:, (flags & INPUT_FLAGS["terrain"]) == 0] = np.nan
        return samples, flags

    return predict_window


def uncertainty_bands(description: str) -> tuple:
    """The uncertainty COG's bands, their std saying what the samples span."""
    from floodkd.predict.uncertainty import UNCERTAINTY_BANDS

    std, *rest = UNCERTAINTY_BANDS
    spans = f"ensemble members x MC dropout x {description}"
    return (replace(std, description=f"standard deviation of P(flood) over {spans}"), *rest)


def predictor_for(config: dict[str, Any], spec: dict[str, Any], risk_dir: str | None,
                  cube: xr.Dataset, time_index: int, ensemble: Any, grid: Any,
                  mc_samples: int, multiple: int):
    """(predict_window, write_scenario_maps keywords, provenance tags) of a climate scenario."""
    if not risk_dir:
        raise InputError("command line", "a climate scenario needs --risk",
                         "pass --risk results/<region>/risk (made by `floodkd risk`)")
    risk = config["risk"]
    confidence = float(risk["extremes"]["confidence"])
    tables = read_risk_tables(risk_dir, "experiment" in spec)
    levels = scenario_levels(spec, tables, int(risk["scenario_draws"]), confidence,
                             tuple(risk["climate"]["baseline"]), source=risk_dir)
    gauges = [str(g) for g in cube["gauge"].values] if "gauge" in cube.dims else []
    lags = int(cube.sizes.get("lag", 0))
    histories = storm_histories(levels.draws_m, tables["design_storm"], levels.stations,
                                gauges, lags)
    weights = gauge_weights(cube, levels.stations, grid, int(config["align"]["chunk_px"]))
    predict_window = climate_window_predictor(cube, time_index, ensemble, levels, histories,
                                              weights, mc_samples, multiple)
    median = np.median(levels.draws_m, axis=1)
    extra = {f"scenario_{k}": str(v) for k, v in spec.items()}
    extra["scenario_level_m"] = ", ".join(f"{s} {m:.3f}" for s, m in
                                          zip(levels.stations, median, strict=True))
    extra["scenario_sea_level_change_m"] = f"{np.median(levels.sea_level_change_m):.3f}"
    extra["scenario_forcing"] = (levels.description + "; design storm of risk/design_storm.csv,"
                                 " optical from the latest clear pixels, no radar")
    return predict_window, {"uncertainty_bands": uncertainty_bands(levels.description)}, extra
