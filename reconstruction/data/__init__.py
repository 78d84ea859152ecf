"""Capture loaders: every supported layout -> one :class:`Scene`.

``load_capture(path, downscale=1, background=(1, 1, 1))`` detects the layout
(:func:`detect_format`: "nerf-synthetic", "instant-ngp", "nerfstudio", "idr", "colmap")
and returns images, cameras (OpenGL camera-to-world, the capture's own world frame),
split, bounds and normalisation. See ``reconstruction/data/loader.py``.

Importing this package loads Pillow and OpenCV (through ``images``) before anything can
import pycolmap: the other order crashes pycolmap 4.2.1 (see ``colmap.py``).
"""

from reconstruction.data.loader import detect_format, load_capture
from reconstruction.data.scene import (
    OPENCV_TO_OPENGL,
    Cameras,
    CaptureError,
    Normalization,
    Problem,
    Scene,
)

__all__ = [
    "OPENCV_TO_OPENGL",
    "Cameras",
    "CaptureError",
    "Normalization",
    "Problem",
    "Scene",
    "detect_format",
    "load_capture",
]
