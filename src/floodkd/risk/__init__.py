"""Risk: tide-gauge return levels and climate sea-level change, the inputs of scenario maps."""
