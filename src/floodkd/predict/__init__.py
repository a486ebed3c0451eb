"""Predict: tiled, blended inference of the student ensemble over a whole region, streamed
into Cloud-Optimized GeoTIFFs with QGIS styles, STAC Items and PNG quicklooks.

The names below are imported from their modules on first use, so that a stage needing only
``predict.uncertainty`` (evaluate) does not pay for the map writers (matplotlib, STAC)."""

from importlib import import_module

_SOURCES = {
    "Window": "blending",
    "tile_windows": "blending",
    "INPUT_FLAGS": "tiled",
    "MapFiles": "tiled",
    "MapProvenance": "tiled",
    "predict_row_bands": "tiled",
    "write_scenario_maps": "tiled",
    "UncertaintyMaps": "uncertainty",
    "sample_statistics": "uncertainty",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_SOURCES[name]}"), name)
