"""The demo target's assets and planning zones, placed where such things stand on a real coast.

Assets are written as an OpenStreetMap extract would give them (a GeoPackage in lon/lat with
OSM's tags as columns: building, highway, amenity, man_made, name) plus the ``class`` column
that floodkd exposure groups by:

- **pumping station** (a point, as OSM maps most of them: a node): at the polder's lowest
  cell beside its seaward dike. A polder drains by gravity to its low point, and the station
  lifts the water over the dike there into the creek or sea; so it is the first asset to
  flood when the dike is overtopped or rain ponds.
- **hospital** (a polygon): on the highest built cell of the town. District hospitals of
  the Mekong delta stand in the towns, and the towns grew on the natural levees and raised
  ground inland of the polders, which is why the demo town is raised; the site is high
  for its town, not guaranteed dry.
- **houses**: spread over the town, and farmhouses strung along the road inside the polder
  (ribbon settlement along dike roads and canals, the typical pattern of polder villages).
- **road** (a line): from the hospital over the landward dike through the polder to the
  pumping station, the station's access road and the polder's link to the town.

Zones are what a planning office acts on: the polder with its dike ring, the town, and the
rest of the coast (flats, creeks and unprotected land), written in the grid's UTM CRS as a
national agency's boundaries would be.

The defence register (every region) is what a water agency publishes: the land the ring dike
protects, as one polygon in the grid's UTM CRS, with the crest level the ring holds to, its
lowest crest cell (water overtops a ring at its lowest point) plus the error of a crest survey
(0.1 m, as RTK-GNSS or lidar crest surveys give), as England's "Areas Benefiting from Defences"
and the Dutch dike-ring areas give theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
import shapely.affinity
from affine import Affine
from odc.geo.geobox import GeoBox
from scipy import ndimage
from shapely.geometry import LineString, Point, box, shape

from floodkd.demo.terrain import Cover, Terrain

__all__ = ["demo_assets", "demo_zones", "write_assets", "demo_defences", "write_defences"]

HOUSE_SIDE_M = (8.0, 14.0)  # footprints of rural and small-town houses
HOUSE_SPACING_PX = 3  # at most one house per 30 m x 30 m block
HOSPITAL_SIZE_M = (60.0, 40.0)
FARMHOUSE_OFFSET_M = 18.0  # set back from the road
NEAR_DIKE_PX = 4  # the pumping station's intake sits against the dike's inner toe
CREST_SURVEY_ERROR_M = 0.1
_OSM_COLUMNS = ("name", "building", "highway", "amenity", "healthcare", "man_made", "surface")


def _point(transform: Affine, row: int, col: int) -> Point:
    return Point(transform * (col + 0.5, row + 0.5))


def _lowest(elevation: np.ndarray, where: np.ndarray) -> tuple[int, int] | None:
    if not where.any():
        return None
    return np.unravel_index(np.argmin(np.where(where, elevation, np.inf)), elevation.shape)


def _highest(elevation: np.ndarray, where: np.ndarray) -> tuple[int, int] | None:
    return _lowest(-elevation, where)


def _spaced(cells: np.ndarray, spacing: int, rng: np.random.Generator, limit: int) -> list:
    """Up to ``limit`` of ``cells`` (k, 2) in random order, no two closer than ``spacing``."""
    picked: list[np.ndarray] = []
    for cell in cells[rng.permutation(len(cells))]:
        if all(np.abs(cell - other).max() >= spacing for other in picked):
            picked.append(cell)
        if len(picked) == limit:
            break
    return picked


def demo_assets(terrain: Terrain, inner: tuple[slice, slice], grid: GeoBox,
                rng: np.random.Generator) -> gpd.GeoDataFrame:
    """The assets of one coast (``terrain`` on the extended grid, ``inner`` the region's
    window of it, ``grid`` the region's radar grid), in EPSG:4326."""
    elevation = terrain.elevation_m[inner]
    cover, polder = terrain.cover[inner], terrain.polder[inner]
    transform = grid.affine
    near_sea_dike = ndimage.distance_transform_edt(~terrain.sea_dike[inner]) <= NEAR_DIKE_PX
    near_dike = ndimage.distance_transform_edt(~terrain.dike[inner]) <= NEAR_DIKE_PX
    pump_cell = _lowest(elevation, polder & near_sea_dike) or _lowest(elevation,
                                                                      polder & near_dike)
    town = cover == Cover.URBAN
    land = (cover != Cover.SEA) & (cover != Cover.MUDFLAT) & ~polder
    hospital_cell = _highest(elevation, town) or _highest(elevation, land)
    if pump_cell is None or hospital_cell is None:
        raise ValueError("the demo coast has no polder or no land for its assets; use a "
                         "larger --size")
    rows: list[dict] = []

    def add(geometry, klass: str, **tags: str) -> None:
        rows.append({"osm_id": -(len(rows) + 1), "class": klass, **tags, "geometry": geometry})

    pump = _point(transform, *pump_cell)
    add(pump, "pumping_station", name="Synth Polder Pumping Station",
        man_made="pumping_station")
    hospital = _point(transform, *hospital_cell)
    width, height = HOSPITAL_SIZE_M
    add(box(hospital.x - width / 2, hospital.y - height / 2, hospital.x + width / 2,
            hospital.y + height / 2), "hospital", name="Synth District Hospital",
        building="hospital", amenity="hospital", healthcare="hospital")
    middle = _point(transform, *[int(v) for v in np.argwhere(polder).mean(axis=0)])
    road = LineString([hospital, middle, pump])
    add(road, "road", name="Synth Dike Road", highway="tertiary", surface="asphalt")

    keep_clear = hospital.buffer(max(width, height))  # the hospital's own grounds
    town_cells = np.argwhere(town)
    town_cells = np.array([c for c in town_cells
                           if not keep_clear.contains(_point(transform, *c))]).reshape(-1, 2)
    for cell in _spaced(town_cells, HOUSE_SPACING_PX, rng, limit=24):
        add(_house(_point(transform, *cell), rng), "building", building="house")
    inside = LineString([middle, pump])  # the road's stretch inside the polder (convex)
    for k, distance in enumerate(np.linspace(0.15, 0.85, 8) * inside.length):
        on_road = inside.interpolate(distance)
        ahead = inside.interpolate(min(distance + 1.0, inside.length))
        dx, dy = ahead.x - on_road.x, ahead.y - on_road.y
        norm = np.hypot(dx, dy) or 1.0
        side = FARMHOUSE_OFFSET_M * (1 if k % 2 else -1)
        centre = Point(on_road.x - dy / norm * side, on_road.y + dx / norm * side)
        add(_house(centre, rng), "building", building="farm")
    frame = gpd.GeoDataFrame(rows, crs=grid.crs.to_wkt())
    for column in _OSM_COLUMNS:
        if column not in frame:
            frame[column] = None
    frame = frame[["osm_id", "class", *_OSM_COLUMNS, "geometry"]]
    return frame.to_crs("EPSG:4326")


def _house(centre: Point, rng: np.random.Generator):
    """A rectangular footprint of HOUSE_SIDE_M sides, turned at random."""
    a, b = rng.uniform(*HOUSE_SIDE_M, size=2)
    footprint = box(centre.x - a / 2, centre.y - b / 2, centre.x + a / 2, centre.y + b / 2)
    return shapely.affinity.rotate(footprint, float(rng.uniform(0, 90)), origin=centre)


def demo_zones(terrain: Terrain, inner: tuple[slice, slice], grid: GeoBox) -> gpd.GeoDataFrame:
    """Planning zones in the grid's CRS: the polder with its dike ring, the town, the coast."""
    inside_ring = ndimage.binary_fill_holes(terrain.dike[inner] | terrain.polder[inner])
    town = (terrain.cover[inner] == Cover.URBAN) & ~inside_ring
    town = ndimage.binary_closing(town, iterations=3) & ~inside_ring
    labels = np.full(inside_ring.shape, 3, np.uint8)
    labels[inside_ring], labels[town] = 1, 2
    names = {1: "Polder and dike ring", 2: "Town", 3: "Coast, flats and creeks"}
    geoms: dict[int, list] = {k: [] for k in names}
    for geom, value in rasterio.features.shapes(labels, transform=grid.affine):
        geoms[int(value)].append(shape(geom))
    rows = [{"zone_id": k, "name": names[k], "geometry": shapely.union_all(parts)}
            for k, parts in geoms.items() if parts]
    return gpd.GeoDataFrame(rows, crs=grid.crs.to_wkt())


def write_assets(folder: Path, terrain: Terrain, inner: tuple[slice, slice], grid: GeoBox,
                 rng: np.random.Generator, add: Callable[[Path], Path]) -> None:
    """``assets/assets.gpkg`` (layer ``assets``) and ``zones/zones.gpkg`` (layer ``zones``)."""
    demo_assets(terrain, inner, grid, rng).to_file(add(folder / "assets" / "assets.gpkg"),
                                                   layer="assets", driver="GPKG")
    demo_zones(terrain, inner, grid).to_file(add(folder / "zones" / "zones.gpkg"),
                                             layer="zones", driver="GPKG")


def demo_defences(terrain: Terrain, inner: tuple[slice, slice], grid: GeoBox,
                  rng: np.random.Generator) -> gpd.GeoDataFrame:
    """The register of the region's ring dike: the polder it protects and its crest level."""
    polder = terrain.polder[inner]
    parts = [shape(geom) for geom, value in
             rasterio.features.shapes(polder.astype(np.uint8), mask=polder, transform=grid.affine)
             if value == 1]
    crest_m = float(terrain.elevation_m[terrain.dike].min()) + rng.normal(0.0,
                                                                          CREST_SURVEY_ERROR_M)
    return gpd.GeoDataFrame({"name": ["Polder ring dike"], "defence": ["ring dike"],
                             "crest_m": [round(crest_m, 2)]},
                            geometry=[shapely.union_all(parts)], crs=grid.crs.to_wkt())


def write_defences(folder: Path, terrain: Terrain, inner: tuple[slice, slice], grid: GeoBox,
                   rng: np.random.Generator, add: Callable[[Path], Path]) -> None:
    """``defences/defences.gpkg`` (layer ``defences``)."""
    demo_defences(terrain, inner, grid, rng).to_file(add(folder / "defences" / "defences.gpkg"),
                                                     layer="defences", driver="GPKG")
