"""Turning trained fields into meshes, curves and splats."""
