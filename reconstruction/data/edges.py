"""2D edge maps of a capture's images, the training targets of the edge field.

Soft (0-1) maps: Canny on a bilateral-filtered grey image, with its hysteresis thresholds
set from the image's own gradient statistics (so dim and bright, busy and plain photos get
comparable maps), blurred by a small Gaussian so an edge is a ridge about two pixels
wide, plus the silhouette from the mask or alpha when there is one. A capture folder with
an ``edges/`` folder (one image per view, same names as the RGB images, as NEF does with
its PiDiNet maps) is used instead.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from reconstruction.data.scene import Scene


def soft_edges(rgb: np.ndarray,  # [H, W, 3] uint8
               mask: np.ndarray | None = None,  # [H, W] uint8, 255 = object
               high_percentile: float = 90.0, blur: float = 0.8) -> np.ndarray:
    """[H, W] float32 in [0, 1]: Canny edges (thresholds from the gradient magnitude
    distribution inside the mask) and the mask's outline, softened."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    grey = cv2.bilateralFilter(grey, 5, 40, 5)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    region = mag.reshape(-1)
    if mask is not None:
        # inside the object, away from its outline: the silhouette (added from the mask
        # below) would otherwise set the bar and hide the creases between faces
        inner = cv2.erode((mask > 127).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        if inner.any():
            region = mag[inner]
    # the hysteresis threshold from the image's own gradient distribution, but never below
    # a step of about 10 grey levels (Sobel magnitude 40) so flat images give no edges
    high = max(float(np.percentile(region, high_percentile)), 40.0)
    edges = cv2.Canny(grey, 0.4 * high, high, L2gradient=True) > 0
    out = edges.astype(np.float32)
    if mask is not None:
        m = (mask > 127).astype(np.uint8)
        outline = cv2.morphologyEx(m, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        # the outline is two pixels wide (inside and outside): keep the inner ring
        out = np.maximum(out, (outline & (m > 0)).astype(np.float32))
        out[cv2.dilate(m, np.ones((5, 5), np.uint8)) == 0] = 0.0  # nothing far off the object
    if blur > 0:
        soft = cv2.GaussianBlur(out, (0, 0), blur)
        peak = cv2.GaussianBlur(np.pad(np.ones((1, 1), np.float32), 6), (0, 0), blur).max()
        out = np.clip(soft / peak, 0.0, 1.0)
    return out.astype(np.float32)


def _edges_folder(scene: Scene) -> Path | None:
    folder = Path(scene.root) / "edges"
    return folder if folder.is_dir() else None


def _edge_file(folder: Path, file_path: str, image_path: str) -> Path | None:
    """The edge image of one view: ``edges/<frame path>`` (e.g. edges/train/r_0.png, where
    frame names repeat across splits) or ``edges/<image name>``, PNG or JPEG."""
    rel = Path(file_path.removeprefix("./"))
    stems = [rel.with_suffix(""), Path(rel.name).with_suffix("")]
    if image_path:
        stems.append(Path(Path(image_path).name).with_suffix(""))
    for stem in stems:
        for ext in (".png", ".jpg", ".jpeg"):
            cand = folder / f"{stem}{ext}"
            if cand.is_file():
                return cand
    return None


def load_edge_maps(scene: Scene) -> tuple[np.ndarray, str]:
    """Edge maps of every view of ``scene``: ([N, H, W] float32 in [0, 1], source), where
    source is "edges/" when the capture brings its own maps and "computed" otherwise."""
    folder = _edges_folder(scene)
    n, h, w = len(scene), scene.height, scene.width
    if folder is not None:
        maps = []
        for i in range(n):
            path = _edge_file(folder, scene.file_paths[i],
                              scene.image_paths[i] if scene.image_paths else "")
            img = None if path is None else cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if img is None:
                break
            if img.shape != (h, w):
                img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            maps.append(img.astype(np.float32) / 255.0)
        if len(maps) == n:
            return np.stack(maps), "edges/"
    maps = [soft_edges(scene.images[i], None if scene.masks is None else scene.masks[i])
            for i in range(n)]
    return (np.stack(maps) if maps else np.zeros((0, h, w), np.float32)), "computed"
