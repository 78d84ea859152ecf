"""Gaussian splats <-> the standard 3D Gaussian Splatting PLY (binary little-endian).

One vertex element with float32 properties in the order 3DGS writes them: ``x y z``,
``nx ny nz`` (zeros), ``f_dc_0..2`` (SH degree 0), ``f_rest_0..`` (the higher SH bands,
channel-major: all of red's coefficients, then green's, then blue's), ``opacity`` (logit),
``scale_0..2`` (log), ``rot_0..3`` (quaternion w x y z). Reading accepts any property order
and extra properties, as written by other tools.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

_PLY_TYPES = {"float": "f4", "float32": "f4", "double": "f8", "float64": "f8", "uchar": "u1",
              "uint8": "u1", "char": "i1", "int8": "i1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4",
              "uint32": "u4"}


def write_splats_ply(
    path: str | Path,
    means: np.ndarray,  # [N, 3] world
    sh_dc: np.ndarray,  # [N, 3] SH degree-0 coefficients
    sh_rest: np.ndarray,  # [N, K, 3] higher SH coefficients (K = 15 for degree 3; 0 allowed)
    opacity_logits: np.ndarray,  # [N]
    log_scales: np.ndarray,  # [N, 3]
    quats: np.ndarray,  # [N, 4] (w, x, y, z)
) -> Path:
    """Write the 3DGS PLY atomically (temp file, then rename)."""
    path = Path(path)
    n = int(len(means))
    rest = np.asarray(sh_rest, np.float32).reshape(n, -1, 3).transpose(0, 2, 1).reshape(n, -1)
    cols = [np.asarray(means, np.float32).reshape(n, 3), np.zeros((n, 3), np.float32),
            np.asarray(sh_dc, np.float32).reshape(n, 3), rest,
            np.asarray(opacity_logits, np.float32).reshape(n, 1),
            np.asarray(log_scales, np.float32).reshape(n, 3),
            np.asarray(quats, np.float32).reshape(n, 4)]
    names = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
             + [f"f_rest_{i}" for i in range(rest.shape[1])]
             + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    data = np.ascontiguousarray(np.concatenate(cols, 1), dtype="<f4")
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property float {name}" for name in names] + ["end_header"]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(("\n".join(header) + "\n").encode("ascii"))
            f.write(data.tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_splats_ply(path: str | Path) -> dict[str, np.ndarray]:
    """Read a 3DGS PLY -> means [N, 3], sh_dc [N, 3], sh_rest [N, K, 3], opacity_logits [N],
    log_scales [N, 3], quats [N, 4] (float32). Raises ValueError on a file that is not one."""
    path = Path(path)
    raw = path.read_bytes()
    end = raw.find(b"end_header")
    if not raw.startswith(b"ply") or end < 0:
        raise ValueError(f"{path}: not a PLY file")
    body_start = raw.index(b"\n", end) + 1
    lines = raw[:end].decode("ascii", "replace").splitlines()
    fmt, n, props, in_vertex, before = None, 0, [], False, 0
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "element":
            in_vertex = parts[1] == "vertex"
            if in_vertex:
                n = int(parts[2])
            elif not props:
                before += 1
        elif parts[0] == "property" and in_vertex:
            if parts[1] == "list":
                raise ValueError(f"{path}: list properties in the vertex element are not splats")
            props.append((parts[2], _PLY_TYPES[parts[1]]))
    if before:
        raise ValueError(f"{path}: the vertex element must come first")
    names = [p[0] for p in props]
    need = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1",
            "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    missing = [k for k in need if k not in names]
    if missing:
        raise ValueError(f"{path}: not a Gaussian-splat PLY (missing {', '.join(missing)})")
    if fmt == "ascii":
        table = np.loadtxt(raw[body_start:].decode().splitlines()[:n], ndmin=2)
        arr = {name: table[:, i] for i, name in enumerate(names)}
    else:
        order = "<" if fmt == "binary_little_endian" else ">"
        dtype = np.dtype([(name, order + t) for name, t in props])
        rec = np.frombuffer(raw, dtype=dtype, count=n, offset=body_start)
        arr = {name: rec[name] for name in names}
    rest_names = sorted((k for k in names if k.startswith("f_rest_")), key=lambda s: int(s[7:]))
    k = len(rest_names) // 3

    def cols(keys: list[str]) -> np.ndarray:
        return np.stack([np.asarray(arr[key], np.float32) for key in keys], 1) if keys else \
            np.zeros((n, 0), np.float32)

    rest = cols(rest_names).reshape(n, 3, k).transpose(0, 2, 1)
    return {"means": cols(["x", "y", "z"]), "sh_dc": cols(["f_dc_0", "f_dc_1", "f_dc_2"]),
            "sh_rest": np.ascontiguousarray(rest), "opacity_logits": cols(["opacity"])[:, 0],
            "log_scales": cols(["scale_0", "scale_1", "scale_2"]),
            "quats": cols(["rot_0", "rot_1", "rot_2", "rot_3"])}
