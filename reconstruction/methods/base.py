"""The method interface and registry.

A method is a class with a ``name``, a ``Config`` dataclass whose defaults work on the demo
capture on a laptop CPU (each field documented by the docstring under it), and the hooks
below. Adding a method is adding one module to ``reconstruction/methods/`` that defines a
subclass decorated with :func:`register`; the package imports every module in it.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from reconstruction.data.scene import Cameras, Normalization, Scene

REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available by its ``name``."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a class attribute 'name'")
    REGISTRY[cls.name] = cls
    return cls


def get_method(name: str) -> type[Method]:
    import reconstruction.methods  # noqa: F401  (imports every method module)

    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def config_from_dict(config_cls: type, values: dict[str, Any] | None) -> Any:
    """Build a config dataclass from plain values, ignoring unknown keys is an error."""
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown setting(s) for {config_cls.__name__}: {', '.join(sorted(unknown))}")
    return config_cls(**values)


def config_docs(config_cls: type) -> dict[str, str]:
    """Field name -> the docstring written under it (for settings panels and --help)."""
    import ast
    import inspect
    import textwrap

    try:
        src = textwrap.dedent(inspect.getsource(config_cls))
    except (OSError, TypeError):
        return {}
    body = ast.parse(src).body[0].body
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:] + [None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


class Method(ABC):
    """One reconstruction method, trained one step at a time by the engine."""

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    outputs: ClassVar[tuple[str, ...]] = ()  # files export() writes, e.g. ("mesh.ply",)
    snapshot_kinds: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any = None):
        self.config = config if config is not None else self.Config()
        self.step_count = 0
        self.progress = 0.0  # fraction of the training budget used, set by the engine
        self.device = torch.device("cpu")
        self.normalization: Normalization | None = None
        self.image_size: tuple[int, int] = (0, 0)  # (width, height) of the capture as trained
        self.background = np.ones(3, np.float32)

    @abstractmethod
    def setup(self, scene: Scene | None, device: torch.device) -> None:
        """Build the model for ``scene`` (None when restoring for rendering only)."""

    @abstractmethod
    def step(self) -> dict[str, float]:
        """One optimisation step; returns scalar metrics (loss, psnr, ...)."""

    @abstractmethod
    def snapshot(self, kind: str, quality: str = "low") -> dict[str, np.ndarray] | None:
        """Numpy payload of the current state for the viewport (mesh, points, image, ...)."""

    @abstractmethod
    def render(self, cameras: Cameras) -> np.ndarray:
        """[N, H, W, 3] float32 images in [0, 1] seen by ``cameras`` (world coordinates)."""

    @abstractmethod
    def export(self, out_dir: Path) -> dict[str, str]:
        """Write the method's outputs into ``out_dir``; returns {kind: path}."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume or render: tensors and plain Python values only."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
