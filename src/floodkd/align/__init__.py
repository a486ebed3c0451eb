"""Align: regrid every ingested modality of a region onto its grid, into one datacube."""

from floodkd.align.cube import AlignSettings, build_cube, write_outputs

__all__ = ["AlignSettings", "build_cube", "write_outputs"]
