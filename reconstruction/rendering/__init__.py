"""Rays, sampling, the occupancy grid and volume rendering."""
