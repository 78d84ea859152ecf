"""``recon-studio [PATH]``: open the ReconStudio window, optionally with something loaded.

PATH is a result folder written by ``recon fit`` (mesh.ply, metrics.json), a mesh file
(.ply, .obj, .glb, .stl, ...) or a capture folder with transforms_train.json (its cameras
are drawn).

Scripted use (demos, documentation pictures, smoke tests)::

    recon-studio CAPTURE --method sdf --start [--steps N | --budget S] [--set KEY=VALUE ...]
                 [--out DIR] --screenshot FILE --after SECONDS --quit

opens the window, starts training, saves a picture of the whole window SECONDS after the
run started and quits (the engine is closed with the window). Exit code 1 when the run
failed, 2 for bad arguments.
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
    parser.add_argument("--method", default=None, help="method to train (with --start)")
    parser.add_argument("--start", action="store_true", help="start training PATH at once")
    parser.add_argument("--steps", type=int, default=None, help="training steps (with --start)")
    parser.add_argument("--budget", type=float, default=None, help="seconds of training")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a method setting for --start (repeatable)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="result folder for --start (default: CAPTURE_METHOD beside it)")
    parser.add_argument("--screenshot", type=Path, default=None, metavar="FILE",
                        help="save a PNG of the window after --after seconds")
    parser.add_argument("--after", type=float, default=5.0, metavar="SECONDS",
                        help="when to take the screenshot or quit (from the start of training)")
    parser.add_argument("--quit", action="store_true",
                        help="quit after the screenshot (or after --after seconds)")
    args = parser.parse_args(argv)
    if args.start and args.path is None:
        parser.error("--start needs a capture PATH")
    for pair in args.set:
        if "=" not in pair:
            parser.error(f"--set {pair}: expected KEY=VALUE")

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

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("ReconStudio")
    app.setOrganizationName("ReconStudio")
    window = MainWindow()
    window.show()
    if args.path is not None:
        window.open_path(args.path)
    if args.start or args.screenshot is not None or args.quit:
        script = _Script(app, window, args)
        QTimer.singleShot(0, script.begin)
    code = int(app.exec())
    if args.start and window.training.state in ("failed", "died"):
        return 1
    return code


class _Script:
    """Drives the window for --start/--screenshot/--quit."""

    def __init__(self, app, window, args) -> None:
        self.app, self.window, self.args = app, window, args
        self.started = False

    def begin(self) -> None:
        if not self.args.start:
            self._arm()
            return
        if self.window.methods is None:
            self.window.methods_loaded.connect(self._start)
            self.window.load_methods()
            return
        self._start()

    def _start(self) -> None:
        from PySide6.QtCore import QTimer

        if self.started:
            return
        self.started = True
        window, args = self.window, self.args
        method = args.method or window.method_panel.method_combo.currentText() or "nerf"
        info = (window.methods or {}).get(method)
        settings = {}
        try:
            for pair in args.set:
                key, value = pair.split("=", 1)
                if info is None:
                    raise ValueError(f"unknown method {method!r}")
                settings[key] = info.field(key).parse(value)
        except (KeyError, ValueError) as exc:
            print(f"recon-studio: --set: {exc}", file=sys.stderr)
            QTimer.singleShot(0, window.close)
            return
        if args.out is not None:
            window.method_panel.out_edit.setText(str(args.out))
        if not window.start_training(method, budget=args.budget, steps=args.steps,
                                     settings=settings, out=args.out):
            print(f"recon-studio: {window.last_error}", file=sys.stderr)
        self._arm()

    def _arm(self) -> None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(int(max(0.0, self.args.after) * 1000), self._done)

    def _done(self) -> None:
        if self.args.screenshot is not None:
            path = self.window.save_window_screenshot(self.args.screenshot)
            print(f"recon-studio: saved {path}", file=sys.stderr)
        if self.args.quit:
            self.window.close()


if __name__ == "__main__":
    sys.exit(main())
