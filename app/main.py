"""``recon-studio [PATH]``: open the ReconStudio window, optionally with something loaded.

PATH is a result folder written by ``recon fit`` (mesh.ply, metrics.json), a mesh file
(.ply, .obj, .glb, .stl, ...) or a capture folder with transforms_train.json (its cameras
are drawn).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _has_display() -> bool:
    if sys.platform != "linux":
        return True
    return bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="recon-studio",
        description="The ReconStudio window: look at reconstructions, meshes and captures.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=None,
        metavar="PATH",
        help="a result folder written by `recon fit`, a mesh file (.ply/.obj/.glb/.stl) "
        "or a capture folder with transforms_train.json",
    )
    args = parser.parse_args(argv)

    from app.model import OpenError, resolve_source

    if args.path is not None:
        try:
            resolve_source(args.path)  # fail early, with the same message the window gives
        except OpenError as exc:
            print(f"recon-studio: {exc}", file=sys.stderr)
            return 2
    if not _has_display():
        print(
            "recon-studio: no display (DISPLAY is not set). Run it on a desktop, under "
            "`xvfb-run -a recon-studio ...`, or use the headless `recon` command instead.",
            file=sys.stderr,
        )
        return 2

    from PySide6.QtWidgets import QApplication

    from app.window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("ReconStudio")
    app.setOrganizationName("ReconStudio")
    window = MainWindow()
    window.show()
    if args.path is not None:
        window.open_path(args.path)
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
