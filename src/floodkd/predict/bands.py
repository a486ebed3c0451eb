"""What an output band is, apart from how it is written (``predict.cog``), so that the
maths modules can name their bands without importing rasterio."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BandSpec"]


@dataclass(frozen=True)
class BandSpec:
    """One output band: its name (the band description), unit and overview resampling."""

    name: str
    unit: str
    description: str
    overview_resampling: str = "average"  # a rasterio Resampling name
    scale: float = 1.0
    offset: float = 0.0
