"""``floodkd risk extremes|climate``: return levels of the gauges, sea-level change per scenario.

``extremes`` reads ingest's ``tide.nc`` and writes ``return_levels.csv``,
``return_levels.png`` and ``design_storm.csv`` (each gauge's largest observed storm, the
shape of a scenario's hydrograph); ``climate`` reads ingest's ``gcm.nc`` (or the projection table in
config) and writes ``sea_level_change.csv``; both into ``--out`` (results/<region>/risk).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
import xarray as xr

from floodkd.atomic import atomic_path
from floodkd.config import load_config, region_config
from floodkd.errors import InputError
from floodkd.outputs import check_outputs
from floodkd.region import region_outline
from floodkd.risk import climate, extremes
from floodkd.risk.plot import write_return_level_plot

__all__ = ["add_arguments", "run"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("step", choices=("extremes", "climate"), help="what to compute")
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--region", required=True, help="region name in the config")
    parser.add_argument("--tide", help="extremes: ingest's tide.nc of the region")
    parser.add_argument("--gcm", help="climate: ingest's gcm.nc (unused with a projection_table)")
    parser.add_argument("--out", required=True, help="folder, e.g. results/<region>/risk")


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    region = region_config(config, args.region)
    settings = climate.ClimateSettings.from_config(config)
    source = args.tide if args.step == "extremes" else (settings.projection_table or args.gcm)
    if not source:
        raise InputError("command line", f"risk {args.step} needs --"
                         + ("tide" if args.step == "extremes" else "gcm"),
                         "pass the region's ingest output (results/<region>/ingest/...)")
    if not Path(source).is_file():
        raise InputError(source, "file not found", "run `floodkd ingest` for this region first")
    check_outputs(config, args.config, folders=[args.out], inputs=[source])
    out = Path(args.out)
    if args.step == "extremes":
        _extremes(config, args.region, region, Path(source), out)
    else:
        _climate(config, region, settings, Path(source), out)


def _extremes(config: dict, name: str, region: dict, source: Path, out: Path) -> None:
    settings = extremes.ExtremeSettings.from_config(config)
    with xr.open_dataset(source) as tide:
        tide = tide.load()
    fits = extremes.fit_region(tide, settings, source)
    table = extremes.return_levels_table(fits, settings)
    hours = int(config["align"]["gauge_history_hours"])
    storms = pd.concat([extremes.design_storm(tide, fit.station, hours) for fit in fits
                        if fit.distribution is not None])
    with atomic_path(out / "return_levels.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_path(out / "design_storm.csv") as tmp:
        storms.to_csv(tmp, index=False, float_format="%.4f")
    write_return_level_plot(fits, settings, name, out / "return_levels.png",
                            bool(region.get("synthetic", False)))
    for row in table.itertuples():
        log.info("%s rp%g: %.3f m [%.3f, %.3f] %s", row.station, row.return_period_years,
                 row.level_m, row.lower_m, row.upper_m, row.method)


def _climate(config: dict, region: dict, settings: climate.ClimateSettings, source: Path,
             out: Path) -> None:
    pairs = climate.scenario_pairs(config)
    if settings.projection_table:
        try:
            table = pd.read_csv(source)
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            raise InputError(source, f"not a readable CSV ({error})",
                             "give a comma-separated table with a header row") from error
        changes = climate.table_changes(table, settings, pairs, source)
    else:
        centre = region_outline(region).centroid
        with xr.open_dataset(source) as gcm:
            gcm = gcm.load()
        changes = climate.gcm_changes(gcm, centre.x, centre.y, settings, pairs, source)
    with atomic_path(out / "sea_level_change.csv") as tmp:
        changes.to_csv(tmp, index=False, float_format="%.4f")
    for row in changes.itertuples():
        log.info("%s %d: %+.3f m [%+.3f, %+.3f] (%s)", row.experiment, row.horizon, row.delta_m,
                 row.lower_m, row.upper_m, row.source)
