"""Quality of a DEM against a reference: elevation, slope and image metrics."""
