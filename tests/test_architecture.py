"""The house rules: the engine never imports Qt or VTK; the viewport never imports torch."""

import subprocess
import sys

ENGINE_MODULES = ["reconstruction.cli", "reconstruction.engine", "reconstruction.methods",
                  "reconstruction.data", "reconstruction.encoding"]
RENDER_MODULES = ["render.demo_capture", "render.preview"]


def _loaded_after_import(modules: list[str], probes: list[str]) -> list[str]:
    code = "import sys, importlib\n" f"for m in {modules!r}: importlib.import_module(m)\n"
    code += f"print(','.join(p for p in {probes!r} if p in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [p for p in out.stdout.strip().split(",") if p]


def test_engine_loads_no_qt_or_vtk():
    assert _loaded_after_import(ENGINE_MODULES, ["PySide6", "vtk", "vtkmodules", "pyvista",
                                                 "pyvistaqt", "render", "app"]) == []


def test_render_loads_no_torch():
    assert _loaded_after_import(RENDER_MODULES, ["torch", "reconstruction"]) == []


def test_import_linter_contracts_hold():
    from pathlib import Path

    exe = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
