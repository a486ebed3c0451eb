"""Predict: tiled, blended inference of the student ensemble over a whole region, streamed
into Cloud-Optimized GeoTIFFs with QGIS styles, STAC Items and PNG quicklooks."""

from floodkd.predict.blending import Window, tile_windows
from floodkd.predict.tiled import (
    INPUT_FLAGS,
    MapFiles,
    MapProvenance,
    predict_row_bands,
    write_scenario_maps,
)
from floodkd.predict.uncertainty import UncertaintyMaps, sample_statistics

__all__ = [
    "INPUT_FLAGS",
    "MapFiles",
    "MapProvenance",
    "UncertaintyMaps",
    "Window",
    "predict_row_bands",
    "sample_statistics",
    "tile_windows",
    "write_scenario_maps",
]
