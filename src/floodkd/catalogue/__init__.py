"""A region's maps made ready to open: a QGIS project and the STAC Collection."""
