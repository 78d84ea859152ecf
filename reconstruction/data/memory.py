"""Will a capture fit in memory? Decided from the image headers, before any pixel is decoded.

:func:`capture_bytes` is a rough estimate of what loading and training on ``n`` images of
``width x height`` (full resolution) takes at a ``downscale``: per loaded pixel the uint8
image and mask (4 bytes) plus their float32 copies that training holds (16 bytes), and
one full-resolution image being decoded and composited (8 bytes per pixel; huge images
are decoded one at a time). :func:`check_memory` refuses a capture whose estimate exceeds the memory available
now (psutil, else ``MemAvailable`` in /proc/meminfo), naming both numbers and the smallest
``--downscale`` whose estimate is at most half of it (the rest is left for the model).
"""

from __future__ import annotations

from pathlib import Path

from reconstruction.data.scene import CaptureError

BYTES_PER_LOADED_PIXEL = 20  # uint8 RGB + mask, float32 RGB + mask for training
BYTES_PER_DECODED_PIXEL = 8  # one full-resolution RGBA decode + its composite, per worker
GIB = 2**30


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now; None if it cannot be told."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil missing or failing: try /proc
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def capture_bytes(n: int, width: int, height: int, downscale: int = 1, workers: int = 1) -> int:
    """Estimated bytes to load and train on ``n`` images of ``width x height`` at ``downscale``.

    ``workers``: images decoded at the same time (full resolution).
    """
    w = max(1, round(width / downscale))
    h = max(1, round(height / downscale))
    loaded = n * w * h * BYTES_PER_LOADED_PIXEL
    decoding = max(1, min(n, workers)) * width * height * BYTES_PER_DECODED_PIXEL
    return int(loaded + decoding)


def suggest_downscale(n: int, width: int, height: int, budget: int) -> int | None:
    """The smallest integer downscale whose estimate fits in ``budget`` bytes (None: none does)."""
    if width * height * BYTES_PER_DECODED_PIXEL >= budget:
        return None  # decoding one full-resolution image alone does not fit
    lo, hi = 1, max(width, height)
    if capture_bytes(n, width, height, hi) > budget:
        return None
    while lo < hi:  # the estimate only falls as the downscale grows
        mid = (lo + hi) // 2
        if capture_bytes(n, width, height, mid) <= budget:
            hi = mid
        else:
            lo = mid + 1
    return lo


def gib(n_bytes: float) -> str:
    return f"{n_bytes / GIB:.1f} GiB"


def check_memory(
    source: str | Path,
    n: int,
    width: int,
    height: int,
    downscale: int = 1,
    available: int | None = None,
) -> None:
    """Raise :class:`CaptureError` if the capture would need more memory than is available."""
    available = available_memory() if available is None else available
    if available is None or n <= 0:
        return
    need = capture_bytes(n, width, height, downscale)
    if need <= available:
        return
    what = f"{n} image(s) of {width}x{height}" + (f" at --downscale {downscale}" if downscale > 1 else "")
    d = suggest_downscale(n, width, height, available // 2)
    if d is not None:
        fix = (f"pass --downscale {d} (about {gib(capture_bytes(n, width, height, d))}), "
               f"or use fewer or smaller images")
    else:
        fix = "resize the images (each one alone is too large to decode) or use fewer images"
    raise CaptureError(
        source,
        f"needs about {gib(need)} of memory to load ({what}) but only {gib(available)} is available",
        fix,
    )
