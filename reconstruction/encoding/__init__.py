"""Input encodings. ``HashGrid`` is tinycudann.Encoding-compatible (config and parameters)."""

from reconstruction.encoding.hashgrid import HashGrid, HashGridConfig, hashgrid_reference

__all__ = ["HashGrid", "HashGridConfig", "hashgrid_reference"]
