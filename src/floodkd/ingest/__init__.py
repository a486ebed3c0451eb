"""Ingest: read each modality's source format, validate it, write a tidy intermediate folder.

Every modality module has ``ingest(region, out_dir)``: ``region`` is the validated region
block of the config and ``out_dir`` an empty folder that the CLI renames into place only
when ``ingest`` succeeds. Layouts are fixed in docs/data-contracts.md ("Ingest").
"""

MODALITIES = ("sar", "optical", "gcm", "tide", "terrain", "labels", "defences")

__all__ = ["MODALITIES"]
