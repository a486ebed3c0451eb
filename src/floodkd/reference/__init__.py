"""Reference water: the permanent water of a region, kept apart from flood (water in nearly
every radar pass as the teacher maps it, or a user-supplied raster)."""
